import ChildProcess
import Foundation
import LoopbackHTTP
import RedisSupervisor

/// wrk runs of the benchmarks: started as a child process with one of `Benchmarks/wrk`'s
/// scripts, whose `RESULT` line is read back.
public enum Wrk {
    /// One run's figures.
    public struct Result: Sendable {
        public var name: String
        public var rps: Double
        public var p50: Double
        public var p99: Double
        public var non2xx: Int
        public var socketErrors: Int
        /// Which socket errors, as wrk counts them: "connect 2, timeout 42" (empty with none).
        public var socketErrorKinds = ""
        public var jtisPerRequest = 1
        public var note = ""
    }

    /// A run under way; ``finish(_:)`` waits for it and reads its result.
    public struct Run: Sendable {
        public var process: ChildProcess
        public var output: String

        public func finish(_ name: String) async throws -> Result {
            await process.waitUntilExit()
            return try parse(name: name, output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
    }

    /// Starts `wrk -t<threads> -c<connections> -d<seconds>s --latency -s <script>` against
    /// `127.0.0.1:<port>`, its output to `output`.
    public static func start(
        script: String, port: Int, threads: Int = 2, connections: Int, seconds: Int, output: String, environment extra: [String: String] = [:]
    ) throws -> Run {
        guard ChildProcess.findExecutable("wrk") != nil else { throw BenchmarkError("wrk is missing (apt-get install wrk)") }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(extra) { $1 }
        let process = try ChildProcess.spawn(
            "wrk", arguments: ["-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, "http://127.0.0.1:\(port)"],
            environment: environment, standardOutput: output, standardError: output)
        return Run(process: process, output: output)
    }

    /// Reads the `RESULT` line the wrk scripts print.
    public static func parse(name: String, output: String) throws -> Result {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) else {
            throw BenchmarkError("wrk printed no result for \(name): \(output.suffix(300))")
        }
        var fields: [String: String] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        func number(_ key: String) -> Double { Double(fields[key] ?? "") ?? 0 }
        var result = Result(
            name: name, rps: number("rps"), p50: number("p50_ms"), p99: number("p99_ms"),
            non2xx: Int(number("non2xx")), socketErrors: Int(number("sock_err")))
        result.socketErrorKinds = ["connect", "read", "write", "timeout"].compactMap { kind in
            let count = Int(number(kind))
            return count > 0 ? "\(kind) \(count)" : nil
        }.joined(separator: ", ")
        return result
    }
}

/// Waits until something listens on `port`.
public func waitForTCP(port: Int, what: String) async throws {
    for _ in 0..<400 {
        if (try? LoopbackSocket(port: port)) != nil { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw BenchmarkError("\(what) did not listen on \(port)")
}

/// Waits until `GET path` answers 200.
public func waitForHTTP(port: Int, path: String, what: String, seconds: Int = 10) async throws {
    for _ in 0..<(seconds * 40) {
        if let answer = try? LoopbackSocket.exchange(port: port, method: "GET", path: path), answer.hasPrefix("HTTP/1.1 200") { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw BenchmarkError("\(what) did not answer 200 on \(path)")
}

/// The resident set of a process, from `/proc/<pid>/status` (0 where that cannot be read).
public func residentBytes(of pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1])
    else { return 0 }
    return kilobytes * 1024
}

/// The CPU time a process has used so far, user and system, from `/proc/<pid>/stat` (0 where
/// that cannot be read).
public func cpuSeconds(of pid: Int32) -> Double {
    // The fields after the command name, which is in parentheses and may hold spaces: state is
    // the first of them, utime and stime (clock ticks) the 12th and 13th.
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The largest resident set of `pid` seen while `run` lasts, sampled every 200 ms.
public func peakResidentBytes(of pid: Int32, while run: Wrk.Run) async throws -> Int {
    var peak = residentBytes(of: pid)
    while !run.process.hasExited {
        peak = max(peak, residentBytes(of: pid))
        try await Task.sleep(for: .milliseconds(200))
    }
    return max(peak, residentBytes(of: pid))
}

/// The release `revoked` next to the benchmark's own binary, started with `environment` (PATH
/// added) on a free port, logging to `log`, and ready (`/readyz` 200).
public func startRevoked(port: Int, environment extra: [String: String], log: String) async throws -> ChildProcess {
    let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "REVOKE_PORT": "\(port)", "REVOKE_LOG_LEVEL": "warning"]
    environment.merge(extra) { $1 }
    let revoked = try ChildProcess.spawn(binaries + "/revoked", environment: environment, standardOutput: log, standardError: log)
    do {
        try await waitForHTTP(port: port, path: "/readyz", what: "revoked", seconds: 30)
    } catch {
        await revoked.terminate()
        throw BenchmarkError("\(error): \((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(500) ?? "")")
    }
    return revoked
}

/// `revoked` (release) on a `redis-server` of its own under `directory`, both ready:
/// `environment` adds to its `REVOKE_REDIS_URL`. The caller stops both (the Redis server too when
/// `revoked` does not start, which this stops itself).
public func startRevokedOnOwnRedis(directory: String, environment: [String: String], log: String) async throws
    -> (redis: RedisServerProcess, revoked: ChildProcess, port: Int)
{
    let redis = try await RedisServerProcess.start(.init(directory: directory, appendOnly: false))
    do {
        let port = try RedisServerProcess.freeLoopbackPort()
        var variables = ["REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0"]
        variables.merge(environment) { $1 }
        return (redis, try await startRevoked(port: port, environment: variables, log: log), port)
    } catch {
        await redis.process.terminate()
        throw error
    }
}

/// The value after `name` on the command line, else `fallback`.
public func commandLineOption(_ name: String, _ fallback: String) -> String {
    let arguments = CommandLine.arguments
    return arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil } ?? fallback
}

/// A benchmark could not run.
public struct BenchmarkError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
