import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Redis
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeServer
import RevokeSnapshot
import RevokeTestSupport
import Testing

/// Contract section 7: a blocked signing key revokes every token it signed, whatever its `iat`,
/// in the checks, the snapshot, the events and the caching client; and `iss` as a cutoff claim.
@Suite struct KeyBlockTests {
    @Test func aBlockedKeyRevokesEveryTokenItSigned() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let future = Int(Date().timeIntervalSince1970) + 3600
            // A thief mints any iat: one from the future is refused all the same.
            let stolen = Mint.hmac(payload: #"{"jti":"stolen-1","iat":\#(future),"exp":\#(future + 600)}"#, kid: "leaked-1")
            let other = Mint.hmac(payload: Mint.claims(jti: "other-1"), kid: "current-2")
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(stolen)"}"#).json["revoked"] == .bool(false))

            let blocked = try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"leaked-1","reason":"INC-4200"}"#, key: "admin-secret")
            #expect(blocked.status == .created, "\(blocked.text)")
            #expect(blocked.json["kid"] == .string("leaked-1") && blocked.json["reason"] == .string("INC-4200"))
            #expect(blocked.json["created_at"] != nil)
            // Again: the record as it was, and no second event.
            let events = try await redis.send(RedisCommand("XLEN", "revoke:events")).integer
            let again = try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"leaked-1","reason":"other"}"#, key: "admin-secret")
            #expect(again.status == .ok && again.json["reason"] == .string("INC-4200") && again.json["created_at"] == blocked.json["created_at"])
            #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")).integer == events)
            #expect(try await redis.send(RedisCommand("HGET", "revoke:kid:leaked-1", "reason")).string == "INC-4200")
            #expect(try await redis.send(RedisCommand("TTL", "revoke:kid:leaked-1")).integer == -1, "a key block has no TTL")

            let read = try await client.call(.get, "/v1/key-blocks/leaked-1")
            #expect(read.status == .ok && read.json["kid"] == .string("leaked-1"))
            #expect(try await client.call(.get, "/v1/key-blocks/current-2").status == .notFound)

            let byToken = try await client.call(.post, "/v1/check", json: #"{"token":"\#(stolen)"}"#)
            #expect(byToken.text == #"{"kid":"leaked-1","reason":"key","revoked":true}"#, "\(byToken.text)")
            let explicit = try await client.call(.post, "/v1/check", json: #"{"jti":"anything","kid":"leaked-1"}"#)
            #expect(explicit.json["reason"] == .string("key"))
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(other)"}"#).json["revoked"] == .bool(false))
            let batch = try await client.call(
                .post, "/v1/check/batch", json: #"{"checks":[{"token":"\#(stolen)"},{"token":"\#(other)"},{"kid":"leaked-1"},{"kid":7}]}"#)
            guard case .array(let results)? = batch.json["results"], results.count == 4 else {
                Issue.record("\(batch.text)")
                return
            }
            #expect(results[0].object?["reason"] == .string("key") && results[1].object?["revoked"] == .bool(false))
            #expect(results[2].object?["kid"] == .string("leaked-1") && results[3].object?["error"] == .string("invalid_request"))

            // The snapshot carries it.
            let snapshotBytes = try await client.execute(uri: "/v1/snapshot", method: .get) { Array(buffer: $0.body) }
            #expect(try Snapshot(decoding: snapshotBytes).keyBlocks == ["leaked-1"])

            // Bad input, and the roles.
            for body in [#"{}"#, #"{"kid":""}"#, #"{"kid":7}"#, #"{"kid":"\#(String(repeating: "k", count: 257))"}"#] {
                let refused = try await client.call(.post, "/v1/key-blocks", json: body, key: "admin-secret")
                #expect(refused.status == .badRequest && refused.error == "invalid_request", "\(body): \(refused.text)")
            }
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"x"}"#).status == .unauthorized)

            #expect(try await client.call(.delete, "/v1/key-blocks/leaked-1?reason=rotated", key: "admin-secret").status == .noContent)
            #expect(try await client.call(.delete, "/v1/key-blocks/leaked-1", key: "admin-secret").status == .notFound)
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(stolen)"}"#).json["revoked"] == .bool(false))

            let audit = try await client.call(.get, "/v1/audit?limit=5", key: "admin-secret")
            #expect(audit.text.contains(#""action":"keyblock""#) && audit.text.contains(#""action":"unkeyblock""#), "\(audit.text)")
            let types = try await redis.xrange("revoke:events").compactMap { $0["type"].map { String(decoding: $0, as: UTF8.self) } }
            #expect(types.suffix(2) == ["keyblock", "unkeyblock"])
        }
    }

    /// The caching client refuses a blocked key's tokens from its own cache: from the events
    /// while it follows, from the snapshot when it starts.
    @Test func theCachingClientAppliesKeyBlocksLocally() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, _, _) async throws in
            let port = try #require(client.port)
            let token = Mint.hmac(payload: Mint.claims(jti: "cached-1"), kid: "leaked-2")
            try await withCachingClient(port: port, cache: .init(staleness: .seconds(3))) { cache in
                #expect(await cache.check(token: token) == .init(revoked: false, source: .cache))
                _ = try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"leaked-2"}"#, key: "admin-secret")
                try await waitUntil("the event blocks the key in the cache") {
                    await cache.check(token: token) == .init(revoked: true, reason: .key(kid: "leaked-2"), source: .cache)
                }
            }
            // A client starting now learns it from the snapshot.
            try await withCachingClient(port: port, cache: .init(staleness: .seconds(3))) { cache in
                #expect(await cache.check(CheckQuery(jti: "new", kid: "leaked-2")) == .init(revoked: true, reason: .key(kid: "leaked-2"), source: .cache))
                _ = try await client.call(.delete, "/v1/key-blocks/leaked-2", key: "admin-secret")
                try await waitUntil("the event unblocks the key in the cache") {
                    await cache.check(token: token) == .init(revoked: false, source: .cache)
                }
            }
        }
    }

    /// `iss` is a cutoff claim like any other: everything an issuer minted before a time.
    @Test func anIssuerCutoffRevokesWhatItMintedBefore() async throws {
        try await withRevoked { configuration in
            configuration.cutoffClaims = try! CutoffClaims(parsing: "sub,iss")
        } _: { (client, _, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let before = Mint.hmac(payload: #"{"jti":"i-1","iss":"https://old.example","iat":\#(now - 60),"exp":\#(now + 600)}"#)
            let cut = try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"iss","value":"https://old.example","before":\#(now - 30)}"#, key: "admin-secret")
            #expect(cut.status == .created, "\(cut.text)")
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(before)"}"#).text == #"{"claim":"iss","reason":"cutoff","revoked":true}"#)
            let later = Mint.hmac(payload: #"{"jti":"i-2","iss":"https://old.example","iat":\#(now - 10),"exp":\#(now + 600)}"#)
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(later)"}"#).json["revoked"] == .bool(false))
            let elsewhere = Mint.hmac(payload: #"{"jti":"i-3","iss":"https://new.example","iat":\#(now - 60),"exp":\#(now + 600)}"#)
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(elsewhere)"}"#).json["revoked"] == .bool(false))
        }
    }

    @Test func revokectlBlocksShowsAndUnblocksKeys() async throws {
        try await withRevoked { (client, _, _) async throws in
            let ctl = Revokectl(url: "http://localhost:\(try #require(client.port))")
            let blocked = try await ctl("block-key", "ctl-key", "--reason", "leaked", "--json")
            #expect(blocked.status == 0 && blocked.json["kid"] == .string("ctl-key"), "\(blocked)")
            let shown = try await ctl("show", "--kid", "ctl-key")
            #expect(shown.status == 0 && shown.output.contains("leaked"), "\(shown)")
            let unblocked = try await ctl("unblock-key", "ctl-key")
            #expect(unblocked.status == 0, "\(unblocked)")
            let again = try await ctl("unblock-key", "ctl-key")
            #expect(again.status == 1 && again.error.hasPrefix("revokectl: ") && again.error.contains("not blocked"), "\(again)")
            let bad = try await ctl("show", "--kid", "a", "--jti", "b")
            #expect(bad.status == 2, "\(bad)")
        }
    }
}

/// `RevokeClient.cachedVerdict`: the cache's answer without suspending, saying when the cache
/// last heard from the server and where it stands in the log; nil whenever the server must answer.
@Suite struct CachedVerdictTests {
    @Test func theCacheAnswersAtOnceAndSaysHowFreshItIs() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let port = try #require(client.port)
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"cv-revoked","expires_at":null}"#, key: "admin-secret").status == .created)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"frank"}"#, key: "admin-secret").status == .created)
            try await withCachingClient(port: port, cache: .init(staleness: .seconds(3))) { cache in
                let last = try #require(try await redis.xrange("revoke:events").last?.id)
                let asked = ContinuousClock.now
                let absent = try #require(cache.cachedVerdict(CheckQuery(jti: "cv-absent")))
                #expect(absent == .init(revoked: false, source: .cache))
                #expect(absent.cursor == last, "\(String(describing: absent.cursor)) vs \(last)")
                let heard = try #require(absent.heardAt)
                #expect(heard <= ContinuousClock.now && asked - heard < .seconds(3), "heard \(asked - heard) before the question")
                // A cutoff is answered locally too; a filter hit must go to the server.
                #expect(cache.cachedVerdict(CheckQuery(jti: "x", issuedAt: 1, claims: ["sub": "frank"]))?.reason == .cutoff(claim: "sub"))
                #expect(cache.cachedVerdict(CheckQuery(jti: "cv-revoked")) == nil)
                #expect(await cache.check(CheckQuery(jti: "cv-revoked")) == .init(revoked: true, reason: .jti, source: .server))
            }
            // Without a cache there is nothing to answer locally.
            let plain = RevokeClient(configuration: .init(url: "http://127.0.0.1:\(port)"))
            #expect(plain.cachedVerdict(CheckQuery(jti: "cv-absent")) == nil)
        }
    }
}
