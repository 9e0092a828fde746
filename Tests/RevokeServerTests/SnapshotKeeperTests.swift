import ChildProcess
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeSnapshot
import RevokeStore
import Synchronization
import Testing

@testable import RevokeServer

#if canImport(Glibc)
import Glibc
#endif

/// What a snapshot holds, changed event by event: expiry, rebuilding, unrevocations, and
/// events it must refuse.
@Suite struct SnapshotStateTests {
    let now: Int64 = 1_800_000_000

    func state(skew: Int64 = 0) -> SnapshotState {
        SnapshotState(cursor: .start, falsePositiveRate: 0.01, policy: RevocationPolicy(clockSkew: skew))
    }

    func event(_ sequence: UInt64, _ type: String, _ json: String) -> StoreEvent {
        StoreEvent(id: "1000-\(sequence)", type: type, data: Array(json.utf8))
    }

    @Test func eachEventChangesWhatTheSnapshotHolds() throws {
        var state = state()
        try state.apply(event(1, "revocation", #"{"jti":"a","expires_at":null,"revoked_at":1,"reason":null}"#))
        try state.apply(event(2, "revocation", #"{"jti":"b","expires_at":\#(now + 600),"revoked_at":1,"reason":"x"}"#))
        try state.apply(event(3, "cutoff", #"{"claim":"sub","value":"alice","before":\#(now - 10),"expires_at":\#(now + 900),"created_at":1}"#))
        try state.apply(event(4, "cutoff", #"{"claim":"sid","value":"s-1","before":\#(now - 5),"expires_at":\#(now + 900),"created_at":1}"#))
        try state.apply(event(5, "keyblock", #"{"kid":"k1","created_at":1,"reason":null}"#))
        try state.apply(event(6, "keyblock", #"{"kid":"k2","created_at":1,"reason":null}"#))
        try state.apply(event(7, "uncutoff", #"{"claim":"sid","value":"s-1"}"#))
        try state.apply(event(8, "unkeyblock", #"{"kid":"k2"}"#))
        try state.apply(event(9, "unrevocation", #"{"jti":"a"}"#))

        let snapshot = state.snapshot(now: now, claimOrder: .default)
        #expect(snapshot.cursor == "1000-9")
        #expect(snapshot.filter.mightContain("b"))
        // Unrevoked: no longer counted, still in the filter (a "maybe" the server answers).
        #expect(snapshot.filter.mightContain("a"))
        #expect(snapshot.revocations == 1)
        #expect(snapshot.cutoffs == [.init(claim: "sub", value: "alice", before: now - 10, expiresAt: now + 900)])
        #expect(snapshot.keyBlocks == ["k1"])

        // Revoked again after its unrevocation: counted again.
        try state.apply(event(10, "revocation", #"{"jti":"a","expires_at":null,"revoked_at":2,"reason":null}"#))
        #expect(state.live(now: now) == 3 - 0 && state.unrevoked.isEmpty)
    }

    @Test func aRevocationIsHeldUntilRedisLetsItGoNeverBefore() throws {
        var state = state(skew: 30)
        let expiresAt = now + 100
        try state.apply(event(1, "revocation", #"{"jti":"a","expires_at":\#(expiresAt),"revoked_at":1,"reason":null}"#))
        // Redis keeps it until exp + skew, rounded up to a second after the write: one more second.
        #expect(state.expired(now: expiresAt + 30) == 0)
        #expect(state.expired(now: expiresAt + 31) == 1)
        #expect(state.live(now: expiresAt + 31) == 0)
    }

    @Test func expiredRevocationsLeaveTheFilterWhenAQuarterHasExpired() throws {
        var state = state()
        for index in 0..<8 {
            try state.apply(event(UInt64(index + 1), "revocation", #"{"jti":"short-\#(index)","expires_at":\#(now + 10),"revoked_at":1}"#))
        }
        for index in 0..<24 {
            try state.apply(event(UInt64(index + 9), "revocation", #"{"jti":"long-\#(index)","expires_at":\#(now + 86_400),"revoked_at":1}"#))
        }
        #expect(!state.needsRebuild(now: now))
        // 8 of 32 expired: a quarter.
        let later = now + 12
        #expect(state.expired(now: later) == 8)
        #expect(state.needsRebuild(now: later))
        let rebuilt = state.rebuilt(now: later)
        #expect(rebuilt.entries == 24 && rebuilt.live(now: later) == 24 && !rebuilt.needsRebuild(now: later))
        let snapshot = rebuilt.snapshot(now: later, claimOrder: .default)
        #expect((0..<24).allSatisfy { snapshot.filter.mightContain("long-\($0)") })
        #expect(snapshot.revocations == 24)
        // The expired ones are gone from the filter (but for its false positives, at most a few).
        #expect((0..<8).filter { snapshot.filter.mightContain("short-\($0)") }.count <= 1)
        #expect(rebuilt.cursor == state.cursor)
    }

    @Test func unrevokedJTIsStayInTheFilterUntilTheyExpireOrALoad() throws {
        var state = state()
        try state.apply(event(1, "revocation", #"{"jti":"kept","expires_at":null,"revoked_at":1}"#))
        try state.apply(event(2, "revocation", #"{"jti":"undone","expires_at":\#(now + 60),"revoked_at":1}"#))
        try state.apply(event(3, "unrevocation", #"{"jti":"undone"}"#))
        #expect(state.live(now: now) == 1)
        let rebuilt = state.rebuilt(now: now)
        #expect(rebuilt.filter.mightContain(hash: XXH64.hash("undone")))
        #expect(rebuilt.live(now: now) == 1 && rebuilt.unrevoked.count == 1)
        // Once it expired, the rebuild forgets it altogether.
        let later = rebuilt.rebuilt(now: now + 120)
        #expect(later.unrevoked.isEmpty && later.entries == 1 && later.live(now: now + 120) == 1)
        #expect(!state.needsLoad)
    }

    @Test func aFilterThatTookMoreThanItWasSizedForIsRebuiltLarger() throws {
        var state = state()
        let capacity = state.capacity
        for index in 0...capacity {
            state.revoke(hash: XXH64.hash("j-\(index)"), expiresAt: nil)
        }
        #expect(state.needsRebuild(now: now))
        let rebuilt = state.rebuilt(now: now)
        #expect(rebuilt.capacity > capacity + 1 && !rebuilt.needsRebuild(now: now))
        #expect((0...capacity).allSatisfy { rebuilt.filter.mightContain("j-\($0)") })
    }

    @Test func anEventItCannotReadIsRefusedAndChangesNothing() throws {
        var state = state()
        try state.apply(event(1, "revocation", #"{"jti":"a","expires_at":null}"#))
        for (type, json) in [
            ("revocation", "not json"), ("revocation", #"{"expires_at":null}"#), ("revocation", #"{"jti":"b","expires_at":"soon"}"#),
            ("cutoff", #"{"claim":"sub","value":"x"}"#), ("keyblock", #"{}"#), ("something-new", #"{"jti":"c"}"#), ("revocation", "[]"),
        ] {
            #expect(throws: SnapshotState.UnreadableEvent.self) { try state.apply(event(2, type, json)) }
        }
        #expect(throws: SnapshotState.UnreadableEvent.self) { try state.apply(StoreEvent(id: "not-an-id", type: "revocation", data: Array(#"{"jti":"d"}"#.utf8))) }
        #expect(state.cursor.description == "1000-1" && state.entries == 1)
    }

    @Test func cutoffsAndKeysAreTheirBytes() throws {
        var state = state()
        let composed = "\u{E9}"
        let decomposed = "e\u{301}"
        for (index, value) in [composed, decomposed].enumerated() {
            try state.apply(event(UInt64(index + 1), "cutoff", #"{"claim":"sub","value":"\#(value)","before":\#(now),"expires_at":\#(now + 60)}"#))
            try state.apply(event(UInt64(index + 3), "keyblock", #"{"kid":"\#(value)"}"#))
        }
        let snapshot = state.snapshot(now: now, claimOrder: .default)
        #expect(Set(snapshot.cutoffs.map { Array($0.value.utf8) }) == [Array(composed.utf8), Array(decomposed.utf8)])
        #expect(Set(snapshot.keyBlocks.map { Array($0.utf8) }) == [Array(composed.utf8), Array(decomposed.utf8)])
        // A cutoff past its life (and the skew) is left out.
        #expect(state.snapshot(now: now + 61, claimOrder: .default).cutoffs.isEmpty)
    }
}

/// `GET /v1/snapshot` served from the state kept in step with the log, against a live `revoked`.
@Suite struct SnapshotKeeperTests {
    /// How many `SCAN` commands Redis has run.
    func scans(_ redis: RedisClient) async throws -> Int {
        let info = try #require(try await redis.send(RedisCommand("INFO", "commandstats")).string)
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_scan:") }) else { return 0 }
        let calls = line.split(separator: ",").first { $0.hasPrefix("cmdstat_scan:calls=") }
        return Int(calls?.dropFirst("cmdstat_scan:calls=".count) ?? "") ?? 0
    }

    func snapshot(_ client: any TestClientProtocol) async throws -> (Snapshot, String?) {
        try await client.execute(uri: "/v1/snapshot", method: .get) { response in
            #expect(response.status == .ok)
            return (try Snapshot(decoding: Array(response.body.readableBytesView)), response.headers[HTTPField.Name("Revoke-Cursor")!])
        }
    }

    @Test func snapshotsHoldEveryAcknowledgedChangeWithoutScanningRedis() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, redis, _) async throws in
            let admin = "admin-secret"
            for index in 0..<20 {
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"first-\#(index)","expires_at":null}"#, key: admin).status == .created)
            }
            let (first, _) = try await snapshot(client)
            #expect((0..<20).allSatisfy { first.filter.mightContain("first-\($0)") } && first.revocations == 20)
            let scanned = try await scans(redis)

            for index in 0..<20 {
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"second-\#(index)","expires_at":null}"#, key: admin).status == .created)
            }
            #expect(try await client.call(.delete, "/v1/revocations/first-0", key: admin).status == .noContent)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"alice"}"#, key: admin).status == .created)
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"leaked"}"#, key: admin).status == .created)
            // Asked at once after the last acknowledgement: it holds all of them.
            let (second, cursor) = try await snapshot(client)
            #expect((0..<20).allSatisfy { second.filter.mightContain("second-\($0)") })
            #expect(second.revocations == 39)
            #expect(second.cutoffs.map(\.value) == ["alice"] && second.keyBlocks == ["leaked"])
            let last = try #require(try await redis.xrange("revoke:events").last?.id)
            #expect(cursor == last && second.cursor == last)
            // Served without a scan of Redis.
            #expect(try await scans(redis) == scanned)

            let status = try await client.call(.get, "/v1/status", key: admin)
            #expect(status.status == .ok && status.json["revocations"] == .number(39) && status.json["cursor"] == .string(last))
        }
    }
}

/// A `revoked` that missed events (frozen while the log was trimmed past it) loads everything
/// again before it serves a snapshot: a client loading it refuses every revocation.
@Suite struct SnapshotGapTests {
    @Test func aServerThatMissedEventsLoadsEverythingAgainBeforeServingASnapshot() async throws {
        try await withLaggingAndWriter { portA, portB, lagging in
            // The lagging one has loaded and follows the log.
            #expect(try await RawHTTP.requestUntilNot503(port: portA, path: "/v1/snapshot").hasPrefix("HTTP/1.1 200"))

            lagging.signal(SIGSTOP)
            let written = (0..<300).map { "missed-\($0)" }
            for jti in written { try await RawHTTP.revoke(port: portB, jti: jti, key: "k") }
            lagging.signal(SIGCONT)

            try await withCachingClient(port: portA, cache: .init(staleness: .seconds(30))) { client in
                for jti in written {
                    let verdict = await client.check(CheckQuery(jti: jti))
                    #expect(verdict.revoked && verdict.reason == .jti, "\(jti): \(verdict)")
                }
            }
        }
    }
}
