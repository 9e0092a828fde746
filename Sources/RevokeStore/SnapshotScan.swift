import Redis
import RevokeCore

/// What a snapshot is loaded from when nothing is known yet: every live revocation (with when
/// Redis expires it), cutoff and blocked key, in one `SCAN` of the namespace's keys.
extension RevocationStore {
    /// One page of the scan.
    public struct ScannedRecords: Sendable {
        /// Revoked `jti`s (their UTF-8 bytes) and when Redis expires each, in Unix milliseconds
        /// of the store's clock (nil: never).
        public var revocations: [(jti: [UInt8], expiresAtMilliseconds: Int64?)] = []
        public var cutoffs: [CutoffRecord] = []
        /// The blocked keys' `kid`s.
        public var keyBlocks: [String] = []
    }

    /// Every live record, a page at a time, from one `SCAN` over `N:*` keys (the namespace's
    /// glob characters escaped): each page's revocations get their `PTTL`s and its cutoffs
    /// their fields in one pipelined batch. Redis has expired the dead ones; a key removed
    /// between the scan and its batch is left out.
    ///
    /// Its cost grows with the whole keyspace: `revoked` runs it when it starts following the
    /// log, and again only when it could no longer follow it without a gap.
    public func scanSnapshotRecords(batch: Int = 5000, _ body: (ScannedRecords) throws -> Void) async throws {
        try await translatingRedisErrors {
            let namespace = Array("\(keys.namespace):".utf8)
            let jtiPrefix = namespace + Array("jti:".utf8)
            let cutoffPrefix = namespace + Array("cut:".utf8)
            let kidPrefix = namespace + Array("kid:".utf8)
            try await scan(pattern: Self.globEscaped(namespace) + Array("*".utf8), batch: batch) { found in
                var page = ScannedRecords()
                var revoked: [[UInt8]] = []
                var cutoffKeys: [[UInt8]] = []
                for key in found {
                    if key.starts(with: jtiPrefix) {
                        revoked.append(key)
                    } else if key.starts(with: cutoffPrefix) {
                        cutoffKeys.append(key)
                    } else if key.starts(with: kidPrefix) {
                        page.keyBlocks.append(String(decoding: key[kidPrefix.count...], as: UTF8.self))
                    }
                }
                let commands =
                    revoked.map { RedisCommand(arguments: [Array("PTTL".utf8), $0]) }
                    + cutoffKeys.map { RedisCommand(arguments: [Array("HGETALL".utf8), $0]) }
                guard !commands.isEmpty else { return try body(page) }
                let readAt = Int64((now() * 1000).rounded(.down))
                let replies = try await redis.send(batch: commands)
                for (key, reply) in zip(revoked, replies) {
                    if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
                    guard let milliseconds = reply.integer, milliseconds != -2 else { continue }  // -2: gone since
                    page.revocations.append((Array(key[jtiPrefix.count...]), milliseconds == -1 ? nil : readAt + milliseconds))
                }
                for reply in replies[revoked.count...] {
                    if let record = cutoffRecord(try Self.hash(reply)) { page.cutoffs.append(record) }
                }
                try body(page)
            }
        }
    }

    /// `SCAN` of the keys matching `pattern`, a page of keys at a time.
    private func scan(pattern: [UInt8], batch: Int, _ body: ([[UInt8]]) async throws -> Void) async throws {
        var cursor: [UInt8] = Array("0".utf8)
        repeat {
            let reply = try await redis.send(
                RedisCommand(arguments: [
                    Array("SCAN".utf8), cursor, Array("MATCH".utf8), pattern, Array("COUNT".utf8), Array(String(batch).utf8),
                ]))
            if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
            guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].bytes, case .array(let items) = parts[1] else {
                throw RedisError(.unexpectedReply, "SCAN did not return [cursor, keys]")
            }
            try await body(items.compactMap(\.bytes))
            cursor = next
        } while cursor != Array("0".utf8)
    }

    /// `*`, `?`, `[`, `]` and `\` escaped for a `SCAN MATCH` pattern.
    static func globEscaped(_ bytes: [UInt8]) -> [UInt8] {
        var escaped: [UInt8] = []
        for byte in bytes {
            if [UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "\\")].contains(byte) {
                escaped.append(UInt8(ascii: "\\"))
            }
            escaped.append(byte)
        }
        return escaped
    }
}
