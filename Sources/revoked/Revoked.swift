import ArgumentParser
import Foundation
import Hummingbird
import Logging
import RevokeServer

/// `revoked`: the Revoke server. Reads its configuration and runs until SIGTERM or SIGINT.
@main
struct Revoked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoked",
        abstract: "Revoke: the JWT revocation service.",
        discussion: """
            Every option can also be set through the environment variable named in its help; a flag \
            wins over the variable. With no Redis URL, revoked starts and owns a local redis-server \
            (append-only file on) with its data under ./.revoke-data.

            Example:
              REVOKE_PORT=8080 revoked
              revoked --redis-url redis://:secret@10.0.0.5:6379/0
            """
    )

    @Option(name: .long, help: "Address the API listens on (REVOKE_HOST, default 127.0.0.1).")
    var host: String?

    @Option(name: .long, help: "Port the API listens on (REVOKE_PORT, default 8080).")
    var port: String?

    @Option(name: .long, help: "redis://[:password@]host:port[/db] (REVOKE_REDIS_URL; unset: an embedded redis-server).")
    var redisURL: String?

    @Option(name: .long, help: "Data directory of the embedded redis-server (REVOKE_DATA_DIR, default ./.revoke-data).")
    var dataDir: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (REVOKE_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        var variables = ProcessInfo.processInfo.environment
        for (name, flag) in [
            ("REVOKE_HOST", host), ("REVOKE_PORT", port), ("REVOKE_REDIS_URL", redisURL), ("REVOKE_DATA_DIR", dataDir),
            ("REVOKE_LOG_LEVEL", logLevel),
        ] {
            if let flag { variables[name] = flag }
        }
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration(variables: variables)
        } catch {
            Self.fail("revoked: bad configuration: \(error)")
        }
        var level = Logger.Level.info
        if let text = variables["REVOKE_LOG_LEVEL"], !text.isEmpty {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                Self.fail("revoked: bad configuration: REVOKE_LOG_LEVEL: must be one of trace, debug, info, notice, warning, error, critical, not \"\(text)\"")
            }
            level = parsed
        }
        let chosenLevel = level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = chosenLevel
            return handler
        }
        let logger = Logger(label: "revoked")
        let app = try await buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }

    private static func fail(_ line: String) -> Never {
        FileHandle.standardError.write(Data((line + "\n").utf8))
        Foundation.exit(2)
    }
}
