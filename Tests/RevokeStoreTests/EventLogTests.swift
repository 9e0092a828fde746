import Foundation
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeStore
import Testing

/// The event log tells, exactly while every removal is Revoke's own trim and conservatively
/// after anyone else's, whether everything after a cursor is still there: never "yes" when an
/// event after it is gone.
@Suite struct EventLogTests {
    private func withStore(logLength: Int = 100, _ body: (RevocationStore, RedisClient) async throws -> Void) async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration(commandTimeout: .seconds(5))) { redis in
                try await body(RevocationStore(redis: redis, eventLogLength: logLength), redis)
            }
        }
    }

    private func ids(_ redis: RedisClient) async throws -> [EventCursor] {
        try await redis.xrange("revoke:events").compactMap { EventCursor($0.id) }
    }

    @Test func aFreshLogHoldsEverythingAfterTheStartAndNothingElse() async throws {
        try await withStore { store, _ in
            #expect(try await !store.isGone(after: .start))
            #expect(try await store.isGone(after: EventCursor(milliseconds: 5, sequence: 0)))
            _ = try await store.revoke(jti: "a", expiresAt: nil)
            let last = try await store.lastEventCursor()
            #expect(try await !store.isGone(after: .start))
            #expect(try await !store.isGone(after: last))
            // Ahead of the log: another log's cursor, or one a failover lost.
            #expect(try await store.isGone(after: EventCursor(milliseconds: last.milliseconds + 1, sequence: 0)))
            // Older than the first event, yet nothing was ever removed: not a cursor of this log.
            #expect(try await store.isGone(after: EventCursor(milliseconds: 1, sequence: 0)))
        }
    }

    @Test func trimsOfRevokesOwnAreExact() async throws {
        try await withStore(logLength: 100) { store, redis in
            for index in 0..<300 { _ = try await store.revoke(jti: "j-\(index)", expiresAt: nil) }
            let kept = try await ids(redis)
            // About the configured length: trimmed in steps of a hundredth of it.
            #expect((100...101).contains(kept.count), "\(kept.count) kept")
            let state = try await store.eventLogState()
            #expect(state.removalsAreAccountedFor)
            #expect(state.maxDeleted < kept[0])
            // The last removed event's cursor misses nothing; one before it does.
            #expect(state.holdsEverything(after: state.maxDeleted))
            #expect(!state.holdsEverything(after: state.maxDeleted.predecessor))
            #expect(!state.holdsEverything(after: .start))
            #expect(state.holdsEverything(after: kept[0]))
            #expect(state.holdsEverything(after: kept.last!))
        }
    }

    @Test func anOperatorsTrimIsCopedWithConservatively() async throws {
        try await withStore(logLength: 1000) { store, redis in
            for index in 0..<10 { _ = try await store.revoke(jti: "j-\(index)", expiresAt: nil) }
            let before = try await ids(redis)
            // Trimmed by hand past the first five events (XTRIM records no removed ID).
            _ = try await redis.send(RedisCommand("XTRIM", "revoke:events", "MINID", before[5].description))
            #expect(try await store.isGone(after: before[3]))
            #expect(try await store.isGone(after: .start))
            #expect(try await !store.isGone(after: before[5]))
            #expect(try await !store.isGone(after: before[9]))
            // Everything trimmed: only the very last cursor misses nothing.
            _ = try await redis.send(RedisCommand("XTRIM", "revoke:events", "MAXLEN", "0"))
            #expect(try await store.isGone(after: before[8]))
            #expect(try await !store.isGone(after: before[9]))
            // A deleted event in the middle is known exactly (XDEL records it).
            _ = try await store.revoke(jti: "k-1", expiresAt: nil)
            _ = try await store.revoke(jti: "k-2", expiresAt: nil)
            let now = try await ids(redis)
            _ = try await redis.send(RedisCommand("XDEL", "revoke:events", now[1].description))
            #expect(try await store.isGone(after: now[0]))
        }
    }

    @Test func aLogDeletedAndMadeAnewIsNotTheOldOne() async throws {
        try await withStore(logLength: 100) { store, redis in
            for index in 0..<150 { _ = try await store.revoke(jti: "j-\(index)", expiresAt: nil) }
            let old = try await store.lastEventCursor()
            _ = try await redis.send(RedisCommand("DEL", "revoke:events"))
            #expect(try await store.isGone(after: old))
            _ = try await store.revoke(jti: "after", expiresAt: nil)
            #expect(try await store.isGone(after: old))
            #expect(try await !store.isGone(after: try await store.lastEventCursor()))
        }
    }

    /// Every read after a cursor comes with its proof: the page when nothing after the cursor
    /// had left the log, else `.gone`, whether read at once or waited for on a connection of
    /// its own.
    @Test func readsAfterACursorAreProvenComplete() async throws {
        try await withStore(logLength: 1000) { store, redis in
            #expect(try await store.events(after: .start, count: 10) == .events([]))
            for index in 0..<10 { _ = try await store.revoke(jti: "j-\(index)", expiresAt: nil) }
            let ids = try await ids(redis)
            guard case .events(let page) = try await store.events(after: ids[2], count: 3) else {
                Issue.record("a page after a kept event is complete")
                return
            }
            #expect(page.map(\.id) == ids[3...5].map(\.description))
            #expect(try await store.events(after: ids[9], count: 10) == .events([]))
            try await withRedisClient(redis.configuration) { own in
                let reader = store.reading(through: own)
                try await reader.waitUntilReachable(timeout: .seconds(5))
                guard case .events(let waited) = try await reader.waitForEvents(after: ids[7], block: .milliseconds(10), count: 10) else {
                    Issue.record("a blocking read after a kept event is complete")
                    return
                }
                #expect(waited.map(\.id) == ids[8...9].map(\.description))
                // Trimmed past the cursor by hand: nothing after it can be vouched for.
                _ = try await redis.send(RedisCommand("XTRIM", "revoke:events", "MINID", ids[5].description))
                #expect(try await reader.waitForEvents(after: ids[2], block: .milliseconds(10), count: 10) == .gone)
            }
            #expect(try await store.events(after: ids[2], count: 10) == .gone)
            #expect(try await store.events(after: .start, count: 10) == .gone)
            guard case .events(let rest) = try await store.events(after: ids[5], count: 10) else {
                Issue.record("the first kept event's successors are complete")
                return
            }
            #expect(rest.count == 4)
        }
    }

    /// A request that changes no record appends no event; admin attempts are still audited.
    @Test func repeatsAppendNoEvent() async throws {
        try await withStore { store, redis in
            let first = try await store.revoke(jti: "same", expiresAt: 4_000_000_000)
            let again = try await store.revoke(jti: "same", expiresAt: 4_000_000_000)
            #expect(first == again)
            _ = try await store.revoke(jti: "admin", expiresAt: nil, reason: "leak", actor: "ops")
            _ = try await store.revoke(jti: "admin", expiresAt: nil, reason: "leak", actor: "ops")
            // The same `before` (a default of "now" would move it as the clock turns a second).
            let before = Int64(Date().timeIntervalSince1970) - 10
            _ = try await store.setCutoff(claim: "sub", value: "alice", before: before, actor: "ops")
            _ = try await store.setCutoff(claim: "sub", value: "alice", before: before, actor: "ops")
            #expect(try await ids(redis).count == 3)
            #expect(try await store.audit(limit: 10).count == 4)
            // A change is a change: a later expiry, or another reason.
            _ = try await store.revoke(jti: "same", expiresAt: 4_000_000_100)
            _ = try await store.revoke(jti: "admin", expiresAt: nil, reason: "other", actor: "ops")
            #expect(try await ids(redis).count == 5)
        }
    }
}
