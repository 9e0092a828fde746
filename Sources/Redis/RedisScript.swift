import Crypto

/// A Lua script run with `EVALSHA`, falling back to `EVAL` when Redis does not know it yet
/// (after a restart or `SCRIPT FLUSH`), which also loads it for next time.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The script's SHA-1 in lowercase hex, as Redis names it.
    public let sha1: String

    /// A script from its Lua source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8))
            .map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }
            .joined()
    }

    /// The `EVALSHA` command for these keys and arguments.
    func command(_ verb: String, _ head: String, keys: [[UInt8]], arguments: [[UInt8]]) -> RedisCommand {
        RedisCommand(arguments: [Array(verb.utf8), Array(head.utf8), Array(String(keys.count).utf8)] + keys + arguments)
    }
}

extension RedisCommandSender {
    /// Runs a script: `EVALSHA`, then `EVAL` if Redis answered `NOSCRIPT`.
    /// - Parameters:
    ///   - script: The script.
    ///   - keys: `KEYS` in the script, binary safe.
    ///   - arguments: `ARGV` in the script, binary safe.
    /// - Returns: The script's reply.
    public func evaluate(
        _ script: RedisScript, keys: [[UInt8]] = [], arguments: [[UInt8]] = [], timeout: Duration? = nil
    ) async throws -> RedisValue {
        do {
            return try await send(script.command("EVALSHA", script.sha1, keys: keys, arguments: arguments), timeout: timeout)
        } catch let error as RedisError where error.code == .commandFailed && error.message.hasPrefix("NOSCRIPT") {
            return try await send(script.command("EVAL", script.source, keys: keys, arguments: arguments), timeout: timeout)
        }
    }
}
