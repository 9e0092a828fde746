import ArgumentParser
import Foundation

/// `revokectl`: the operator's and incident responder's command line for a Revoke server.
@main
struct Revokectl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revokectl",
        abstract: "Revoke tokens, users and sessions, and inspect a Revoke server.",
        discussion: """
            The server is REVOKE_URL (default http://127.0.0.1:8080) and the admin key REVOKE_ADMIN_KEY; \
            --url and --key override them (prefer the variable: a flag shows in the process list).

            Exit status: 0 done; 1 not revoked, or the server refused; 2 usage; \
            3 the server cannot be reached or its store is unavailable.

            Example:
              export REVOKE_URL=https://revoke.internal REVOKE_ADMIN_KEY=...
              revokectl revoke-user alice --reason "laptop stolen"
              revokectl revoke-user --from compromised-users.txt --reason "INC-4121"
            """,
        subcommands: [
            RevokeCommand.self, RevokeUser.self, CutoffCommand.self, BlockKey.self, UnblockKey.self, Unrevoke.self, Check.self, Show.self,
            Audit.self, Status.self, Verifiers.self,
        ]
    )

    static func main() async {
        let code: Int32
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            code = ExitStatus.done
        } catch let error as CLIError {
            Terminal.error(error.message)
            code = error.code
        } catch {
            let exitCode = Self.exitCode(for: error)
            if exitCode == .success {
                // --help and --version.
                print(Self.fullMessage(for: error))
                code = ExitStatus.done
            } else if let exit = error as? ExitCode {
                code = exit.rawValue == 0 ? ExitStatus.done : ExitStatus.refused
            } else {
                // A usage error: its message and where help is, on one line.
                let message = Self.message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "invalid usage"
                Terminal.error("\(message) (see revokectl --help)")
                code = ExitStatus.usage
            }
        }
        Foundation.exit(code)
    }
}

/// What `revokectl` exits with.
enum ExitStatus {
    static let done: Int32 = 0
    /// Not revoked, or the server refused the request.
    static let refused: Int32 = 1
    static let usage: Int32 = 2
    /// The server cannot be reached, or its store is unavailable.
    static let unreachable: Int32 = 3
}

/// An error `revokectl` reports on one line and exits with.
struct CLIError: Error {
    var message: String
    var code: Int32

    static func usage(_ message: String) -> CLIError { CLIError(message: message, code: ExitStatus.usage) }
}

/// Where to find the server, and how to print.
struct ServerOptions: ParsableArguments {
    @Option(name: .long, help: "The server's base URL (REVOKE_URL, default http://127.0.0.1:8080).")
    var url: String?

    @Option(name: .long, help: "An admin API key (REVOKE_ADMIN_KEY).")
    var key: String?

    @Option(name: .long, help: "Seconds to wait for each answer.")
    var timeout: Double = 10

    @Flag(name: .long, help: "Print JSON (one object per line in bulk mode) instead of a table.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout <= 3600 else { throw UsageError("--timeout must be between 0 and 3600 seconds") }
    }

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var resolvedURL: String {
        let text = url ?? environment["REVOKE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    var resolvedKey: String? { key ?? environment["REVOKE_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 } }

    /// Runs `body` with a connection to the server, closed after it.
    func withAPI<T>(_ body: (API) async throws -> T) async throws -> T {
        let api = try API(baseURL: resolvedURL, key: resolvedKey, timeout: timeout)
        do {
            let result = try await body(api)
            try? await api.shutdown()
            return result
        } catch {
            try? await api.shutdown()
            throw error
        }
    }
}

/// A usage error, reported by ArgumentParser (RevokeCore has a `ValidationError` of its own).
typealias UsageError = ArgumentParser.ValidationError
