import Foundation
import Redis

/// Everything `revoked` is configured with, read from the environment (and the same as flags).
public struct ServerConfiguration: Sendable {
    /// `REVOKE_HOST`: the address the API listens on.
    public var host: String = "127.0.0.1"
    /// `REVOKE_PORT`: the port the API listens on (0 picks a free one, for tests).
    public var port: Int = 8080
    /// `REVOKE_REDIS_URL`: the Redis to use; nil starts and owns a local `redis-server`.
    public var redis: RedisConfiguration?
    /// Where the embedded `redis-server` keeps its data when ``redis`` is nil.
    public var dataDirectory: String = "./.revoke-data"

    public init() {}

    /// A configuration error: one line that names the variable and says what is wrong.
    public struct Error: Swift.Error, CustomStringConvertible {
        public var variable: String
        public var problem: String
        public var description: String { "\(variable): \(problem)" }
    }

    /// Reads the configuration from variables (the environment, with flags laid over it).
    /// - Throws: ``Error`` naming the first variable that is wrong.
    public init(variables: [String: String]) throws(Error) {
        func value(_ name: String) -> String? {
            guard let raw = variables[name] else { return nil }
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        }
        self.init()
        if let host = value("REVOKE_HOST") { self.host = host }
        if let port = value("REVOKE_PORT") {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw Error(variable: "REVOKE_PORT", problem: "must be a port number from 0 to 65535, not \"\(port)\"")
            }
            self.port = number
        }
        if let url = value("REVOKE_REDIS_URL") {
            do {
                self.redis = try RedisConfiguration(url: url)
            } catch {
                throw Error(variable: "REVOKE_REDIS_URL", problem: error.message + " (expected redis://[:password@]host:port[/db])")
            }
        }
        if let directory = value("REVOKE_DATA_DIR") { self.dataDirectory = directory }
    }
}
