import BenchmarkSupport
import ChildProcess
import Foundation
import RedisSupervisor

/// `make soak`: `revoked` (release) under checks at 80% of the most it took in a calibration run
/// of this same run, with steady revocations and 100 open event streams, for `SOAK_SECONDS`
/// (default 600), minute by minute: throughput, p50, p99, non-2xx answers and socket errors,
/// revoked's CPU time per check and its resident memory. The calibration is run again at the
/// end, alternated with a fresh revoked on the same Redis: a shared machine's speed drifts over
/// ten minutes, and only the fresh one, measured beside it, tells revoked's own slowing from the
/// machine's. Exits 1 when any request failed or a stream was dropped.
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
        /// revoked's CPU time per check answered, in microseconds.
        var cpuPerCheck: Double
    }

    static func main() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["SOAK_SECONDS"] ?? "") ?? 600
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-soak-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appending(path: "wrk").path

        let redis = try await RedisServerProcess.start(.init(directory: work + "/redis", appendOnly: false))
        let port = try RedisServerProcess.freeLoopbackPort()
        let adminKey = "soak-admin-key-1234"
        let environment = [
            "REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0",
            "REVOKE_ADMIN_KEYS": "soak:\(adminKey)", "REVOKE_LOG_LEVEL": "error", "REVOKE_MAX_STREAMS_PER_CLIENT": "100000",
        ]
        let revoked = try await startRevoked(port: port, environment: environment, log: work + "/revoked.log")
        // Whatever happens, both servers stop before the outcome is reported.
        var failed = false
        var failure: (any Error)?
        do {
            // The most it takes, measured now, on this machine.
            let (calibration, calibrationCPU) = try await measure("calibration", seconds: 10, pid: revoked.pid) {
                try Wrk.start(script: scripts + "/check.lua", port: port, connections: connections, seconds: 10, output: work + "/calibration.txt")
            }
            let target = 0.8 * calibration.rps
            print(
                String(
                    format: "calibration: %.0f checks/s at most (p99 %.2f ms, %.1f us of revoked's CPU per check); soak at 80%%: %.0f/s for %d s",
                    calibration.rps, calibration.p99, calibrationCPU, target, seconds))

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
                let cpuBefore = cpuSeconds(of: revoked.pid)
                let run = try Wrk.start(
                    script: scripts + "/check.lua", port: port, connections: connections, seconds: length,
                    output: work + "/minute-\(minutes.count + 1).txt", environment: ["DELAY_MS": String(format: "%.2f", pause)])
                rssPeak = max(rssPeak, try await peakResidentBytes(of: revoked.pid, while: run))
                let result = try await run.finish("minute \(minutes.count + 1)")
                let cpuPerCheck = perCheck(cpuSeconds(of: revoked.pid) - cpuBefore, result, seconds: length)
                minutes.append(Minute(index: minutes.count + 1, pause: pause, result: result, rss: residentBytes(of: revoked.pid), cpuPerCheck: cpuPerCheck))
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
            // The most it takes now, as at the start (checks alone, streams closed), against a fresh
            // revoked on the same Redis, alternated soaked, fresh, fresh, soaked so that the
            // machine's drift over those 40 s weighs on both alike: what ten minutes left in
            // revoked, apart from the machine.
            let freshPort = try RedisServerProcess.freeLoopbackPort()
            let fresh = try await startRevoked(port: freshPort, environment: environment, log: work + "/revoked-fresh.log")
            var soakedRuns: [(result: Wrk.Result, cpu: Double)] = []
            var freshRuns: [(result: Wrk.Result, cpu: Double)] = []
            do {
                for (index, soaked) in [true, false, false, true].enumerated() {
                    let (pid, target) = soaked ? (revoked.pid, port) : (fresh.pid, freshPort)
                    let run = try await measure(soaked ? "calibration after" : "a fresh revoked", seconds: 10, pid: pid) {
                        try Wrk.start(script: scripts + "/check.lua", port: target, connections: connections, seconds: 10, output: work + "/after-\(index).txt")
                    }
                    if soaked { soakedRuns.append(run) } else { freshRuns.append(run) }
                }
                await fresh.terminate()
            } catch {
                await fresh.terminate()
                throw error
            }
            func mean(_ runs: [(result: Wrk.Result, cpu: Double)]) -> (rps: Double, p99: Double, cpu: Double) {
                let count = Double(runs.count)
                return (runs.reduce(0) { $0 + $1.result.rps } / count, runs.reduce(0) { $0 + $1.result.p99 } / count, runs.reduce(0) { $0 + $1.cpu } / count)
            }
            let after = mean(soakedRuns)
            let freshAfter = mean(freshRuns)

            print("")
            print("minute   pause ms    checks/s   p50 ms   p99 ms   non-2xx   errors   CPU us/check   revoked RSS")
            for minute in minutes {
                print(
                    String(
                        format: "%6d  %9.2f  %10.0f  %7.2f  %7.2f  %8d  %7d  %13.1f   %@", minute.index, minute.pause, minute.result.rps, minute.result.p50,
                        minute.result.p99, minute.result.non2xx, minute.result.socketErrors, minute.cpuPerCheck, mb(minute.rss)))
            }
            // The soaked revoked's calibrations after count too: it must still answer every check.
            let errors =
                minutes.reduce(0) { $0 + $1.result.non2xx + $1.result.socketErrors } + revocationResult.non2xx + revocationResult.socketErrors
                + soakedRuns.reduce(0) { $0 + $1.result.non2xx + $1.result.socketErrors }
            let meanRate = minutes.reduce(0.0) { $0 + $1.result.rps } / Double(max(1, minutes.count))
            print("")
            print(
                String(
                    format: "calibration after: %.0f checks/s at most (p99 %.2f ms, %.1f us of revoked's CPU per check; %.1f at the start)",
                    after.rps, after.p99, after.cpu, calibrationCPU))
            print(
                String(
                    format: "a fresh revoked on the same Redis, alternated with it: %.0f checks/s at most (p99 %.2f ms, %.1f us of CPU per check): the soaked one took %.0f%% of it",
                    freshAfter.rps, freshAfter.p99, freshAfter.cpu, 100 * after.rps / max(1, freshAfter.rps)))
            print(
                "  (10 s each, soaked, fresh, fresh, soaked: "
                    + [soakedRuns[0], freshRuns[0], freshRuns[1], soakedRuns[1]].map { String(format: "%.0f", $0.result.rps) }.joined(separator: ", ")
                    + " checks/s)")
            print(
                String(
                    format: "checks: %.0f/s on average, %.0f%% of the calibration's %.0f at the start (target 80%%), %.0f%% of the %.0f at the end",
                    meanRate, 100 * meanRate / calibration.rps, calibration.rps, 100 * meanRate / max(1, after.rps), after.rps))
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

    /// Starts a wrk run of `seconds`, waits for it, and returns its result with the CPU time per
    /// check that `pid` spent meanwhile.
    nonisolated(nonsending) static func measure(
        _ name: String, seconds: Int, pid: Int32, _ start: () throws -> Wrk.Run
    ) async throws -> (Wrk.Result, Double) {
        let cpuBefore = cpuSeconds(of: pid)
        let result = try await start().finish(name)
        return (result, perCheck(cpuSeconds(of: pid) - cpuBefore, result, seconds: seconds))
    }

    /// Microseconds of CPU per check, for `cpu` seconds spent over a run of `seconds` at `result.rps`.
    static func perCheck(_ cpu: Double, _ result: Wrk.Result, seconds: Int) -> Double {
        result.rps > 0 ? 1e6 * cpu / (result.rps * Double(seconds)) : 0
    }
}
