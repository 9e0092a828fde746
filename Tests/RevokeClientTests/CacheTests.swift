import ChildProcess
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeServer
import RevokeSnapshot
import Synchronization
import RevokeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct CacheTests {
    let admin = "admin-secret"

    @Test func snapshotAndEventsSpeakTheContract() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, redis, _) async throws in
            let port = try #require(client.port)
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"snap-1","expires_at":null}"#, key: "admin-secret").status == .created)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"alice"}"#, key: "admin-secret").status == .created)

            let (bytes, cursorHeader) = try await client.execute(uri: "/v1/snapshot", method: .get) { response in
                (Array(response.body.readableBytesView), response.headers[HTTPField.Name("Revoke-Cursor")!])
            }
            let snapshot = try Snapshot(decoding: bytes)
            #expect(snapshot.filter.mightContain("snap-1"))
            #expect(snapshot.revocations == 1)
            #expect(snapshot.cutoffs.map(\.value) == ["alice"])
            #expect(cursorHeader == snapshot.cursor)

            // Replay from the start: both events, in order, with ids, then heartbeats.
            let replay = try await RawHTTP.stream(port: port, path: "/v1/events?since=0-0") { $0.contains(#""value":"alice""#) }
            #expect(replay.hasPrefix("HTTP/1.1 200"))
            #expect(replay.lowercased().contains("content-type: text/event-stream"))
            let revocation = try #require(replay.range(of: "event: revocation\nid: "))
            let cutoff = try #require(replay.range(of: "event: cutoff\nid: "))
            #expect(revocation.lowerBound < cutoff.lowerBound)
            #expect(replay.contains(#""jti":"snap-1""#))
            // Without since: it starts now, with heartbeats at least every 2 s.
            let live = try await RawHTTP.stream(port: port, path: "/v1/events") { $0.components(separatedBy: ": heartbeat").count > 3 }
            #expect(!live.contains("event:"))

            #expect(try await client.call(.get, "/v1/events?since=yesterday").error == "invalid_request")
            // Trim the log past a cursor: that cursor is gone.
            _ = try await redis.send(RedisCommand("XTRIM", "revoke:events", "MAXLEN", "0"))
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"snap-2","expires_at":null}"#, key: "admin-secret").status == .created)
            // A cursor before the trimmed events is gone; the last one kept is not.
            let gone = try await client.call(.get, "/v1/events?since=0-1")
            #expect(gone.status == .gone && gone.error == "gone")
            #expect(try await client.call(.get, "/v1/events?since=\(snapshot.cursor)").status == .gone)
            let kept = try #require(try await redis.xrange("revoke:events").first?.id)
            let resumed = try await RawHTTP.stream(port: port, path: "/v1/events?since=\(kept)") { $0.contains(": heartbeat") }
            #expect(resumed.hasPrefix("HTTP/1.1 200") && !resumed.contains("snap-"))
            #expect(try await client.call(.post, "/v1/snapshot").status == .methodNotAllowed)
        }
    }

    @Test func aCachingClientRefusesARevocationWithinOneEventAndAppliesCutoffsLocally() async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            let applied = AppliedEvents()
            try await withCachingClient(port: port, cache: .init(onEvent: applied.onEvent)) { revoke in
                let query = CheckQuery(jti: "cached-1", issuedAt: 1_700_000_000, claims: ["sub": "bob"])
                #expect(await revoke.check(query) == .init(revoked: false, source: .cache))

                let before = applied.count
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"cached-1","expires_at":null}"#, key: "admin-secret").status == .created)
                try await applied.waitForMore(than: before)
                #expect(await revoke.check(query) == .init(revoked: true, reason: .jti, source: .server))

                let beforeCutoff = applied.count
                #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"bob"}"#, key: "admin-secret").status == .created)
                try await applied.waitForMore(than: beforeCutoff)
                let other = CheckQuery(jti: "other-jti", issuedAt: 1_700_000_000, claims: ["sub": "bob"])
                #expect(await revoke.check(other) == .init(revoked: true, reason: .cutoff(claim: "sub"), source: .cache))
                // Minted after the cutoff: not revoked, still without the server.
                let later = CheckQuery(jti: "later-jti", issuedAt: Date().timeIntervalSince1970 + 60, claims: ["sub": "bob"])
                #expect(await revoke.check(later) == .init(revoked: false, source: .cache))

                let beforeUncut = applied.count
                #expect(try await client.call(.delete, "/v1/cutoffs/sub/bob", key: "admin-secret").status == .noContent)
                try await applied.waitForMore(than: beforeUncut)
                #expect(await revoke.check(other) == .init(revoked: false, source: .cache))
            }
        }
    }

    /// Both clocks are driven: revoked's (its snapshot drops a revocation once its clock is
    /// past the token's expiry) and the client's (its snapshot is due again after
    /// `refreshInterval`). Redis' expiry, which no clock of ours drives, is what a `DEL` does.
    @Test func expiredJTIsLeaveTheFilterAtTheNextSnapshot() async throws {
        let serverClock = DrivenClock()
        let clientClock = DrivenClock()
        try await withRevoked(configure: { $0.snapshotMaximumAge = 0 }, now: serverClock.unixSeconds) { (client, redis, _) async throws in
            let port = try #require(client.port)
            let expiresAt = Int(serverClock.unixSeconds()) + 60
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"short-lived","expires_at":\#(expiresAt)}"#, key: "admin-secret").status == .created)
            try await withCachingClient(port: port, cache: .init(refreshInterval: .seconds(600), clock: clientClock.monotonic)) { revoke in
                let query = CheckQuery(jti: "short-lived")
                // Revoked, by the server, since the filter holds it.
                #expect(await revoke.check(query) == .init(revoked: true, reason: .jti, source: .server))
                let loaded = revoke.snapshotsLoaded
                // The token expires: Redis lets the key go, revoked's clock passes its expiry
                // (and the skew), and the client's next snapshot is due.
                _ = try await redis.send(RedisCommand("DEL", "revoke:jti:short-lived"))
                serverClock.advance(by: .seconds(3600))
                try await waitUntil("revoked's snapshot no longer holds it") {
                    let snapshot = try? await client.execute(uri: "/v1/snapshot", method: .get) { response in
                        try Snapshot(decoding: Array(response.body.readableBytesView))
                    }
                    return snapshot.map { $0.revocations == 0 && !$0.filter.mightContain("short-lived") } ?? false
                }
                clientClock.advance(by: .seconds(601))
                // The filter no longer holds it: answered from the cache.
                try await waitUntil("the expired jti left the filter") {
                    await revoke.check(query) == .init(revoked: false, source: .cache)
                }
                #expect(revoke.snapshotsLoaded > loaded)
            }
        }
    }
}

/// The caching client against `revoked` processes: restarts, several processes on one Redis,
/// a trimmed log, silence, and an unreachable server.
@Suite struct CacheProcessTests {
    func revoke(_ port: Int, _ jti: String) async throws {
        try await RawHTTP.revoke(port: port, jti: jti, key: "k-0123456789abcdef")
    }

    @Test func resumesAfterARestartFromAnyProcessAndReloadsOn410() async throws {
        try await withRedisServer { redis in
            let url = "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0"
            let (portA, portB) = (try RedisServerProcess.freeLoopbackPort(), try RedisServerProcess.freeLoopbackPort())
            let keys = ["REVOKE_ADMIN_KEYS": "ops:k-0123456789abcdef", "REVOKE_SNAPSHOT_MAX_AGE": "0"]
            let first = Mutex(try Revoked.start(port: portA, redisURL: url, environment: keys))
            let other = try Revoked.start(port: portB, redisURL: url, environment: keys)
            defer {
                first.withLock { $0 }.process.signal(SIGKILL)
                other.process.signal(SIGKILL)
            }
            try await first.withLock { $0 }.waitUntilReady()
            try await other.waitUntilReady()
            let applied = AppliedEvents()
            try await withCachingClient(port: portA, cache: .init(staleness: .seconds(30), onEvent: applied.onEvent)) { client in
                // A revocation made on the other process reaches the client through this one.
                try await revoke(portB, "via-b")
                try await applied.waitForMore(than: 0)
                #expect(await client.check(CheckQuery(jti: "via-b")).revoked)

                // Restart: made while the client's server was down, learned on its return.
                await first.withLock { $0 }.process.terminate()
                try await revoke(portB, "while-down")
                let restarted = try Revoked.start(port: portA, redisURL: url, environment: keys)
                first.withLock { $0 = restarted }
                try await restarted.waitUntilReady()
                try await applied.waitForMore(than: 1)
                #expect(await client.check(CheckQuery(jti: "while-down")) == .init(revoked: true, reason: .jti, source: .server))
                #expect(client.snapshotsLoaded == 1)

                // Down again, and the log trimmed past the client's cursor: 410, a new snapshot.
                await first.withLock { $0 }.process.terminate()
                try await withRedisClient(redis.configuration()) { inspector in
                    _ = try await inspector.send(RedisCommand("XTRIM", "revoke:events", "MAXLEN", "0"))
                }
                try await revoke(portB, "after-trim")
                let again = try Revoked.start(port: portA, redisURL: url, environment: keys)
                first.withLock { $0 = again }
                try await again.waitUntilReady()
                try await waitUntil("a new snapshot loaded") { client.snapshotsLoaded == 2 }
                #expect(await client.check(CheckQuery(jti: "after-trim")) == .init(revoked: true, reason: .jti, source: .server))
            }
        }
    }

    @Test func aSilentServerMakesTheCacheStaleAndAnUnreachableOneFollowsThePolicy() async throws {
        try await withRedisServer { redis in
            let url = "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0"
            let port = try RedisServerProcess.freeLoopbackPort()
            let server = try Revoked.start(port: port, redisURL: url, environment: ["REVOKE_ADMIN_KEYS": "ops:k-0123456789abcdef"])
            defer { server.process.signal(SIGKILL) }
            try await server.waitUntilReady()
            // Staleness is judged on a clock the test drives: a minute of silence, which a busy
            // machine never reaches by chance, passes when the test says so.
            let clock = DrivenClock()
            let closed = RevokeClient.CacheConfiguration(staleness: .seconds(60), clock: clock.monotonic)
            let open = RevokeClient.CacheConfiguration(staleness: .seconds(60), failurePolicy: .failOpen, clock: clock.monotonic)
            try await withCachingClient(port: port, cache: closed, requestTimeout: .milliseconds(300)) { failClosed in
                try await withCachingClient(port: port, cache: open, requestTimeout: .milliseconds(300)) { failOpen in
                    let query = CheckQuery(jti: "anything")
                    try await waitUntil("answered from the cache") { await failClosed.check(query) == .init(revoked: false, source: .cache) }
                    // Frozen: no heartbeat, so the caches go stale and ask the server, which
                    // cannot answer: each applies its policy within the request timeout.
                    server.process.signal(SIGSTOP)
                    try await waitUntil("the cache went stale") {
                        clock.advance(by: .seconds(61))
                        return !failClosed.isCacheFresh && !failOpen.isCacheFresh
                    }
                    #expect(await failClosed.check(query) == .init(revoked: true, reason: .unavailable, source: .policy))
                    #expect(await failOpen.check(query) == .init(revoked: false, reason: .unavailable, source: .policy))
                    server.process.signal(SIGCONT)
                    try await waitUntil("answered from the cache again") {
                        await failClosed.check(query) == .init(revoked: false, source: .cache)
                    }
                }
            }
        }
    }

    /// An open event stream does not hold up a SIGTERM: the stream ends and revoked exits 0.
    @Test func sigtermEndsOpenEventStreams() async throws {
        try await withRedisServer { redis in
            let port = try RedisServerProcess.freeLoopbackPort()
            let server = try Revoked.start(port: port, redisURL: "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0")
            defer { server.process.signal(SIGKILL) }
            try await server.waitUntilReady()
            try await withCachingClient(port: port, cache: .init()) { _ in
                server.process.signal(SIGTERM)
                let status = await server.process.waitUntilExit()
                #expect(ChildProcess.exitCode(of: status) == 0, "\(server.log())")
            }
        }
    }
}
