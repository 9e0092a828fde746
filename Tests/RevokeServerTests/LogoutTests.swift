import Crypto
import Foundation
import HTTPTypes
import Redis
import RedisSupervisor
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

@Suite struct LogoutTests {
    @Test func revokesAVerifiedTokenForItsRemainingLifetime() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let exp = Int64(Date().timeIntervalSince1970) + 600
            let token = Mint.hmac(payload: Mint.claims(jti: "logout-1", expiresAt: exp))
            let sent = Date().timeIntervalSince1970
            let reply = try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#)
            #expect(reply.status == .ok)
            #expect(reply.json["revoked"] == .bool(true))
            #expect(reply.json["jti"] == .string("logout-1"))
            let ttl = try #require(try await redis.send(RedisCommand("TTL", "revoke:jti:logout-1")).integer)
            let window = TTLWindow(expiresAt: exp, requestSentAt: sent, readAt: Date().timeIntervalSince1970)
            #expect(window.contains(ttl), "TTL \(ttl), expected \(window)")
            // Repeating it is harmless.
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#).status == .ok)
            let check = try await client.call(.post, "/v1/check", json: #"{"token":"\#(token)"}"#)
            #expect(check.json == ["revoked": .bool(true), "reason": .string("jti")])
        }
    }

    @Test func revokesTheBearerTokenOfAnEmptyBody() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let token = Mint.hmac("HS512", payload: Mint.claims(jti: "bearer-1"))
            let reply = try await client.call(.post, "/v1/revoke", headers: [.authorization: "Bearer \(token)"])
            #expect(reply.status == .ok)
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:bearer-1")) == .integer(1))
        }
    }

    @Test func anExpiredTokenIsAnsweredNotStored() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let token = Mint.hmac(payload: Mint.claims(jti: "old", lifetime: -60))
            let reply = try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#)
            #expect(reply.status == .ok)
            #expect(reply.json == ["revoked": .bool(false), "reason": .string("expired")])
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:old")) == .integer(0))
        }
    }

    @Test func refusesTokensThatDoNotVerify() async throws {
        let ec = P256.Signing.PrivateKey()
        try await withRevoked { configuration in
            configuration.publicKeyPEM = ec.publicKey.pemRepresentation
        } _: { (client, redis, _) async throws in
            let claims = Mint.claims(jti: "forged")
            let wrongSecret = Mint.hmac(secret: String(repeating: "x", count: 64), payload: claims)
            let none = Mint.b64(Array(#"{"alg":"none"}"#.utf8)) + "." + Mint.b64(Array(claims.utf8)) + "."
            // Algorithm confusion: HS256 with the issuer's public key as the HMAC secret.
            let confused = Mint.hmac(secret: ec.publicKey.pemRepresentation, payload: claims)
            // An ES256 signature presented as RS256: the key pins ES256.
            let relabelled = try Mint.es256(ec, payload: claims, alg: "RS256")
            let tampered = try Mint.es256(ec, payload: claims).dropLast(4) + "AAAA"
            for token in [wrongSecret, none, confused, relabelled, String(tampered), "a.b.c", "not a token"] {
                let reply = try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#)
                #expect(reply.status == .unauthorized, "\(token)")
                #expect(reply.error == "invalid_token")
            }
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:forged")) == .integer(0))
            // The genuine ES256 token is accepted.
            let genuine = try Mint.es256(ec, payload: claims)
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(genuine)"}"#).status == .ok)
        }
    }

    @Test func picksKeysByKidFromAJWKS() async throws {
        let ec = P256.Signing.PrivateKey()
        let ed = Curve25519.Signing.PrivateKey()
        let x963 = Array(ec.publicKey.x963Representation)
        let jwks = """
            {"keys":[
              {"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","x":"\(Mint.b64(x963[1...32]))","y":"\(Mint.b64(x963[33...64]))"},
              {"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"\(Mint.b64(ed.publicKey.rawRepresentation))"}
            ]}
            """
        try await withRevoked { configuration in
            configuration.hmacSecret = nil
            configuration.jwks = jwks
        } _: { (client, _, _) async throws in
            let byEC = try Mint.es256(ec, payload: Mint.claims(), kid: "ec-1")
            let byEd = try Mint.eddsa(ed, payload: Mint.claims(), kid: "ed-1")
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(byEC)"}"#).status == .ok)
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(byEd)"}"#).status == .ok)
            let unknown = try Mint.es256(ec, payload: Mint.claims(), kid: "nope")
            let wrongKey = try Mint.es256(ec, payload: Mint.claims(), kid: "ed-1")
            let noKid = try Mint.es256(ec, payload: Mint.claims())
            let hmac = Mint.hmac(payload: Mint.claims())
            for token in [unknown, wrongKey, hmac] {
                #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#).error == "invalid_token")
            }
            // Without a kid, the only key that accepts ES256 is chosen.
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(noKid)"}"#).status == .ok)
        }
    }

    @Test func checksIssuerAndAudienceWhenConfigured() async throws {
        try await withRevoked { configuration in
            configuration.issuer = "https://issuer.example"
            configuration.audience = "api"
        } _: { (client, _, _) async throws in
            let good = Mint.hmac(payload: Mint.claims(extra: #""iss":"https://issuer.example","aud":["web","api"]"#))
            let wrongIssuer = Mint.hmac(payload: Mint.claims(extra: #""iss":"https://evil.example","aud":"api""#))
            let noAudience = Mint.hmac(payload: Mint.claims(extra: #""iss":"https://issuer.example""#))
            let accepted = try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(good)"}"#)
            #expect(accepted.status == .ok)
            let refused = [
                try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(wrongIssuer)"}"#),
                try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(noAudience)"}"#),
            ]
            #expect(refused.map(\.error) == ["invalid_token", "invalid_token"])
        }
    }

    @Test func refusesRequestsItCannotServe() async throws {
        try await withRevoked { (client, _, _) async throws in
            let noJTI = Mint.hmac(payload: Mint.claims(jti: nil))
            let longJTI = Mint.hmac(payload: Mint.claims(jti: String(repeating: "é", count: 128) + "x"))
            for body in [#"{"token":""}"#, "{}", #"{"token":5}"#, #"{"token":"\#(noJTI)"}"#, #"{"token":"\#(longJTI)"}"#, #"{"tokens":[]}"#,
                #"{"token":"\#(noJTI)","tokens":["\#(noJTI)"]}"#,
            ] {
                let reply = try await client.call(.post, "/v1/revoke", json: body)
                #expect(reply.status == .badRequest, "\(body)")
                #expect(reply.error == "invalid_request")
            }
            #expect(try await client.call(.post, "/v1/revoke").status == .badRequest)
            let seventeen = (0..<17).map { _ in #""\#(Mint.hmac(payload: Mint.claims()))""# }.joined(separator: ",")
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"tokens":[\#(seventeen)]}"#).status == .badRequest)
            #expect(try await client.call(.post, "/v1/revoke", contentType: "text/plain", body: "token=x").status == .unsupportedMediaType)
        }
    }

    @Test func aBatchAnswersEachTokenInOrder() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let good = Mint.hmac(payload: Mint.claims(jti: "batch-good"))
            let expired = Mint.hmac(payload: Mint.claims(jti: "batch-old", lifetime: -10))
            let reply = try await client.call(.post, "/v1/revoke", json: #"{"tokens":["\#(good)","garbage","\#(expired)",7]}"#)
            #expect(reply.status == .ok)
            guard case .array(let results)? = reply.json["results"], results.count == 4 else {
                Issue.record("unexpected body \(reply.text)")
                return
            }
            #expect(results[0] == .object(["revoked": .bool(true), "jti": .string("batch-good"), "expires_at": results[0].expiresAt]))
            #expect(results[1].errorCode == "invalid_token")
            #expect(results[2] == .object(["revoked": .bool(false), "reason": .string("expired")]))
            #expect(results[3].errorCode == "invalid_request")
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:batch-good")) == .integer(1))
        }
    }

    @Test func speaksRFC7009() async throws {
        try await withRevoked { (client, redis, server) async throws in
            let token = Mint.hmac(payload: Mint.claims(jti: "oauth-1"))
            let form = "application/x-www-form-urlencoded"
            let ok = try await client.call(.post, "/oauth2/revoke", contentType: form, body: "token=\(token)&token_type_hint=access_token")
            #expect(ok.status == .ok && ok.text.isEmpty)
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:oauth-1")) == .integer(1))
            #expect(try await client.call(.post, "/oauth2/revoke", contentType: form, body: "token=garbage").status == .ok)
            #expect(try await client.call(.post, "/oauth2/revoke", contentType: form, body: "token_type_hint=x").error == "invalid_request")
            server.pause()
            defer { server.resume() }
            let down = try await client.call(.post, "/oauth2/revoke", contentType: form, body: "token=\(token)")
            #expect(down.status == .serviceUnavailable)
            #expect(down.headers[.retryAfter] != nil)
        }
    }
}

extension JSONValue {
    var errorCode: String? {
        if case .object(let object) = self, case .string(let code)? = object["error"] { return code }
        return nil
    }

    var expiresAt: JSONValue {
        if case .object(let object) = self { return object["expires_at"] ?? .null }
        return .null
    }
}
