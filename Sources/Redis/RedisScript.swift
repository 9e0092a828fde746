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

    /// Runs a script and acknowledges it only once `replicas` replicas hold it: the script,
    /// `INCR fence` and `WAIT replicas milliseconds` go out in one write on this sender's
    /// connection. `WAIT` counts the replicas that hold everything up to this connection's last
    /// write; the `INCR` makes that last write come after the script, and after whatever an
    /// earlier attempt of the same write left unconfirmed (a script that changes nothing
    /// writes nothing, and `WAIT` alone would then not wait for it).
    ///
    /// `WAIT` blocks the connection it runs on: send these on a connection (a ``RedisClient``)
    /// that nothing else waits on behind them.
    /// - Throws: ``RedisError/Code/notReplicated`` when fewer replicas confirmed within `wait`
    ///   (the script ran on the primary all the same; run it again to retry).
    public func evaluate(
        _ script: RedisScript, keys: [[UInt8]] = [], arguments: [[UInt8]] = [], replicas: Int, wait: Duration,
        fence: [UInt8], timeout: Duration? = nil
    ) async throws -> RedisValue {
        let milliseconds = max(1, Int(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000))
        let tail = [RedisCommand(arguments: [Array("INCR".utf8), fence]), RedisCommand("WAIT", String(replicas), String(milliseconds))]
        let deadline = wait + (timeout ?? .seconds(1))
        var replies = try await send(batch: [script.command("EVALSHA", script.sha1, keys: keys, arguments: arguments)] + tail, timeout: deadline)
        if case .error(let message) = replies[0], message.hasPrefix("NOSCRIPT") {
            replies = try await send(batch: [script.command("EVAL", script.source, keys: keys, arguments: arguments)] + tail, timeout: deadline)
        }
        for reply in replies { if case .error(let message) = reply { throw RedisError(.commandFailed, message) } }
        guard let confirmed = replies[2].integer else { throw RedisError(.unexpectedReply, "WAIT answered \(replies[2])") }
        guard confirmed >= replicas else {
            throw RedisError(.notReplicated, "WAIT confirmed \(confirmed) of \(replicas) replicas within \(milliseconds) ms")
        }
        return replies[0]
    }
}
