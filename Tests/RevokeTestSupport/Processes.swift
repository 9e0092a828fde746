import ChildProcess
import Foundation

/// The `revoked` executable built next to the test bundle, run as a user runs it.
public struct Revoked: Sendable {
    public var process: ChildProcess
    public var port: Int
    public var logPath: String

    public static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appending(path: "revoked").path
    }

    public static func start(port: Int, redisURL: String, environment extra: [String: String] = [:], arguments: [String] = []) throws -> Revoked {
        let logPath = FileManager.default.temporaryDirectory.appending(path: "revoked-\(UUID().uuidString).log").path
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        environment["REVOKE_PORT"] = String(port)
        environment["REVOKE_REDIS_URL"] = redisURL
        environment.merge(extra) { $1 }
        let process = try ChildProcess.spawn(
            executable, arguments: arguments, environment: environment, standardOutput: logPath, standardError: logPath)
        return Revoked(process: process, port: port, logPath: logPath)
    }

    /// Waits until `/readyz` answers 200.
    /// Waits until `/readyz` answers 200 (or the process exits). The limit only turns "never"
    /// into a failure instead of a hang.
    public func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if process.hasExited { break }
            if let answer = try? await RawHTTP.request(port: port, path: "/readyz"), answer.hasPrefix("HTTP/1.1 200") { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ReadinessError(log: log())
    }

    public struct ReadinessError: Error, Sendable, CustomStringConvertible {
        public var log: String
        public var description: String { "revoked never became ready: \(log)" }
    }

    /// What it logged.
    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// `revokectl` as a process, against a live `revoked` on a real redis-server.
public struct Revokectl: Sendable {
    public var url: String
    public var key: String? = "admin-secret"

    public init(url: String, key: String? = "admin-secret") {
        self.url = url
        self.key = key
    }

    public typealias Run = ProcessRun

    public static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appending(path: "revokectl").path
    }

    public func callAsFunction(_ arguments: String..., input: String? = nil) async throws -> Run {
        try await callAsFunction(arguments, input: input)
    }

    public func callAsFunction(_ arguments: [String], input: String? = nil) async throws -> Run {
        var environment = ["REVOKE_URL": url]
        if let key { environment["REVOKE_ADMIN_KEY"] = key }
        return try await ProcessRun.run(Self.executable, arguments, environment: environment, input: input)
    }
}
