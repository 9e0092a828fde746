import Foundation
import NIOCore
import Redis
import RevokeCore

/// Revocations, cutoffs, checks and the audit trail, over Redis with the contract's key layout.
///
/// Every write is one script (record, event, audit together); every check, single or batch,
/// is one pipelined round trip. Failures are ``StoreError``s: unavailable (503, retry) or
/// failed (500), never Redis' own errors.
///
/// With ``Replication/replicas`` above 0, a write returns only once `WAIT` has confirmed that
/// many replicas hold it (else it throws unavailable: the write may have run; every write is
/// idempotent, so a retry is safe). `WAIT` holds its connection, so such writes go through a
/// writer of their own and never delay the checks.
public final class RevocationStore: Sendable {
    /// The keys.
    public let keys: KeyLayout
    /// TTL rules.
    public let policy: RevocationPolicy
    /// Claims a cutoff may name.
    public let cutoffClaims: CutoffClaims
    /// Entries the event stream keeps (approximately: `MAXLEN ~`).
    public let eventLogLength: Int
    /// Entries the audit list keeps.
    public let auditLength: Int
    /// Whether a revocation is written in the packed shape where it fits (`Scripts`); false
    /// writes hashes only, which versions before the packed shape can read.
    public let packedRecords: Bool
    /// How many replicas must hold a write before it is acknowledged, and how long to wait.
    public struct Replication: Sendable {
        /// `REVOKE_REDIS_MIN_REPLICAS`: 0 acknowledges what the primary acknowledged.
        public var replicas: Int
        /// How long `WAIT` may take before the write is answered 503.
        public var wait: Duration

        public init(replicas: Int = 0, wait: Duration = .milliseconds(500)) {
            self.replicas = replicas
            self.wait = wait
        }
    }
    /// What a write needs before it is acknowledged.
    public let replication: Replication
    let redis: any RedisCommandSender
    /// Where writes go: ``redis`` itself, or a connection of their own when they `WAIT`.
    private let writer: any RedisCommandSender
    /// Whether ``writer`` is a connection of its own.
    private let writesApart: Bool
    let now: @Sendable () -> Double

    /// - Parameters:
    ///   - redis: Where the data lives.
    ///   - keys: The key layout (namespace).
    ///   - policy: TTL rules (clock skew, longest token lifetime).
    ///   - cutoffClaims: Claims a cutoff may name.
    ///   - packedRecords: Whether revocations are written packed where they fit.
    ///   - replication: Replicas a write needs before it is acknowledged.
    ///   - writer: Where writes go when they need replicas (`WAIT` blocks its connection); nil
    ///     sends them through `redis`.
    ///   - now: The current time in Unix seconds; tests pass their own.
    public init(
        redis: any RedisCommandSender, keys: KeyLayout = KeyLayout(), policy: RevocationPolicy = RevocationPolicy(),
        cutoffClaims: CutoffClaims = .default, eventLogLength: Int = 100_000, auditLength: Int = 10_000,
        packedRecords: Bool = true, replication: Replication = Replication(), writer: (any RedisCommandSender)? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.redis = redis
        self.writer = writer ?? redis
        self.writesApart = writer != nil
        self.replication = replication
        self.keys = keys
        self.policy = policy
        self.cutoffClaims = cutoffClaims
        self.eventLogLength = eventLogLength
        self.auditLength = auditLength
        self.packedRecords = packedRecords
        self.now = now
    }

    /// The same store read through another connection (`redis`), for reads that must never
    /// queue beside the checks (event replays); writes still go where this store's go.
    public func reading(through redis: any RedisCommandSender) -> RevocationStore {
        RevocationStore(
            redis: redis, keys: keys, policy: policy, cutoffClaims: cutoffClaims, eventLogLength: eventLogLength, auditLength: auditLength,
            packedRecords: packedRecords, replication: replication, writer: writer, now: now)
    }

    /// The current time, whole seconds.
    public var currentTime: Int64 { Int64(now().rounded(.down)) }

    /// Runs a write script; with replicas required, acknowledged only once `WAIT` confirmed them.
    private func write(_ script: RedisScript, keys: [[UInt8]], arguments: [[UInt8]]) async throws -> RedisValue {
        guard replication.replicas > 0 else { return try await writer.evaluate(script, keys: keys, arguments: arguments) }
        return try await writer.evaluate(
            script, keys: keys, arguments: arguments, replicas: replication.replicas, wait: replication.wait, fence: self.keys.replicated)
    }

    // MARK: - Revocations

    /// Revokes a `jti` until the token expires (plus the clock skew). A repeat (the same
    /// expiry and reason) changes nothing and appends no event; the record keeps its first
    /// `revoked_at`.
    ///
    /// An administrator's write (with an `actor`) replaces the record. A logout's (no `actor`:
    /// whoever holds the token) only ever makes it stronger: it lasts longer (a later expiry, or
    /// none), keeping its `revoked_at` and reason; a logout that would not do that changes
    /// nothing, so holding a token never erases what an administrator recorded of it.
    /// - Parameters:
    ///   - jti: The token ID, 1 to 256 bytes.
    ///   - expiresAt: The token's `exp`, or nil for a token that never expires.
    ///   - reason: Why (admin revocations).
    ///   - actor: The admin key's name, for the audit trail; nil for logout flows.
    /// - Returns: The record as it stands after the write.
    public func revoke(jti: String, expiresAt: Int64?, reason: String? = nil, actor: String? = nil) async throws
        -> RevokeOutcome
    {
        try await translatingRedisErrors {
            let now = self.now()
            let ttl: String
            switch policy.lifetime(expiresAt: expiresAt, now: now) {
            case .expired: return .alreadyExpired
            case .seconds(let seconds): ttl = String(seconds)
            case .forever: ttl = ""
            }
            var record = RevocationRecord(jti: jti, expiresAt: expiresAt, revokedAt: Int64(now.rounded(.down)), reason: reason)
            let reply = try await write(
                Scripts.revoke, keys: [keys.revocation(jti), keys.events, keys.audit, keys.eventsTrim],
                arguments: [
                    Array(jti.utf8), Array((expiresAt.map(String.init) ?? "").utf8), Array(String(record.revokedAt).utf8),
                    Array((reason ?? "").utf8), Array(ttl.utf8), Array(String(eventLogLength).utf8),
                    auditArgument(actor: actor, action: "revoke", target: jti, reason: reason),
                    Array(String(auditLength).utf8), packedRecords ? [UInt8(ascii: "1")] : [],
                    actor == nil ? [UInt8(ascii: "1")] : [],
                ])
            // A repeat, or a logout that would weaken the record, left it as it was.
            guard case .array(let parts) = reply, parts.count == 4, let revokedAt = parts[1].integer,
                let storedExpiry = parts[2].string, let storedReason = parts[3].string
            else { throw RedisError(.unexpectedReply, "the revoke script answered \(reply)") }
            record.revokedAt = revokedAt
            record.expiresAt = storedExpiry.isEmpty ? nil : Int64(storedExpiry)
            record.reason = storedReason.isEmpty ? nil : storedReason
            return .revoked(record)
        }
    }

    /// Removes a revocation. Returns false when the `jti` was not revoked.
    public func unrevoke(jti: String, reason: String? = nil, actor: String? = nil) async throws -> Bool {
        try await remove(Scripts.unrevoke, key: keys.revocation(jti), identifier: jti, action: "unrevoke", reason: reason, actor: actor)
    }

    /// Runs a script that removes the record at `key`, named by `identifier` in its event and
    /// the audit. Returns false when there was none.
    private func remove(
        _ script: RedisScript, key: [UInt8], identifier: String, action: String, reason: String?, actor: String?
    ) async throws -> Bool {
        try await translatingRedisErrors {
            let reply = try await write(
                script, keys: [key, keys.events, keys.audit, keys.eventsTrim],
                arguments: [
                    Array(identifier.utf8), Array(String(eventLogLength).utf8),
                    auditArgument(actor: actor, action: action, target: identifier, reason: reason), Array(String(auditLength).utf8),
                ])
            return reply != .integer(0)
        }
    }

    /// The revocation of a `jti`, or nil.
    public func revocation(jti: String) async throws -> RevocationRecord? {
        try await translatingRedisErrors {
            let reply = try await redis.evaluate(Scripts.readRevocation, keys: [keys.revocation(jti)])
            guard case .array(let fields) = reply else { return nil }
            guard fields.count == 3, let revokedAt = fields[0].integer, let expiresAt = fields[1].string, let reason = fields[2].string else {
                throw RedisError(.unexpectedReply, "the revocation's record reads as \(reply)")
            }
            return RevocationRecord(
                jti: jti, expiresAt: expiresAt.isEmpty ? nil : Int64(expiresAt), revokedAt: revokedAt, reason: reason.isEmpty ? nil : reason)
        }
    }

    // MARK: - Cutoffs

    /// A message from outside that may be applied once (a logout token), named by its issuer
    /// and ID, remembered for as long as it could still be accepted.
    public struct OneTimeMessage: Sendable {
        public var issuer: String
        public var id: String
        /// How long it could still be accepted (its `exp`, with the clock skew, from now).
        public var seconds: Int64

        public init(issuer: String, id: String, seconds: Int64) {
            self.issuer = issuer
            self.id = id
            self.seconds = seconds
        }
    }

    /// Revokes every token whose `claim` equals `value` and was issued at or before `before`.
    /// A later cutoff for the same claim and value only moves `before` forward.
    ///
    /// With `message` (a logout token from an identity provider, not an administrator), the
    /// write happens at most once per message: a replay, even after an administrator removed the
    /// cutoff, changes nothing and writes nothing; an attempt that changes nothing is not
    /// audited; and moving an existing cutoff forward keeps its reason.
    /// - Throws: ``ValidationError`` for a claim not allowed, a `before` in the future, or one so
    ///   old that no live token can match; ``StoreError`` when the store fails.
    public func setCutoff(
        claim: String, value: String, before: Int64? = nil, reason: String? = nil, actor: String? = nil,
        message: OneTimeMessage? = nil
    ) async throws -> CutoffOutcome {
        try await translatingRedisErrors {
            try validateCutoffTarget(claim: claim, value: value)
            let now = self.now()
            let current = Int64(now.rounded(.down))
            let before = before ?? current
            if before > current { throw ValidationError("before is in the future: a cutoff never revokes tokens not yet minted") }
            guard case .seconds(let ttl) = policy.cutoffLifetime(before: before, now: now) else {
                throw ValidationError("before is older than the longest token lifetime: no live token can match")
            }
            let expiresAt = policy.cutoffExpiry(before: before)
            let target = "\(claim):\(value)"
            let recordKey = keys.cutoff(claim: claim, value: value)
            let reply = try await write(
                Scripts.setCutoff, keys: [recordKey, keys.events, keys.audit, keys.eventsTrim, message.map(keys.oneTimeMessage) ?? recordKey],
                arguments: [
                    Array(claim.utf8), Array(value.utf8), Array(String(before).utf8), Array(String(expiresAt).utf8),
                    Array(String(current).utf8), Array((reason ?? "").utf8), Array(String(ttl).utf8),
                    Array(String(eventLogLength).utf8),
                    auditArgument(actor: actor, action: "cutoff", target: target, reason: reason),
                    Array(String(auditLength).utf8), message == nil ? [UInt8(ascii: "1")] : [],
                    Array((message.map { String(max($0.seconds, 1)) } ?? "").utf8),
                ])
            guard case .array(let parts) = reply, parts.count == 5, let changed = parts[0].integer,
                let storedBefore = parts[1].integer, let createdAt = parts[2].integer
            else { throw RedisError(.unexpectedReply, "the cutoff script answered \(reply)") }
            let record = CutoffRecord(
                claim: claim, value: value, before: storedBefore,
                expiresAt: parts[4].integer ?? policy.cutoffExpiry(before: storedBefore), createdAt: createdAt,
                reason: parts[3].string)
            switch changed {
            case 1: return .stored(record)
            case 2: return .replayed
            default: return .unchanged(record)
            }
        }
    }

    /// Checks that a cutoff may name `claim` and that `value` is 1 to 256 bytes: the claim is
    /// part of the key, so an unknown one (`sub:x`) could reach another claim's cutoffs.
    /// - Throws: ``ValidationError``.
    public func validateCutoffTarget(claim: String, value: String) throws(ValidationError) {
        guard cutoffClaims.allows(claim) else {
            throw ValidationError("claim must be one of \(cutoffClaims.names.joined(separator: ", ")), not \"\(claim)\"")
        }
        try validateIdentifier(value, field: "value")
    }

    /// Removes a cutoff. Returns false when there was none.
    public func deleteCutoff(claim: String, value: String, reason: String? = nil, actor: String? = nil) async throws -> Bool {
        try await translatingRedisErrors {
            let reply = try await write(
                Scripts.deleteCutoff, keys: [keys.cutoff(claim: claim, value: value), keys.events, keys.audit, keys.eventsTrim],
                arguments: [
                    Array(claim.utf8), Array(value.utf8), Array(String(eventLogLength).utf8),
                    auditArgument(actor: actor, action: "uncutoff", target: "\(claim):\(value)", reason: reason),
                    Array(String(auditLength).utf8),
                ])
            return reply != .integer(0)
        }
    }

    /// The cutoff for a claim and value, or nil.
    public func cutoff(claim: String, value: String) async throws -> CutoffRecord? {
        try await translatingRedisErrors {
            let fields = try Self.hash(
                try await redis.send(RedisCommand(arguments: [Array("HGETALL".utf8), keys.cutoff(claim: claim, value: value)])))
            return cutoffRecord(fields, claim: claim, value: value)
        }
    }

    // MARK: - Key blocks

    /// Blocks a signing key: every token whose header names `kid` is revoked, whatever its
    /// `iat`. Blocking a key already blocked changes nothing (no event) and returns its record.
    /// - Throws: ``ValidationError`` for a `kid` that is empty or over 256 bytes.
    public func blockKey(kid: String, reason: String? = nil, actor: String? = nil) async throws -> KeyBlockOutcome {
        try await translatingRedisErrors {
            try validateIdentifier(kid, field: "kid")
            let now = currentTime
            let reply = try await write(
                Scripts.blockKey, keys: [keys.keyBlock(kid), keys.events, keys.audit, keys.eventsTrim],
                arguments: [
                    Array(kid.utf8), Array(String(now).utf8), Array((reason ?? "").utf8), Array(String(eventLogLength).utf8),
                    auditArgument(actor: actor, action: "keyblock", target: kid, reason: reason), Array(String(auditLength).utf8),
                ])
            guard case .array(let parts) = reply, parts.count == 3, let created = parts[0].integer, let createdAt = parts[1].integer else {
                throw RedisError(.unexpectedReply, "the key block script answered \(reply)")
            }
            let record = KeyBlockRecord(kid: kid, createdAt: createdAt, reason: parts[2].string)
            return created == 1 ? .created(record) : .existing(record)
        }
    }

    /// Unblocks a signing key. Returns false when it was not blocked.
    public func unblockKey(kid: String, reason: String? = nil, actor: String? = nil) async throws -> Bool {
        try await remove(Scripts.unblockKey, key: keys.keyBlock(kid), identifier: kid, action: "unkeyblock", reason: reason, actor: actor)
    }

    /// The block of a signing key, or nil.
    public func keyBlock(kid: String) async throws -> KeyBlockRecord? {
        try await translatingRedisErrors {
            let fields = try Self.hash(try await redis.send(RedisCommand(arguments: [Array("HGETALL".utf8), keys.keyBlock(kid)])))
            guard let createdAt = fields["created_at"].flatMap({ Int64($0) }) else { return nil }
            return KeyBlockRecord(kid: kid, createdAt: createdAt, reason: fields["reason"])
        }
    }

    // MARK: - Checks

    /// Answers many checks with one pipelined round trip: an `EXISTS` per `kid` and per `jti`,
    /// and an `HGET ... before` per claim a cutoff may name.
    public func check(_ queries: [CheckQuery]) async throws -> [CheckVerdict] {
        try await translatingRedisErrors {
            let plan = CheckPlan(queries, keys: keys, cutoffClaims: cutoffClaims)
            return try plan.verdicts(try await redis.send(batch: plan.commands))
        }
    }

    /// Answers one check.
    public func check(_ query: CheckQuery) async throws -> CheckVerdict {
        try await check([query])[0]
    }

    /// Answers one check on `eventLoop` without a task: `completion` is called there with the
    /// verdict, or with the ``StoreError`` the async form throws, so a channel handler gets its
    /// verdict where it runs, and no future is made for it.
    public func check(
        _ query: CheckQuery, on eventLoop: any EventLoop, completion: @escaping @Sendable (Result<CheckVerdict, StoreError>) -> Void
    ) {
        let plan = CheckPlan([query], keys: keys, cutoffClaims: cutoffClaims)
        redis.send(batch: plan.commands, timeout: nil, on: eventLoop) { replies in
            let verdict = replies.flatMap { replies in Result { () throws(RedisError) in try plan.verdicts(replies)[0] } }
            completion(verdict.mapError(StoreError.init))
        }
    }

    // MARK: - Redis itself

    /// Whether Redis answers now (`PING`), on the connection of the checks and, when writes have
    /// one of their own, on that one too: ready means a write would not find it still connecting.
    public func ping() async throws {
        try await translatingRedisErrors {
            _ = try await redis.send(RedisCommand("PING"))
            if writesApart { _ = try await writer.send(RedisCommand("PING")) }
        }
    }

    /// Redis' `INFO`, as its `name:value` lines by name.
    public func serverInfo() async throws -> [String: String] {
        try await translatingRedisErrors {
            let text = try await redis.send(RedisCommand("INFO")).string ?? ""
            var fields: [String: String] = [:]
            for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
            }
            return fields
        }
    }

    // MARK: - Audit

    /// The newest `limit` audit entries, newest first.
    public func audit(limit: Int) async throws -> [AuditEntry] {
        try await translatingRedisErrors {
            let reply = try await redis.send(
                RedisCommand(arguments: [Array("LRANGE".utf8), keys.audit, Array("0".utf8), Array(String(max(limit, 1) - 1).utf8)]))
            guard case .array(let items) = reply else { throw RedisError(.unexpectedReply, "LRANGE did not return an array") }
            let decoder = JSONDecoder()
            return items.compactMap { item in item.bytes.flatMap { try? decoder.decode(AuditEntry.self, from: Data($0)) } }
        }
    }

    private func auditArgument(actor: String?, action: String, target: String, reason: String?) -> [UInt8] {
        guard let actor else { return [] }
        let entry = AuditEntry(at: currentTime, actor: actor, action: action, target: target, reason: reason)
        return (try? Array(JSONEncoder().encode(entry))) ?? []
    }

    /// A cutoff from its hash's fields (`HGETALL`); nil when it has no `before` (gone, or
    /// not a cutoff). `claim` and `value` default to the hash's own.
    func cutoffRecord(_ fields: [String: String], claim: String? = nil, value: String? = nil) -> CutoffRecord? {
        guard let claim = claim ?? fields["claim"], let value = value ?? fields["value"],
            let before = fields["before"].flatMap({ Int64($0) })
        else { return nil }
        return CutoffRecord(
            claim: claim, value: value, before: before,
            expiresAt: fields["expires_at"].flatMap { Int64($0) } ?? policy.cutoffExpiry(before: before),
            createdAt: fields["created_at"].flatMap { Int64($0) } ?? before, reason: fields["reason"])
    }

    static func hash(_ reply: RedisValue) throws -> [String: String] {
        guard case .array(let flat) = reply, flat.count % 2 == 0 else {
            throw RedisError(.unexpectedReply, "HGETALL did not return pairs")
        }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: flat.count, by: 2) {
            if let name = flat[index].string, let value = flat[index + 1].string { fields[name] = value }
        }
        return fields
    }
}

/// The commands that answer some checks, and how to read their replies back into verdicts:
/// an `EXISTS` per `kid` and per `jti`, and an `HGET ... before` per claim a cutoff may name.
struct CheckPlan: Sendable {
    private struct Entry: Sendable {
        var query: CheckQuery
        var hasKID: Bool
        var hasJTI: Bool
        var claims: [String]
    }

    private(set) var commands: [RedisCommand] = []
    private var entries: [Entry] = []

    init(_ queries: [CheckQuery], keys: KeyLayout, cutoffClaims: CutoffClaims) {
        commands.reserveCapacity(queries.count * 2)
        entries.reserveCapacity(queries.count)
        for query in queries {
            if let kid = query.kid { commands.append(RedisCommand(arguments: [Array("EXISTS".utf8), keys.keyBlock(kid)])) }
            if let jti = query.jti { commands.append(RedisCommand(arguments: [Array("EXISTS".utf8), keys.revocation(jti)])) }
            var claims: [String] = []
            for claim in cutoffClaims.names {
                guard let value = query.claims[claim] else { continue }
                commands.append(RedisCommand(arguments: [Array("HGET".utf8), keys.cutoff(claim: claim, value: value), Array("before".utf8)]))
                claims.append(claim)
            }
            entries.append(Entry(query: query, hasKID: query.kid != nil, hasJTI: query.jti != nil, claims: claims))
        }
    }

    /// The verdict of each query, in order, from the replies to ``commands``.
    /// - Throws: ``RedisError`` for an error reply or one of the wrong kind.
    func verdicts(_ replies: [RedisValue]) throws(RedisError) -> [CheckVerdict] {
        guard replies.count == commands.count else {
            throw RedisError(.unexpectedReply, "\(replies.count) replies to \(commands.count) commands")
        }
        var index = 0
        var verdicts: [CheckVerdict] = []
        verdicts.reserveCapacity(entries.count)
        for entry in entries {
            var keyBlocked = false
            if entry.hasKID {
                keyBlocked = try Self.integer(replies[index]) > 0
                index += 1
            }
            var jtiRevoked = false
            if entry.hasJTI {
                jtiRevoked = try Self.integer(replies[index]) > 0
                index += 1
            }
            var cutoffs: [(claim: String, before: Int64?)] = []
            for claim in entry.claims {
                let reply = replies[index]
                index += 1
                if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
                cutoffs.append((claim, reply.integer))
            }
            verdicts.append(CheckVerdict(query: entry.query, jtiRevoked: jtiRevoked, keyBlocked: keyBlocked, cutoffs: cutoffs))
        }
        return verdicts
    }

    private static func integer(_ reply: RedisValue) throws(RedisError) -> Int64 {
        if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
        guard let value = reply.integer else { throw RedisError(.unexpectedReply, "expected an integer, got \(reply)") }
        return value
    }
}
