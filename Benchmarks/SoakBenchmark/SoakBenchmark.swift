import BenchmarkSupport
import ChildProcess
import Foundation
import RedisSupervisor

/// `make soak`: `revoked` (release) under checks at 80% of the most it took in a calibration run
/// of this same run, with steady revocations and 100 open event streams, for `SOAK_SECONDS`
/// (default 600), minute by minute: throughput, p50, p99, non-2xx answers and socket errors,
/// and revoked's resident memory. Exits 1 when any request failed or a stream was dropped.
@main
struct SoakBenchmark {
    /// Connections, of the calibration and of the paced load: enough that each waits several
    /// milliseconds between its requests at 80%, so whole-millisecond waits can pace it finely.
    static let connections = 200
    static let streams = 100

    struct Minute {
        var index: Int
        var pause: Double
        var result: Wrk.Result
        var rss: Int
    }

    static func main() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["SOAK_SECONDS"] ?? "") ?? 600
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-soak-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appending(path: "wrk").path

        let redis = try await RedisServerProcess.start(.init(directory: work + "/redis", appendOnly: false))
        let port = try RedisServerProcess.freeLoopbackPort()
        let adminKey = "soak-admin"
        let revoked = try await startRevoked(
            port: port,
            environment: [
                "REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0",
                "REVOKE_ADMIN_KEYS": "soak:\(adminKey)", "REVOKE_LOG_LEVEL": "error",
            ],
            log: work + "/revoked.log")
        // Whatever happens, both servers stop before the outcome is reported.
        var failed = false
        var failure: (any Error)?
        do {
            // The most it takes, measured now, on this machine.
            let calibration = try await Wrk.start(
                script: scripts + "/check.lua", port: port, connections: connections, seconds: 10, output: work + "/calibration.txt"
            ).finish("calibration")
            let target = 0.8 * calibration.rps
            print(String(format: "calibration: %.0f checks/s at most (p99 %.2f ms); soak at 80%%: %.0f/s for %d s", calibration.rps, calibration.p99, target, seconds))

            let open = try OpenConnections(port: port, count: streams, request: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            open.startReading()
            // Steady revocations beside the checks: one connection, one every 50 ms.
            let revocations = try Wrk.start(
                script: scripts + "/revoke.lua", port: port, threads: 1, connections: 1, seconds: seconds,
                output: work + "/revocations.txt", environment: ["REVOKE_ADMIN_KEY": adminKey, "DELAY_MS": "50"])

            let rssStart = residentBytes(of: revoked.pid)
            var rssPeak = rssStart
            // Each connection sends, waits for the answer, then waits `pause`: about
            // connections / (pause + latency) requests a second, corrected minute by minute.
            var pause = max(0, 1000 * Double(connections) / target - calibration.p50)
            var minutes: [Minute] = []
            var remaining = seconds
            while remaining > 0 {
                let length = min(60, remaining)
                let run = try Wrk.start(
                    script: scripts + "/check.lua", port: port, connections: connections, seconds: length,
                    output: work + "/minute-\(minutes.count + 1).txt", environment: ["DELAY_MS": String(format: "%.2f", pause)])
                rssPeak = max(rssPeak, try await peakResidentBytes(of: revoked.pid, while: run))
                let result = try await run.finish("minute \(minutes.count + 1)")
                minutes.append(Minute(index: minutes.count + 1, pause: pause, result: result, rss: residentBytes(of: revoked.pid)))
                remaining -= length
                // The time per request is pause + latency; aim it at connections / target.
                if result.rps > 0 {
                    let perRequest = 1000 * Double(connections) / result.rps
                    pause = max(0, pause + 1000 * Double(connections) / target - perRequest)
                }
            }
            let revocationResult = try await revocations.finish("revocations")
            let rssEnd = residentBytes(of: revoked.pid)
            let streamsOpen = open.open
            let streamBytes = open.bytesRead
            open.close()

            print("")
            print("minute   pause ms    checks/s   p50 ms   p99 ms   non-2xx   errors   revoked RSS")
            for minute in minutes {
                print(
                    String(
                        format: "%6d  %9.2f  %10.0f  %7.2f  %7.2f  %8d  %7d   %@", minute.index, minute.pause, minute.result.rps, minute.result.p50, minute.result.p99,
                        minute.result.non2xx, minute.result.socketErrors, mb(minute.rss)))
            }
            let errors = minutes.reduce(0) { $0 + $1.result.non2xx + $1.result.socketErrors } + revocationResult.non2xx + revocationResult.socketErrors
            let meanRate = minutes.reduce(0.0) { $0 + $1.result.rps } / Double(max(1, minutes.count))
            print("")
            print(String(format: "checks: %.0f/s on average, %.0f%% of the calibration's %.0f (target 80%%)", meanRate, 100 * meanRate / calibration.rps, calibration.rps))
            print(String(format: "revocations: %.1f/s, p99 %.2f ms, %d non-2xx, %d socket errors", revocationResult.rps, revocationResult.p99, revocationResult.non2xx, revocationResult.socketErrors))
            print("event streams: \(streamsOpen) of \(streams) still open at the end, \(mb(streamBytes)) read")
            print("revoked RSS: \(mb(rssStart)) at the start, \(mb(max(rssPeak, rssEnd))) at most, \(mb(rssEnd)) at the end")
            failed = errors > 0 || streamsOpen < streams
            print(failed ? "FAIL: \(errors) failed requests, \(streams - streamsOpen) streams dropped" : "PASS: zero errors, every stream open")
        } catch {
            failure = error
        }
        await revoked.terminate()
        await redis.stop()
        if let failure { throw failure }
        if failed { exit(1) }
    }

    static func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
}
