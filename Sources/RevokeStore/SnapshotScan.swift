import Redis
import RevokeCore

/// What a snapshot is built from: every live revocation and cutoff, and every blocked key, read
/// with `SCAN` (Redis expires the rest).
extension RevocationStore {
    /// Every revoked `jti` that is live now, in batches, by `SCAN` over `N:jti:*` (the
    /// namespace's glob characters escaped): Redis expires the others.
    public func forEachRevokedJTI(batch: Int = 5000, _ body: ([String]) throws -> Void) async throws {
        try await translatingRedisErrors {
            let prefix = Array("\(keys.namespace):jti:".utf8)
            try await scan(pattern: Self.globEscaped(prefix) + Array("*".utf8), batch: batch) { keys in
                try body(keys.map { String(decoding: $0[prefix.count...], as: UTF8.self) })
            }
        }
    }

    /// Every live cutoff.
    public func allCutoffs() async throws -> [CutoffRecord] {
        try await translatingRedisErrors {
            let prefix = Array("\(keys.namespace):cut:".utf8)
            var found: [[UInt8]] = []
            try await scan(pattern: Self.globEscaped(prefix) + Array("*".utf8), batch: 1000) { found += $0 }
            var records: [CutoffRecord] = []
            for chunk in stride(from: 0, to: found.count, by: 1000) {
                let keys = found[chunk..<min(chunk + 1000, found.count)]
                let replies = try await redis.send(batch: keys.map { RedisCommand(arguments: [Array("HGETALL".utf8), $0]) })
                for reply in replies {
                    if let record = cutoffRecord(try Self.hash(reply)) { records.append(record) }
                }
            }
            return records
        }
    }

    /// Every blocked key's `kid`.
    public func allBlockedKeys() async throws -> [String] {
        try await translatingRedisErrors {
            let prefix = Array("\(keys.namespace):kid:".utf8)
            var found: [String] = []
            try await scan(pattern: Self.globEscaped(prefix) + Array("*".utf8), batch: 1000) { keys in
                found += keys.map { String(decoding: $0[prefix.count...], as: UTF8.self) }
            }
            return found.sorted()
        }
    }

    private func scan(pattern: [UInt8], batch: Int, _ body: ([[UInt8]]) throws -> Void) async throws {
        var cursor: [UInt8] = Array("0".utf8)
        repeat {
            let reply = try await redis.send(
                RedisCommand(arguments: [
                    Array("SCAN".utf8), cursor, Array("MATCH".utf8), pattern, Array("COUNT".utf8), Array(String(batch).utf8),
                    Array("TYPE".utf8), Array("hash".utf8),
                ]))
            if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
            guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].bytes, case .array(let items) = parts[1] else {
                throw RedisError(.unexpectedReply, "SCAN did not return [cursor, keys]")
            }
            try body(items.compactMap(\.bytes))
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
