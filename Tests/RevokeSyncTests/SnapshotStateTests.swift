import RevokeCore
import RevokeSnapshot
import RevokeStore
import Testing

@testable import RevokeSync

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
        #expect(state.live(now: now) == 2 && state.entries == 2 && state.unrevoked.isEmpty)
    }

    /// Whatever order a load's scan and the log tell it in, each live `jti` counts once.
    @Test func eachRevocationCountsOnceHoweverItIsToldOfIt() throws {
        var state = state()
        let expiresAt = now + 600
        let hash = { (jti: String) in XXH64.hash(jti) }
        // A scan that meets a key twice (Redis grew its table during it).
        state.hold(hash: hash("scanned-twice"), expiresAt: expiresAt + 1)
        state.hold(hash: hash("scanned-twice"), expiresAt: expiresAt + 1)
        // Revoked while the load scanned: scanned, and read from the log after its cursor.
        state.hold(hash: hash("during-the-scan"), expiresAt: expiresAt + 1)
        try state.apply(event(1, "revocation", #"{"jti":"during-the-scan","expires_at":\#(expiresAt),"revoked_at":1}"#))
        // Unrevoked while the load scanned, before the scan came to it: never held.
        try state.apply(event(2, "unrevocation", #"{"jti":"gone-before-the-scan"}"#))
        #expect(state.live(now: now) == 2 && state.entries == 2 && state.unrevoked.isEmpty)

        // Revoked again with a new reason, or a later expiry: still one.
        try state.apply(event(3, "revocation", #"{"jti":"scanned-twice","expires_at":\#(expiresAt),"revoked_at":2,"reason":"again"}"#))
        try state.apply(event(4, "revocation", #"{"jti":"during-the-scan","expires_at":\#(expiresAt + 3600),"revoked_at":2}"#))
        #expect(state.live(now: now) == 2)
        // It counts until its new expiry, not its old one.
        #expect(state.live(now: expiresAt + 2) == 1)
        #expect(state.live(now: expiresAt + 3602) == 0)

        // Revoked, unrevoked, revoked, unrevoked, revoked: one.
        for (sequence, type) in ["revocation", "unrevocation", "revocation", "unrevocation", "revocation"].enumerated() {
            try state.apply(event(UInt64(5 + sequence), type, #"{"jti":"flip","expires_at":null,"revoked_at":3}"#))
        }
        #expect(state.live(now: now) == 3 && state.entries == 3)
        try state.apply(event(10, "unrevocation", #"{"jti":"flip"}"#))
        try state.apply(event(11, "unrevocation", #"{"jti":"flip"}"#))
        #expect(state.live(now: now) == 2 && state.unrevoked == [hash("flip")])
        // An unrevoked jti that expires is not taken off twice.
        try state.apply(event(12, "unrevocation", #"{"jti":"scanned-twice"}"#))
        #expect(state.live(now: expiresAt + 2) == 1 && state.live(now: now) == 1)
    }

    @Test func thousandsOfHashesAreHeldOnceEach() throws {
        var held = HeldRevocations()
        // Past several growths of the table, each told twice.
        for round in 0..<2 {
            for index in 0..<10_000 {
                let isNew = held.revoke(XXH64.hash("j-\(index)"), until: index.isMultiple(of: 2) ? nil : now + Int64(index))
                #expect(isNew == (round == 0))
            }
        }
        #expect(held.count == 10_000 && held.live(now: now) == 10_000)
        // The odd ones expire one second apart: at now + 5000, those up to it are gone.
        #expect(held.live(now: now + 5_000) == 5_000 + 2_500)
        var seen = Set<UInt64>()
        held.forEachHash { seen.insert($0) }
        #expect(seen == Set((0..<10_000).map { XXH64.hash("j-\($0)") }))
        let kept = held.dropping(expiredBy: now + 5_000)
        #expect(kept.count == 7_500 && kept.live(now: now + 5_000) == 7_500)
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
