import Foundation
import NIOCore
import NIOPosix
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeStore
import Synchronization
import Testing

/// A clock the test sets; the store never reads the real time.
final class TestClock: Sendable {
    private let value: Mutex<Double>
    init(_ start: Double) { value = Mutex(start) }
    var now: Double { value.withLock { $0 } }
    func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
}

@Suite struct RevocationStoreTests {
    static let start: Double = 1_700_000_000

    private func withStore(
        namespace: String = "revoke", skew: Int64 = 0,
        _ body: (RevocationStore, RedisClient, TestClock) async throws -> Void
    ) async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                let clock = TestClock(Self.start)
                let store = RevocationStore(
                    redis: redis, keys: KeyLayout(namespace: namespace),
                    policy: RevocationPolicy(clockSkew: skew, maximumTokenLifetime: 3_600), now: { clock.now })
                try await body(store, redis, clock)
            }
        }
    }

    private func ttl(_ redis: RedisClient, _ key: [UInt8]) async throws -> Int64? {
        try await redis.send(RedisCommand(arguments: [Array("TTL".utf8), key])).integer
    }

    /// Whether `key` was given a TTL of exactly `seconds` by a write made after `written`:
    /// Redis counts down in real time, so its `PTTL` is the TTL set less the time the test saw
    /// pass since then (however slow the machine), never a fixed margin.
    private func ttlWasSet(_ redis: RedisClient, _ key: [UInt8], to seconds: Int64, after written: ContinuousClock.Instant)
        async throws -> Bool
    {
        guard let left = try await redis.send(RedisCommand(arguments: [Array("PTTL".utf8), key])).integer else { return false }
        let elapsed = ContinuousClock.now - written
        let elapsedMilliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000 + 1
        return (seconds * 1000 - elapsedMilliseconds)...(seconds * 1000) ~= left
    }

    @Test func storesARevocationUnderItsKeyWithTheRemainingLifetime() async throws {
        try await withStore(skew: 30) { store, redis, _ in
            let written = ContinuousClock.now
            let outcome = try await store.revoke(jti: "abc", expiresAt: Int64(Self.start) + 600)
            #expect(outcome == .revoked(RevocationRecord(jti: "abc", expiresAt: Int64(Self.start) + 600, revokedAt: Int64(Self.start), reason: nil)))
            #expect(try await ttlWasSet(redis, Array("revoke:jti:abc".utf8), to: 630, after: written))
            #expect(try await store.revocation(jti: "abc")?.expiresAt == Int64(Self.start) + 600)
            #expect(try await store.check(CheckQuery(jti: "abc")) == .revokedByJTI)
            #expect(try await store.check(CheckQuery(jti: "abd")) == .allowed)
        }
    }

    @Test func storesHostileIdentifiersUnderTheExactKey() async throws {
        let hostile = ["a\r\nDEL revoke:jti:x", "*", "revoke:jti:*", "+OK\r\n", "$5\r\nhello", String(repeating: "é", count: 128), "ключ 🔑", "a b\tc\0d"]
        try await withStore { store, redis, _ in
            for jti in hostile {
                _ = try await store.revoke(jti: jti, expiresAt: nil, reason: "r\r\nx")
                let key = Array("revoke:jti:".utf8) + Array(jti.utf8)
                #expect(try await redis.send(RedisCommand(arguments: [Array("EXISTS".utf8), key])) == .integer(1), "\(jti)")
                #expect(try await ttl(redis, key) == -1)
                #expect(try await store.revocation(jti: jti)?.reason == "r\r\nx")
                #expect(try await store.check(CheckQuery(jti: jti)) == .revokedByJTI)
            }
            #expect(try await redis.send(RedisCommand("DBSIZE")) == .integer(Int64(hostile.count) + 1))  // + the event stream
            #expect(try await store.check(CheckQuery(jti: "x")) == .allowed)
        }
    }

    @Test func anExpiredTokenIsNotStored() async throws {
        try await withStore { store, redis, _ in
            let outcome = try await store.revoke(jti: "old", expiresAt: Int64(Self.start) - 1)
            #expect(outcome == .alreadyExpired)
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:old")) == .integer(0))
        }
    }

    @Test func repeatingReplacesAndUnrevokeRemoves() async throws {
        try await withStore { store, redis, clock in
            _ = try await store.revoke(jti: "j", expiresAt: Int64(Self.start) + 100, reason: "first", actor: "ops")
            clock.advance(10)
            let written = ContinuousClock.now
            _ = try await store.revoke(jti: "j", expiresAt: Int64(Self.start) + 200, reason: "second", actor: "ops")
            let record = try #require(try await store.revocation(jti: "j"))
            #expect(record.reason == "second")
            #expect(record.revokedAt == Int64(Self.start) + 10)
            #expect(try await ttlWasSet(redis, Array("revoke:jti:j".utf8), to: 190, after: written))
            #expect(try await store.unrevoke(jti: "j", actor: "ops"))
            #expect(try await !store.unrevoke(jti: "j", actor: "ops"))
            #expect(try await store.revocation(jti: "j") == nil)
            #expect(try await store.check(CheckQuery(jti: "j")) == .allowed)
        }
    }

    /// A revocation with an expiry less than 10^8 seconds away and no reason is a packed
    /// decimal, which Redis holds as an integer; one with a reason, without an expiry or with one
    /// further away is a hash; a hash written by an earlier release reads the same. A repeat of
    /// either shape changes nothing, and the snapshot's scan finds both.
    @Test func recordsArePackedWhenTheyCanBeAndEveryShapeReadsBack() async throws {
        try await withStore { store, redis, clock in
            let start = Int64(Self.start)
            func type(_ jti: String) async throws -> String? { try await redis.send(RedisCommand("TYPE", "revoke:jti:\(jti)")).string }
            func value(_ jti: String) async throws -> String? { try await redis.send(RedisCommand("GET", "revoke:jti:\(jti)")).string }

            _ = try await store.revoke(jti: "plain", expiresAt: start + 3_600)
            #expect(try await value("plain") == "\(start)00003600")
            #expect(try await redis.send(RedisCommand("OBJECT", "ENCODING", "revoke:jti:plain")).string == "int")
            #expect(try await store.revocation(jti: "plain") == RevocationRecord(jti: "plain", expiresAt: start + 3_600, revokedAt: start, reason: nil))
            _ = try await store.revoke(jti: "edge", expiresAt: start + 99_999_999)
            #expect(try await value("edge") == "\(start)99999999")
            #expect(try await store.revocation(jti: "edge")?.expiresAt == start + 99_999_999)

            let hashes: [(jti: String, expiresAt: Int64?, reason: String?)] = [
                ("reason", start + 60, "INC-1"), ("forever", nil, nil), ("far", start + 100_000_000, nil),
            ]
            for (jti, expiresAt, reason) in hashes {
                _ = try await store.revoke(jti: jti, expiresAt: expiresAt, reason: reason, actor: reason.map { _ in "ops" })
                #expect(try await type(jti) == "hash", "\(jti)")
                #expect(try await store.revocation(jti: jti) == RevocationRecord(jti: jti, expiresAt: expiresAt, revokedAt: start, reason: reason))
            }

            // As releases before the packed shape wrote it, the jti repeated.
            _ = try await redis.send(
                RedisCommand("HSET", "revoke:jti:old", "jti", "old", "revoked_at", "\(start - 100)", "expires_at", "\(start + 500)"))
            #expect(try await store.revocation(jti: "old") == RevocationRecord(jti: "old", expiresAt: start + 500, revokedAt: start - 100, reason: nil))

            clock.advance(10)
            let events = try await redis.send(RedisCommand("XLEN", "revoke:events"))
            #expect(
                try await store.revoke(jti: "plain", expiresAt: start + 3_600)
                    == .revoked(RevocationRecord(jti: "plain", expiresAt: start + 3_600, revokedAt: start, reason: nil)))
            #expect(
                try await store.revoke(jti: "old", expiresAt: start + 500)
                    == .revoked(RevocationRecord(jti: "old", expiresAt: start + 500, revokedAt: start - 100, reason: nil)))
            #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")) == events)

            // A logout with a later expiry: the old hash is replaced by the packed shape, which
            // keeps the first revoked_at (a logout only makes a record last longer).
            _ = try await store.revoke(jti: "old", expiresAt: start + 900)
            #expect(try await value("old") == "\(start - 100)00001000")
            #expect(try await store.revocation(jti: "old") == RevocationRecord(jti: "old", expiresAt: start + 900, revokedAt: start - 100, reason: nil))

            var scanned: Set<String> = []
            try await store.scanSnapshotRecords { page in scanned.formUnion(page.revocations.map { String(decoding: $0.jti, as: UTF8.self) }) }
            #expect(scanned == ["plain", "edge", "reason", "forever", "far", "old"])
            for jti in scanned { #expect(try await store.check(CheckQuery(jti: jti)) == .revokedByJTI, "\(jti)") }
        }
    }

    /// A token revoked past its `exp` but within the clock skew has a negative remaining life,
    /// which the packed shape cannot hold: it is a hash, kept until `exp` plus the skew.
    @Test func aRevocationPastItsExpiryWithinTheSkewIsAHash() async throws {
        try await withStore(skew: 60) { store, redis, _ in
            let expiresAt = Int64(Self.start) - 10
            let written = ContinuousClock.now
            let outcome = try await store.revoke(jti: "late", expiresAt: expiresAt)
            #expect(outcome == .revoked(RevocationRecord(jti: "late", expiresAt: expiresAt, revokedAt: Int64(Self.start), reason: nil)))
            #expect(try await redis.send(RedisCommand("TYPE", "revoke:jti:late")).string == "hash")
            #expect(try await ttlWasSet(redis, Array("revoke:jti:late".utf8), to: 50, after: written))
            #expect(try await store.revocation(jti: "late")?.expiresAt == expiresAt)
        }
    }

    /// With packed records off (a rolling upgrade from a version that reads only hashes), every
    /// revocation is a hash, and a packed one already there reads and is replaced the same.
    @Test func withPackedRecordsOffEveryRevocationIsAHash() async throws {
        try await withStore { store, redis, clock in
            let start = Int64(Self.start)
            let hashesOnly = RevocationStore(redis: redis, packedRecords: false, now: { clock.now })
            _ = try await store.revoke(jti: "packed", expiresAt: start + 60)
            #expect(try await redis.send(RedisCommand("TYPE", "revoke:jti:packed")).string == "string")
            _ = try await hashesOnly.revoke(jti: "hashed", expiresAt: start + 60)
            #expect(try await redis.send(RedisCommand("TYPE", "revoke:jti:hashed")).string == "hash")
            #expect(try await hashesOnly.revocation(jti: "hashed") == RevocationRecord(jti: "hashed", expiresAt: start + 60, revokedAt: start, reason: nil))
            #expect(try await hashesOnly.revocation(jti: "packed") == RevocationRecord(jti: "packed", expiresAt: start + 60, revokedAt: start, reason: nil))
            _ = try await hashesOnly.revoke(jti: "packed", expiresAt: start + 120)
            #expect(try await redis.send(RedisCommand("HGET", "revoke:jti:packed", "expires_at")).string == "\(start + 120)")
        }
    }

    @Test func everyChangeReachesTheEventLogInOrder() async throws {
        try await withStore(namespace: "ns1") { store, redis, _ in
            _ = try await store.revoke(jti: "a", expiresAt: nil)
            _ = try await store.unrevoke(jti: "a")
            _ = try await store.unrevoke(jti: "never")
            _ = try await store.setCutoff(claim: "sub", value: "alice")
            _ = try await store.setCutoff(claim: "sub", value: "alice")  // unchanged: no event
            _ = try await store.deleteCutoff(claim: "sub", value: "alice")
            let events = try await redis.xrange("ns1:events")
            #expect(events.map { String(decoding: $0["type"] ?? [], as: UTF8.self) } == ["revocation", "unrevocation", "cutoff", "uncutoff"])
            let first = try JSONSerialization.jsonObject(with: Data(events[0]["data"] ?? [])) as? [String: Any]
            #expect(first?["jti"] as? String == "a")
            #expect(first?["expires_at"] is NSNull)
        }
    }

    @Test func cutoffsOnlyMoveForwardAndKeepTheirCreationTime() async throws {
        try await withStore { store, redis, clock in
            let written = ContinuousClock.now
            let first = try await store.setCutoff(claim: "sub", value: "alice", before: Int64(Self.start) - 100, reason: "phished", actor: "ops")
            guard case .stored(let created) = first else {
                Issue.record("expected a stored cutoff, got \(first)")
                return
            }
            #expect(created.before == Int64(Self.start) - 100)
            #expect(created.expiresAt == Int64(Self.start) - 100 + 3_600)
            #expect(created.createdAt == Int64(Self.start))
            #expect(try await ttlWasSet(redis, Array("revoke:cut:sub:alice".utf8), to: 3_500, after: written))

            let earlier = try await store.setCutoff(claim: "sub", value: "alice", before: Int64(Self.start) - 200)
            #expect(earlier == .unchanged(created))

            clock.advance(50)
            let later = try await store.setCutoff(claim: "sub", value: "alice", reason: "again")
            guard case .stored(let moved) = later else {
                Issue.record("expected the cutoff to move, got \(later)")
                return
            }
            #expect(moved.before == Int64(Self.start) + 50)
            #expect(moved.createdAt == Int64(Self.start))
            #expect(moved.reason == "again")
            #expect(try await store.cutoff(claim: "sub", value: "alice") == moved)

            #expect(try await store.check(CheckQuery(issuedAt: Self.start + 50, claims: ["sub": "alice"])) == .revokedByCutoff(claim: "sub"))
            #expect(try await store.check(CheckQuery(issuedAt: Self.start + 51, claims: ["sub": "alice"])) == .allowed)
            #expect(try await store.check(CheckQuery(claims: ["sub": "alice"])) == .revokedByCutoff(claim: "sub"))
            #expect(try await store.check(CheckQuery(issuedAt: 0, claims: ["sub": "ALICE"])) == .allowed)
        }
    }

    @Test func refusesCutoffsThatCannotBeRight() async throws {
        try await withStore { store, _, _ in
            await #expect(throws: ValidationError.self) { try await store.setCutoff(claim: "email", value: "a@b") }
            await #expect(throws: ValidationError.self) { try await store.setCutoff(claim: "sub", value: "a", before: Int64(Self.start) + 1) }
            await #expect(throws: ValidationError.self) { try await store.setCutoff(claim: "sub", value: "a", before: Int64(Self.start) - 3_601) }
            await #expect(throws: ValidationError.self) { try await store.setCutoff(claim: "sub", value: "") }
            let deleted = try await store.deleteCutoff(claim: "sub", value: "a")
            #expect(!deleted)
        }
    }

    @Test func aBatchOfAThousandIsAnsweredInOrder() async throws {
        try await withStore { store, _, _ in
            for index in stride(from: 0, to: 1000, by: 7) { _ = try await store.revoke(jti: "j\(index)", expiresAt: nil) }
            _ = try await store.setCutoff(claim: "sid", value: "s-3", before: Int64(Self.start) - 10)
            let queries = (0..<1000).map { index in
                CheckQuery(jti: "j\(index)", issuedAt: Self.start - 20, claims: ["sid": "s-\(index % 5)"])
            }
            let verdicts = try await store.check(queries)
            #expect(verdicts.count == 1000)
            for (index, verdict) in verdicts.enumerated() {
                let expected: CheckVerdict = index % 7 == 0 ? .revokedByJTI : (index % 5 == 3 ? .revokedByCutoff(claim: "sid") : .allowed)
                #expect(verdict == expected, "check \(index)")
            }
            // Answered one at a time on an event loop, as a channel handler asks: the same verdicts.
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            for index in stride(from: 0, to: 1000, by: 3) {
                #expect(try await Self.check(queries[index], store, on: loop) == verdicts[index], "check \(index) on the loop")
            }
        }
    }

    @Test func keepsTheAuditOfAdminActionsNewestFirst() async throws {
        try await withStore { store, _, clock in
            _ = try await store.revoke(jti: "logout", expiresAt: nil)  // a logout: no actor, no audit
            _ = try await store.revoke(jti: "j1", expiresAt: nil, reason: "leaked", actor: "alice-ops")
            clock.advance(1)
            _ = try await store.setCutoff(claim: "sub", value: "bob", reason: "incident 7", actor: "bob-ops")
            clock.advance(1)
            _ = try await store.unrevoke(jti: "j1", actor: "alice-ops")
            let entries = try await store.audit(limit: 10)
            #expect(entries.map(\.action) == ["unrevoke", "cutoff", "revoke"])
            #expect(entries[1] == AuditEntry(at: Int64(Self.start) + 1, actor: "bob-ops", action: "cutoff", target: "sub:bob", reason: "incident 7"))
            #expect(try await store.audit(limit: 1).count == 1)
        }
    }

    /// A query that names nothing to look up is answered without Redis, in both forms alike.
    @Test func aQueryOfNothingNeedsNoRedis() async throws {
        let store = RevocationStore(redis: RedisClient(configuration: RedisConfiguration(port: try RedisServerProcess.freeLoopbackPort())))
        #expect(try await store.check(CheckQuery()) == .allowed)
        #expect(try await Self.check(CheckQuery(), store, on: MultiThreadedEventLoopGroup.singleton.next()) == .allowed)
    }

    @Test func aStoppedRedisIsReportedAsUnavailable() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration(commandTimeout: .milliseconds(200))
            configuration.connectTimeout = .milliseconds(200)
            try await withRedisClient(configuration) { redis in
                let store = RevocationStore(redis: redis)
                server.pause()
                defer { server.resume() }
                await #expect {
                    _ = try await store.check(CheckQuery(jti: "x"))
                } throws: { error in
                    (error as? StoreError)?.kind == .unavailable
                }
                await #expect {
                    _ = try await Self.check(CheckQuery(jti: "x"), store, on: MultiThreadedEventLoopGroup.singleton.next())
                } throws: { error in
                    (error as? StoreError)?.kind == .unavailable
                }
            }
        }
    }

    /// A key of the wrong type is a failure of the store, not an outage: retrying will not mend it.
    @Test func aDamagedKeyIsAFailureNotAnOutage() async throws {
        try await withStore { store, redis, _ in
            _ = try await redis.send(RedisCommand("SET", "revoke:jti:damaged", "not a hash"))
            _ = try await redis.send(RedisCommand("RPUSH", "revoke:jti:listed", "1700000000"))
            for jti in ["damaged", "listed"] {
                await #expect {
                    _ = try await store.revocation(jti: jti)
                } throws: { error in
                    (error as? StoreError)?.kind == .failed
                }
                await #expect {
                    _ = try await store.revoke(jti: jti, expiresAt: nil)
                } throws: { error in
                    (error as? StoreError)?.kind == .failed
                }
            }
            _ = try await redis.send(RedisCommand("SET", "revoke:cut:sub:damaged", "not a hash"))
            await #expect {
                _ = try await store.check(CheckQuery(claims: ["sub": "damaged"]))
            } throws: { error in
                (error as? StoreError)?.kind == .failed
            }
            await #expect {
                _ = try await Self.check(CheckQuery(claims: ["sub": "damaged"]), store, on: MultiThreadedEventLoopGroup.singleton.next())
            } throws: { error in
                (error as? StoreError)?.kind == .failed
            }
        }
    }

    /// `check(_:on:completion:)` awaited; the verdict is checked to arrive on `loop`.
    static func check(_ query: CheckQuery, _ store: RevocationStore, on loop: any EventLoop) async throws -> CheckVerdict {
        let (result, onItsLoop) = await withCheckedContinuation { continuation in
            store.check(query, on: loop) { result in continuation.resume(returning: (result, loop.inEventLoop)) }
        }
        #expect(onItsLoop, "the verdict arrives on the loop asked for")
        return try result.get()
    }
}
