import ChildProcess
import Foundation
import LoopbackHTTP
import Redis
import RedisSupervisor

#if canImport(Glibc)
import Glibc
#endif

/// `make bench` (HTTP part): wrk against `revoked`'s `POST /v1/check` and
/// `POST /v1/check/batch`, against the peer in `../shared/bench/peer` (Flask with a Redis
/// blocklist) and against nginx serving a 20-byte file (the HTTP ceiling of this machine), all
/// started here, on loopback, in the same run, with the same wrk settings.
@main
struct HTTPBenchmark {
    struct Result {
        var name: String
        var rps: Double
        var p50: Double
        var p99: Double
        var non2xx: Int
        var socketErrors: Int
        var jtisPerRequest: Int = 1
        var note = ""
    }

    /// revoked's resident memory with streams that never read.
    struct Memory {
        var before, open, maximum, after: Int
        var bound: Int
        var streams: Int
        var cutOff: Int
        var revocations: Double
    }

    static func main() async throws {
        let arguments = CommandLine.arguments
        func option(_ name: String, _ fallback: String) -> String {
            arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil } ?? fallback
        }
        let seconds = Int(option("--seconds", "10")) ?? 10
        let connections = Int(option("--connections", "50")) ?? 50
        let here = FileManager.default.currentDirectoryPath
        let scripts = option("--scripts", here + "/Benchmarks/wrk")
        let peerDirectory = option("--peer", ProcessInfo.processInfo.environment["REVOKE_PEER_DIR"] ?? here + "/../shared/bench/peer")
        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-http-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: work) }
        guard ChildProcess.findExecutable("wrk") != nil else { throw BenchmarkError("wrk is missing (apt-get install wrk)") }

        var owned: [ChildProcess] = []
        var results: [Result] = []
        var memory: Memory?
        var runs = 0
        /// Starts wrk; `finish` waits for it and reads its result.
        func startWrk(script: String, port: Int, threads: Int = 2, connections: Int, extra: [String: String] = [:]) throws
            -> (process: ChildProcess, output: String)
        {
            runs += 1
            let output = work + "/wrk-\(runs).txt"
            var environment = ProcessInfo.processInfo.environment
            environment.merge(extra) { $1 }
            let process = try ChildProcess.spawn(
                "wrk", arguments: ["-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, "http://127.0.0.1:\(port)"],
                environment: environment, standardOutput: output, standardError: output)
            return (process, output)
        }
        func wrk(_ name: String, script: String, port: Int, jtisPerRequest: Int = 1) async throws -> Result {
            let (process, output) = try startWrk(
                script: script, port: port, connections: connections, extra: jtisPerRequest > 1 ? ["BATCH": "\(jtisPerRequest)"] : [:])
            await process.waitUntilExit()
            var result = try parse(name: name, output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
            result.jtisPerRequest = jtisPerRequest
            print(String(format: "  %@: %.0f req/s, p50 %.2f ms, p99 %.2f ms", name, result.rps, result.p50, result.p99))
            return result
        }

        do {
            print("wrk -t2 -c\(connections) -d\(seconds)s on 127.0.0.1, one target at a time; every target started here, now")
            // revoked on a private redis-server, as deployed with REVOKE_REDIS_URL.
            /// revoked (release) on a redis-server of its own, ready; `extra` adds variables.
            func startRevoked(_ name: String, extra: [String: String] = [:]) async throws
                -> (redis: RedisServerProcess, revoked: ChildProcess, port: Int)
            {
                let redis = try await RedisServerProcess.start(.init(directory: work + "/redis-\(name)", appendOnly: false))
                owned.append(redis.process)
                let port = try RedisServerProcess.freeLoopbackPort()
                var environment = [
                    "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                    "REVOKE_PORT": "\(port)", "REVOKE_LOG_LEVEL": "warning",
                    "REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0",
                    "REVOKE_ADMIN_KEYS": "bench:bench-admin-key",
                ]
                environment.merge(extra) { $1 }
                let revoked = try ChildProcess.spawn(
                    binaries + "/revoked", environment: environment,
                    standardOutput: work + "/revoked-\(name).log", standardError: work + "/revoked-\(name).log")
                owned.append(revoked)
                try await waitForHTTP(port: port, path: "/readyz", what: "revoked")
                return (redis, revoked, port)
            }
            let (redis, revoked, revokedPort) = try await startRevoked("checks")
            // The answers are real: one revoked jti reads back as revoked, a random one not.
            let json = ["Content-Type": "application/json"]
            _ = try LoopbackSocket.exchange(
                port: revokedPort, method: "POST", path: "/v1/revocations",
                headers: json.merging(["Authorization": "Bearer bench-admin-key"]) { $1 }, body: #"{"jti":"bench-revoked","expires_at":null}"#)
            let yes = try LoopbackSocket.exchange(port: revokedPort, method: "POST", path: "/v1/check", headers: json, body: #"{"jti":"bench-revoked"}"#)
            let no = try LoopbackSocket.exchange(port: revokedPort, method: "POST", path: "/v1/check", headers: json, body: #"{"jti":"bench-other"}"#)
            guard yes.hasSuffix(#"{"reason":"jti","revoked":true}"#), no.hasSuffix(#"{"revoked":false}"#) else {
                throw BenchmarkError("revoked answers wrongly: \(yes.suffix(80)) / \(no.suffix(80))")
            }
            results.append(try await wrk("revoked POST /v1/check", script: scripts + "/check.lua", port: revokedPort))
            results.append(try await wrk("revoked POST /v1/check/batch (1000)", script: scripts + "/check.lua", port: revokedPort, jtisPerRequest: 1000))

            // The same checks while verifiers follow 1,000 streams, 2,000 connections sit idle and
            // a flood of revocations rolls the log (section 5: none of it stops the checks).
            let streams = try OpenConnections(port: revokedPort, count: 1000, request: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            streams.startReading()
            let idle = try OpenConnections(port: revokedPort, count: 2000, request: nil)
            let flood = try startWrk(
                script: scripts + "/revoke.lua", port: revokedPort, threads: 1, connections: 4, extra: ["REVOKE_ADMIN_KEY": "bench-admin-key"])
            var hostile = try await wrk("revoked POST /v1/check, under hostile load", script: scripts + "/check.lua", port: revokedPort)
            await flood.process.waitUntilExit()
            let floodResult = try parse(name: "flood", output: (try? String(contentsOfFile: flood.output, encoding: .utf8)) ?? "")
            hostile.note = String(
                format: "%d streams read %.1f MB; %d of 2000 idle kept; flood %.0f revocations/s", streams.open, Double(streams.bytesRead) / 1e6,
                idle.open, floodResult.rps)
            results.append(hostile)
            streams.close()
            idle.close()
            await revoked.terminate()
            await redis.stop()

            // RSS with 1,000 streams that never read, while revocations flood them: bounded by
            // REVOKE_STREAM_BUFFER_BYTES, which this instance sets to 64 KiB.
            let bound = 65_536
            let (redis2, stalled, port2) = try await startRevoked("stalled", extra: ["REVOKE_STREAM_BUFFER_BYTES": "\(bound)"])
            let rssBefore = residentBytes(of: stalled.pid)
            let silent = try OpenConnections(
                port: port2, count: 1000, request: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", receiveBuffer: 4096)
            let rssOpen = residentBytes(of: stalled.pid)
            let stalledFlood = try startWrk(
                script: scripts + "/revoke.lua", port: port2, threads: 1, connections: 4, extra: ["REVOKE_ADMIN_KEY": "bench-admin-key"])
            var rssMax = rssOpen
            while !stalledFlood.process.hasExited {
                rssMax = max(rssMax, residentBytes(of: stalled.pid))
                try await Task.sleep(for: .milliseconds(200))
            }
            let stalledResult = try parse(name: "flood", output: (try? String(contentsOfFile: stalledFlood.output, encoding: .utf8)) ?? "")
            let rssAfter = residentBytes(of: stalled.pid)
            memory = Memory(
                before: rssBefore, open: rssOpen, maximum: rssMax, after: rssAfter, bound: bound, streams: 1000,
                cutOff: silent.closedByPeer(), revocations: stalledResult.rps * Double(seconds))
            silent.close()
            await stalled.terminate()
            await redis2.stop()

            // The peer, on a redis-server of its own (it speaks to Redis without a password).
            if FileManager.default.fileExists(atPath: peerDirectory + "/start.sh") {
                let peerRedisPort = try RedisServerProcess.freeLoopbackPort()
                let peerRedis = try ChildProcess.spawn(
                    "redis-server",
                    arguments: ["--bind", "127.0.0.1", "--port", "\(peerRedisPort)", "--save", "", "--appendonly", "no", "--dir", work])
                owned.append(peerRedis)
                try await waitForTCP(port: peerRedisPort, what: "the peer's redis-server")
                let peerPort = try RedisServerProcess.freeLoopbackPort()
                let pidFile = work + "/peer.pid"
                let starter = try ChildProcess.spawn(
                    "/bin/bash", arguments: [peerDirectory + "/start.sh", "\(peerPort)", "\(peerRedisPort)"],
                    standardOutput: pidFile, standardError: work + "/peer-start.log")
                let status = await starter.waitUntilExit()
                guard ChildProcess.exitCode(of: status) == 0,
                    let pid = Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))
                else {
                    throw BenchmarkError("the peer did not start: \((try? String(contentsOfFile: work + "/peer-start.log", encoding: .utf8)) ?? "")")
                }
                defer { stopPeer(pid) }
                results.append(try await wrk("peer GET /check/<jti>", script: peerDirectory + "/check.lua", port: peerPort))
                stopPeer(pid)
                await peerRedis.terminate()
            } else {
                print("  peer: \(peerDirectory)/start.sh not found (set REVOKE_PEER_DIR); skipped")
            }

            // nginx serving a 20-byte file.
            if let nginx = ChildProcess.findExecutable("nginx") {
                let nginxPort = try RedisServerProcess.freeLoopbackPort()
                try FileManager.default.createDirectory(atPath: work + "/www", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                try Data("0123456789abcdefghi\n".utf8).write(to: URL(fileURLWithPath: work + "/www/20b.txt"))
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: work + "/www/20b.txt")
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work)
                let config = """
                    worker_processes auto;
                    daemon off;
                    pid \(work)/nginx.pid;
                    error_log \(work)/nginx-error.log;
                    events { worker_connections 1024; }
                    http {
                        access_log off;
                        client_body_temp_path \(work)/nginx-body;
                        proxy_temp_path \(work)/nginx-proxy;
                        fastcgi_temp_path \(work)/nginx-fastcgi;
                        uwsgi_temp_path \(work)/nginx-uwsgi;
                        scgi_temp_path \(work)/nginx-scgi;
                        server {
                            listen 127.0.0.1:\(nginxPort);
                            root \(work)/www;
                        }
                    }

                    """
                try Data(config.utf8).write(to: URL(fileURLWithPath: work + "/nginx.conf"))
                let server = try ChildProcess.spawn(
                    nginx, arguments: ["-c", work + "/nginx.conf", "-p", work], standardError: work + "/nginx-start.log")
                owned.append(server)
                try await waitForHTTP(port: nginxPort, path: "/20b.txt", what: "nginx")
                results.append(try await wrk("nginx, a 20-byte file", script: scripts + "/static.lua", port: nginxPort))
                await server.terminate()
            } else {
                print("  nginx: not installed (apt-get install nginx-light); skipped")
            }
        } catch {
            for process in owned { await process.terminate() }
            throw error
        }
        for process in owned { await process.terminate() }
        report(results, memory: memory)
    }

    static func report(_ results: [Result], memory: Memory?) {
        print("")
        print("target".padding(toLength: 38, withPad: " ", startingAt: 0) + "     req/s   p50 ms   p99 ms      jtis/s  non-2xx  errors")
        for result in results {
            print(
                result.name.padding(toLength: 38, withPad: " ", startingAt: 0)
                    + String(format: "%10.0f %8.2f %8.2f %11.0f %8d %7d", result.rps, result.p50, result.p99,
                             result.rps * Double(result.jtisPerRequest), result.non2xx, result.socketErrors))
        }
        func find(_ prefix: String) -> Result? { results.first { $0.name.hasPrefix(prefix) } }
        print("")
        if let check = find("revoked POST /v1/check"), let peer = find("peer") {
            print(String(
                format: "single check vs peer:   %.1fx the throughput (target >= 10x), p99 %.2f ms vs %.2f ms (target: lower)",
                check.rps / peer.rps, check.p99, peer.p99))
        }
        if let check = find("revoked POST /v1/check"), let nginx = find("nginx") {
            print(String(format: "single check vs nginx:  %.0f%% of the HTTP ceiling (target >= 50%%)", 100 * check.rps / nginx.rps))
        }
        if let batch = find("revoked POST /v1/check/batch") {
            print(String(format: "batch checks:           %.0f jtis/s (target >= 200000)", batch.rps * Double(batch.jtisPerRequest)))
        }
        if let quiet = results.first(where: { $0.name == "revoked POST /v1/check" }), let hostile = find("revoked POST /v1/check, under") {
            print(String(
                format: "checks under hostile load: %.0f%% of the quiet throughput, p99 %.2fx the quiet p99 (target <= 2x)",
                100 * hostile.rps / quiet.rps, hostile.p99 / quiet.p99))
            print("  (\(hostile.note))")
        }
        if let memory {
            let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
            let grown = max(memory.maximum - memory.open, 0)
            print(
                "RSS with \(memory.streams) streams that never read, \(Int(memory.revocations)) revocations flooding them: "
                    + "\(mb(memory.before)) before, \(mb(memory.open)) with the streams open, \(mb(memory.maximum)) at most, \(mb(memory.after)) after")
            print(String(
                format: "  grew %@ while flooded, %.0f%% of the configured bound (%d streams x %d KiB = %@); %d of %d streams cut off",
                mb(grown), 100 * Double(grown) / Double(memory.streams * memory.bound), memory.streams, memory.bound / 1024,
                mb(memory.streams * memory.bound), memory.cutOff, memory.streams))
        }
    }

    /// Reads the `RESULT` line the wrk scripts print.
    static func parse(name: String, output: String) throws -> Result {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) else {
            throw BenchmarkError("wrk printed no result for \(name): \(output.suffix(300))")
        }
        var fields: [String: String] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        func number(_ key: String) -> Double { Double(fields[key] ?? "") ?? 0 }
        return Result(
            name: name, rps: number("rps"), p50: number("p50_ms"), p99: number("p99_ms"),
            non2xx: Int(number("non2xx")), socketErrors: Int(number("sock_err")))
    }

    /// Stops the peer's gunicorn (its master stops its workers).
    static func stopPeer(_ pid: Int32) {
        _ = kill(pid, SIGTERM)
    }

    static func waitForTCP(port: Int, what: String) async throws {
        for _ in 0..<400 {
            if (try? LoopbackSocket(port: port)) != nil { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw BenchmarkError("\(what) did not listen on \(port)")
    }

    static func waitForHTTP(port: Int, path: String, what: String) async throws {
        for _ in 0..<400 {
            if let answer = try? LoopbackSocket.exchange(port: port, method: "GET", path: path), answer.hasPrefix("HTTP/1.1 200") { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw BenchmarkError("\(what) did not answer 200 on \(path)")
    }
}

/// The resident set of a process, from `/proc/<pid>/status` (0 where that cannot be read).
func residentBytes(of pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1])
    else { return 0 }
    return kilobytes * 1024
}

/// Many connections to one server: each sends `request` (or nothing, to sit idle); a thread of
/// their own reads and drops what arrives when `startReading()` is called, else nothing is read.
///
/// `@unchecked Sendable`: the sockets are read only by the reading thread, and closed only
/// after it stopped; the counters are atomics' worth of plain integers read after the fact.
final class OpenConnections: @unchecked Sendable {
    private var sockets: [LoopbackSocket]
    private let stop = ManagedFlag()
    private var reader: Thread?
    private(set) var bytesRead = 0

    init(port: Int, count: Int, request: String?, receiveBuffer: Int? = nil) throws {
        sockets = []
        sockets.reserveCapacity(count)
        for _ in 0..<count {
            let socket = try LoopbackSocket(port: port, timeout: 30, receiveBuffer: receiveBuffer)
            if let request { try socket.write(request) }
            sockets.append(socket)
        }
    }

    /// Connections the server has not closed.
    var open: Int { sockets.count - closedByPeer() }

    /// Connections the server closed (seen with `poll`, without reading what is pending).
    func closedByPeer() -> Int {
        var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: pollReadHangUp, revents: 0) }
        _ = poll(&descriptors, nfds_t(descriptors.count), 0)
        return descriptors.filter { $0.revents & (pollReadHangUp | Int16(POLLHUP)) != 0 }.count
    }

    func startReading() {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
            while !stop.isSet {
                guard poll(&descriptors, nfds_t(descriptors.count), 100) > 0 else { continue }
                for index in descriptors.indices where descriptors[index].revents & Int16(POLLIN) != 0 {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptors[index].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if count > 0 { bytesRead += count } else if count == 0 { descriptors[index].events = 0 }
                }
            }
        }
        reader = thread
        thread.start()
    }

    func close() {
        stop.set()
        while reader?.isFinished == false { usleep(10_000) }
        sockets = []
    }
}

/// Linux's `POLLRDHUP` (the peer closed its end), which Glibc's module map leaves out.
let pollReadHangUp: Int16 = 0x2000

/// A flag set once, read from another thread.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
