import ChildProcess
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import LoopbackHTTP
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeServer
import Synchronization
import RevokeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Contract section 5: a stream delivers every change after its position, in order, or ends
/// (and its cursor answers 410); a snapshot always resumes; repeats append nothing; limits are
/// set by configuration, not by an attacker; and none of it stops the checks.
@Suite struct PropagationTests {
    /// An admin revocation through `revoked` on `port` (whose admin key is `k` as a process,
    /// `admin-secret` in-process).
    func revoke(_ port: Int, _ jti: String, key: String = "admin-secret") async throws {
        try await RawHTTP.revoke(port: port, jti: jti, key: key)
    }

    /// Without `since`, a stream starts where the log is as the request arrives: changes
    /// acknowledged before it are not on it, even those the hub has not read yet. (2,000 changes
    /// appended at once, as another instance writes them, just before the stream is opened: the
    /// hub reads them a moment later.)
    @Test func withoutSinceAStreamStartsWhereTheLogIsWhenTheRequestArrives() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let port = try #require(client.port)
            _ = try await OpenStream.live(port: port, path: "/v1/events")
            let burst = """
                for i = 1, tonumber(ARGV[1]) do
                  redis.call('XADD', KEYS[1], '*', 'type', 'revocation', 'data',
                    cjson.encode({jti = 'before-' .. i, expires_at = cjson.null, revoked_at = tonumber(ARGV[2]), reason = cjson.null}))
                end
                return redis.call('XLEN', KEYS[1])
                """
            _ = try await redis.send(RedisCommand("EVAL", burst, "1", "revoke:events", "2000", "\(Int(Date().timeIntervalSince1970))"))
            let stream = try await OpenStream.open(port: port, path: "/v1/events")
            try await stream.read { $0.contains(": heartbeat") }
            try await revoke(port, "after-the-request")
            let text = try await stream.read { $0.contains("after-the-request") }
            #expect(OpenStream.jtis(in: text) == ["after-the-request"], "\(OpenStream.jtis(in: text).prefix(5))")
        }
    }

    /// A `revoked` frozen while another writes and trims the log past its position sends
    /// nothing past the gap when it wakes: its stream ends, and resuming from what it sent
    /// answers 410.
    @Test func aServerThatFellBehindATrimmedLogEndsItsStreamsInsteadOfSkipping() async throws {
        try await withLaggingAndWriter { portA, portB, lagging in
            let stream = try await OpenStream.live(port: portA, path: "/v1/events")
            try await revoke(portB, "j-first", key: "k-0123456789abcdef")
            try await stream.read { $0.contains(#""jti":"j-first""#) }

            lagging.signal(SIGSTOP)
            let written = (0..<300).map { "j-\($0)" }
            for jti in written { try await revoke(portB, jti, key: "k-0123456789abcdef") }
            lagging.signal(SIGCONT)

            // Whatever it sent after waking follows on without a hole, then the stream ended.
            try await stream.read { OpenStream.ended($0) }
            let delivered = Array(stream.revokedJTIs.dropFirst())
            #expect(delivered == Array(written.prefix(delivered.count)), "a gap: \(delivered.prefix(5)) ... of \(delivered.count)")
            #expect(delivered.count < written.count)
            let resumeFrom = try #require(stream.lastID)
            for port in [portA, portB] {
                // A 503 says "not now" (the woken process may still be reconnecting); the answer
                // once it follows the log again must be 410, never a stream.
                let resumed = try await RawHTTP.requestUntilNot503(port: port, path: "/v1/events?since=\(resumeFrom)")
                #expect(resumed.hasPrefix("HTTP/1.1 410"), "\(resumed.prefix(200))")
            }
            // A new snapshot resumes.
            let snapshot = try await RawHTTP.request(port: portA, path: "/v1/snapshot")
            let cursor = try #require(snapshot.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("revoke-cursor:") }?
                .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces))
            let fresh = try await OpenStream.open(port: portA, path: "/v1/events?since=\(cursor)")
            let answer = try await fresh.read { $0.contains(": heartbeat") || OpenStream.ended($0) }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
        }
    }

    /// Trimmed under a cursor while nobody watched: 410 before the stream begins, never the
    /// changes after the trimmed ones.
    @Test func aReplayThatWouldStartAfterAGapAnswers410() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 60
        } _: { (client, redis, _) async throws in
            let port = try #require(client.port)
            for index in 0..<10 { try await revoke(port, "r-\(index)") }
            let ids = try await redis.xrange("revoke:events").map(\.id)
            _ = try await redis.send(RedisCommand("XTRIM", "revoke:events", "MINID", ids[5]))
            let gone = try await client.call(.get, "/v1/events?since=\(ids[2])")
            #expect(gone.status == .gone && gone.error == "gone")
            // The last trimmed one's successor is still complete after the first kept.
            let kept = try await OpenStream.open(port: port, path: "/v1/events?since=\(ids[5])")
            try await kept.read { $0.contains(#""jti":"r-9""#) }
            #expect(kept.revokedJTIs == ["r-6", "r-7", "r-8", "r-9"])
        }
    }

    /// The snapshot kept for `REVOKE_SNAPSHOT_MAX_AGE` is not served once the log no longer
    /// holds its cursor: `since=<Revoke-Cursor>` right after it answers 200.
    @Test func aSnapshotAlwaysResumes() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 3600
            configuration.eventLogLength = 100
        } _: { (client, _, _) async throws in
            let port = try #require(client.port)
            try await revoke(port, "before")
            let first = try await client.execute(uri: "/v1/snapshot", method: .get) { $0.headers[HTTPField.Name("Revoke-Cursor")!] }
            for index in 0..<250 { try await revoke(port, "flood-\(index)") }
            let cursor = try await client.execute(uri: "/v1/snapshot", method: .get) { $0.headers[HTTPField.Name("Revoke-Cursor")!] }
            #expect(cursor != first)
            let resumed = try await OpenStream.open(port: port, path: "/v1/events?since=\(try #require(cursor))")
            let answer = try await resumed.read { $0.contains(": heartbeat") || OpenStream.ended($0) }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
        }
    }

    /// A logout of a token already revoked with the same expiry appends no event: holding one
    /// token is no lever on the log.
    @Test func repeatedLogoutsAppendNothing() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let token = Mint.hmac(payload: Mint.claims(jti: "once"))
            let tokens = String(repeating: #""\#(token)","#, count: 15) + #""\#(token)""#
            for _ in 0..<5 {
                #expect(try await client.call(.post, "/v1/revoke", json: #"{"tokens":[\#(tokens)]}"#).status == .ok)
            }
            #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")) == .integer(1))
        }
    }

    /// `REVOKE_MAX_EVENT_STREAMS`: one more stream is 503 `overloaded` with `Retry-After`; a
    /// stream that closes makes room; checks answer throughout.
    @Test func theStreamLimitRefusesOneMoreAndChecksGoOn() async throws {
        try await withRevoked { configuration in
            configuration.maximumEventStreams = 2
        } _: { (client, _, _) async throws in
            let port = try #require(client.port)
            var first: OpenStream? = try await OpenStream.live(port: port, path: "/v1/events")
            let second = try await OpenStream.open(port: port, path: "/v1/events")
            try await second.read { $0.contains(": heartbeat") }
            let refused = try await client.call(.get, "/v1/events")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.error == "overloaded")
            #expect(refused.headers[.retryAfter] != nil)
            #expect(try await client.call(.post, "/v1/check", json: #"{"jti":"x"}"#).status == .ok)
            first = nil  // closes its connection
            try await waitUntil("a closed stream makes room") {
                let again = try? await OpenStream.open(port: port, path: "/v1/events", timeout: 5)
                return (try? await again?.read { $0.contains("\r\n\r\n") })?.hasPrefix("HTTP/1.1 200") ?? false
            }
            #expect(first == nil && second.text.contains(": heartbeat"))
        }
    }

    /// `REVOKE_STREAM_BUFFER_BYTES`: a reader that takes nothing is cut off once that much is
    /// waiting for it, instead of being buffered for ever; checks answer throughout.
    @Test func aStreamThatIsNotReadIsClosed() async throws {
        try await withRevoked { configuration in
            configuration.streamBufferBytes = 8192
        } _: { (client, redis, _) async throws in
            let port = try #require(client.port)
            let stalled = try await OpenStream.live(port: port, path: "/v1/events")
            // Far more than the socket buffers hold (20 MB), written straight into the log.
            let padding = String(repeating: "p", count: 2000)
            for batch in 0..<10 {
                let commands = (0..<1000).map { index in
                    RedisCommand("XADD", "revoke:events", "*", "type", "revocation", "data", #"{"jti":"big-\#(batch * 1000 + index)","pad":"\#(padding)"}"#)
                }
                _ = try await redis.send(batch: commands)
            }
            // On a new connection: the test client's pooled one may have sat idle past the timeout.
            let check = try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", json: #"{"jti":"x"}"#)
            #expect(check.hasPrefix("HTTP/1.1 200"))
            // Reading now drains what the kernel held, then finds the connection closed.
            let text = try await stalled.read { _ in false }
            #expect(!text.contains(#""big-9999""#), "the stalled stream was not cut off")
            #expect(text.contains(#""big-0""#))
        }
    }

    /// `REVOKE_IDLE_TIMEOUT`: a connection with no request in progress is closed.
    @Test func idleConnectionsAreClosed() async throws {
        try await withRevoked { configuration in
            configuration.idleTimeout = 1
        } _: { (client, _, _) async throws in
            let port = try #require(client.port)
            let idle = try await OpenStream.open(port: port, path: "/healthz", timeout: 120)
            // Served, then idle: closed by the server (the read ends, with no error).
            let served = try await idle.read { _ in false }
            #expect(served.hasPrefix("HTTP/1.1 200"))
            // A new connection (the test client's own pooled one was idle too, and closed).
            let check = try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", json: #"{"jti":"x"}"#)
            #expect(check.hasPrefix("HTTP/1.1 200"))
            _ = client
        }
    }

    /// A request head that has not arrived `REVOKE_HEAD_TIMEOUT` (here 1 s) after its first byte
    /// closes the connection, however long the idle timeout (the read would fail after 30 s if it
    /// stayed open).
    @Test func aHalfSentRequestHeadIsClosed() async throws {
        try await withRevoked { configuration in
            configuration.headTimeout = 1
        } _: { (client, _, _) async throws in
            let port = try #require(client.port)
            let halfSent = try await RawHTTP.onThread { () throws -> String in
                let socket = try LoopbackSocket(port: port, timeout: 30)
                try socket.write("GET /healthz HTTP/1.1\r\nHost: 12")
                return try socket.read()
            }
            #expect(halfSent.isEmpty, "\(halfSent.prefix(200))")
            #expect(try await client.call(.post, "/v1/check", json: #"{"jti":"x"}"#).status == .ok)
        }
    }

    /// On a kept-alive connection, each head gets its own `REVOKE_HEAD_TIMEOUT` (here 2 s) from
    /// its first byte: a head begun a second after an earlier request is closed, and not before
    /// its own deadline.
    @Test func eachRequestHeadGetsItsOwnDeadline() async throws {
        try await withRevoked { configuration in
            configuration.headTimeout = 2
        } _: { (client, _, _) async throws in
            let port = try #require(client.port)
            let (first, secondBegan, closed, rest) = try await RawHTTP.onThread {
                () throws -> (String, ContinuousClock.Instant, ContinuousClock.Instant, String) in
                let socket = try LoopbackSocket(port: port, timeout: 60)
                try socket.write("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                let first = try socket.read { $0.contains("\r\n\r\n") && $0.hasSuffix("}") }
                // Half the timeout, so that the second head begins inside the first one's: the
                // scenario itself, not a wait for something to happen.
                Thread.sleep(forTimeInterval: 1)
                let began = ContinuousClock.now
                try socket.write("GET /healthz HTTP/1.1\r\nHost: 12")
                let rest = try socket.read()
                return (first, began, ContinuousClock.now, rest)
            }
            #expect(first.hasPrefix("HTTP/1.1 200"), "\(first.prefix(200))")
            #expect(rest.isEmpty, "\(rest.prefix(200))")
            #expect(closed - secondBegan >= .seconds(2), "closed \(closed - secondBegan) after the head began")
        }
    }
}

/// The caching client under floods and bad events: it never answers "not revoked" for a
/// revocation it should have heard of, and never skips what it cannot read.
@Suite struct CachingClientPropagationTests {
    /// 600 revocations flood a log that keeps 100: whatever the client went through (410s,
    /// snapshots), once it has heard the last one, it refuses every one of them.
    @Test func underALogFloodNoRevocationIsMissed() async throws {
        try await withRevoked { configuration in
            configuration.eventLogLength = 100
            configuration.snapshotMaximumAge = 0
        } _: { (client, redis, _) async throws in
            let port = try #require(client.port)
            try await withCachingClient(port: port, cache: .init()) { revoke in
                let jtis = (0..<600).map { "flood-\($0)" }
                // Eight writers at once, so the log rolls while the client follows it.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for lane in 0..<8 {
                        group.addTask {
                            for jti in jtis[(lane * 75)..<(lane * 75 + 75)] { try await RawHTTP.revoke(port: port, jti: jti, key: "admin-secret") }
                        }
                    }
                    try await group.waitForAll()
                }
                try await RawHTTP.revoke(port: port, jti: "last", key: "admin-secret")
                // Heard of the last one: the filter holds it and the cache is live (so it asks
                // the server only because the filter said "maybe").
                try await waitUntil("the client heard the last revocation") {
                    guard revoke.isCacheFresh else { return false }
                    let verdict = await revoke.check(CheckQuery(jti: "last"))
                    return verdict == .init(revoked: true, reason: .jti, source: .server) && revoke.isCacheFresh
                }
                var missed: [String] = []
                for jti in jtis where await !revoke.check(CheckQuery(jti: jti)).revoked { missed.append(jti) }
                #expect(missed.isEmpty, "answered not revoked: \(missed.prefix(10)) (\(missed.count))")
                #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")).integer ?? 0 <= 101)
            }
        }
    }

    /// An event the client cannot read makes it load a snapshot, never skip it.
    @Test func anUnreadableEventMakesTheClientLoadASnapshot() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, redis, _) async throws in
            let port = try #require(client.port)
            try await withCachingClient(port: port, cache: .init()) { revoke in
                let loaded = revoke.snapshotsLoaded
                _ = try await redis.send(RedisCommand("XADD", "revoke:events", "*", "type", "revocation", "data", #"{"jti": 42"#))
                try await waitUntil("a snapshot loaded again") { revoke.snapshotsLoaded > loaded }
                // And it follows on: a revocation after it is heard.
                try await RawHTTP.revoke(port: port, jti: "after-bad", key: "admin-secret")
                try await waitUntil("the next revocation is heard") {
                    guard revoke.isCacheFresh else { return false }
                    return await revoke.check(CheckQuery(jti: "after-bad")).source == .server
                }
            }
        }
    }

    /// Cutoff values are matched by their bytes, as the server stores them: "é" composed and
    /// decomposed are two users, in the cache as on the server.
    @Test func cutoffValuesAreMatchedByTheirBytes() async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            let applied = AppliedEvents()
            try await withCachingClient(port: port, cache: .init(onEvent: applied.onEvent)) { revoke in
                let before = applied.count
                #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"\u00e9"}"#, key: "admin-secret").status == .created)
                try await applied.waitForMore(than: before)
                let composed = CheckQuery(jti: "n-1", issuedAt: 1_700_000_000, claims: ["sub": "\u{e9}"])
                let decomposed = CheckQuery(jti: "n-2", issuedAt: 1_700_000_000, claims: ["sub": "e\u{301}"])
                #expect(composed.claims["sub"] == decomposed.claims["sub"])  // Swift calls them equal
                #expect(await revoke.check(composed) == .init(revoked: true, reason: .cutoff(claim: "sub"), source: .cache))
                #expect(await revoke.check(decomposed) == .init(revoked: false, source: .cache))
                #expect(try await revoke.checkRemotely(decomposed) == .init(revoked: false, source: .server))
            }
        }
    }
}

/// Two `revoked` processes on one fresh `redis-server` whose event log keeps 100 events (admin
/// key `k`, each snapshot encoded anew): `body` gets the lagging one's port, the writer's, and
/// the lagging one's process, to freeze (`SIGSTOP`) while the writer writes and the log is
/// trimmed past it.
func withLaggingAndWriter(_ body: (Int, Int, ChildProcess) async throws -> Void) async throws {
    try await withRedisServer { redis in
        let url = "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0"
        let environment = ["REVOKE_ADMIN_KEYS": "ops:k-0123456789abcdef", "REVOKE_EVENT_LOG_LENGTH": "100", "REVOKE_SNAPSHOT_MAX_AGE": "0"]
        let (portA, portB) = (try RedisServerProcess.freeLoopbackPort(), try RedisServerProcess.freeLoopbackPort())
        let lagging = try Revoked.start(port: portA, redisURL: url, environment: environment)
        let writer = try Revoked.start(port: portB, redisURL: url, environment: environment)
        defer {
            lagging.process.signal(SIGCONT)
            lagging.process.signal(SIGKILL)
            writer.process.signal(SIGKILL)
        }
        try await lagging.waitUntilReady()
        try await writer.waitUntilReady()
        try await body(portA, portB, lagging.process)
    }
}
