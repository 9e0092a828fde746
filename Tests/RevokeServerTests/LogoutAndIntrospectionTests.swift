import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

/// Tokens minted by PyJWT (HS256 with `secret`), one per payload, `headers` added to each header.
func pyjwtTokens(secret: String = testSecret, headers: String = "{}", _ payloads: [String]) async throws -> [String] {
    let script = """
        import sys, json, jwt
        for line in sys.stdin:
            print(jwt.encode(json.loads(line), sys.argv[1], algorithm="HS256", headers=json.loads(sys.argv[2])))
        """
    let run = try await ProcessRun.run(ProcessRun.python, ["-c", script, secret, headers], input: payloads.joined(separator: "\n") + "\n")
    let tokens = run.output.split(separator: "\n").map(String.init)
    guard run.status == 0, tokens.count == payloads.count else {
        throw SetupError("PyJWT did not mint the tokens (is it installed? `make test` installs it): \(run)")
    }
    return tokens
}

/// Contract section 7: OpenID Connect Back-Channel Logout 1.0 and RFC 7662 introspection.
@Suite struct LogoutAndIntrospectionTests {
    static let issuer = "https://op.example"
    static let audience = "revoke-tests"
    static let event = #""events":{"http://schemas.openid.net/event/backchannel-logout":{}}"#

    func configure(_ configuration: inout ServerConfiguration) {
        configuration.issuer = Self.issuer
        configuration.audience = Self.audience
    }

    func post(_ client: some TestClientProtocol, _ path: String, form: String, key: String? = nil) async throws -> Reply {
        try await client.call(.post, path, key: key, contentType: "application/x-www-form-urlencoded", body: form)
    }

    @Test func aLogoutTokenCutsOffItsSessionOrItsUserAndARepeatChangesNothing() async throws {
        try await withRevoked(configure: configure) { (client, redis, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let common = #""iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now - 20),"exp":\#(now + 120),\#(Self.event)"#
            let tokens = try await pyjwtTokens([
                #"{\#(common),"jti":"lo-1","sub":"alice","sid":"s-77"}"#,
                #"{\#(common),"jti":"lo-2","sub":"bob"}"#,
                #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now + 300),"exp":\#(now + 600),"jti":"lo-3","sid":"s-future",\#(Self.event)}"#,
            ])
            let first = try await post(client, "/v1/backchannel-logout", form: "logout_token=\(tokens[0])")
            #expect(first.status == .ok && first.text.isEmpty, "\(first.status) \(first.text)")
            #expect(first.headers[.cacheControl] == "no-store")
            // sid before sub: the session is cut off, as of the logout token's iat.
            let session = try await client.call(.get, "/v1/cutoffs/sid/s-77")
            #expect(session.status == .ok && session.json["before"] == .number(Double(now - 20)), "\(session.text)")
            #expect(try await client.call(.get, "/v1/cutoffs/sub/alice").status == .notFound)
            let inSession = try await client.call(.post, "/v1/check", json: #"{"jti":"x","iat":\#(now - 30),"claims":{"sid":"s-77"}}"#)
            #expect(inSession.json["reason"] == .string("cutoff"))
            let audit = try await client.call(.get, "/v1/audit?limit=1", key: "admin-secret")
            #expect(audit.text.contains(#""actor":"backchannel:https://op.example""#), "\(audit.text)")

            // A replay changes nothing: no new event.
            let events = try await redis.send(RedisCommand("XLEN", "revoke:events")).integer
            #expect(try await post(client, "/v1/backchannel-logout", form: "logout_token=\(tokens[0])").status == .ok)
            #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")).integer == events)

            // No sid: the user is cut off.
            #expect(try await post(client, "/v1/backchannel-logout", form: "logout_token=\(tokens[1])").status == .ok)
            #expect(try await client.call(.get, "/v1/cutoffs/sub/bob").status == .ok)
            // An iat in the future cuts off no later than now.
            #expect(try await post(client, "/v1/backchannel-logout", form: "logout_token=\(tokens[2])").status == .ok)
            let future = try await client.call(.get, "/v1/cutoffs/sid/s-future")
            guard case .number(let before)? = future.json["before"] else {
                Issue.record("\(future.text)")
                return
            }
            #expect(before <= Date().timeIntervalSince1970)
        }
    }

    /// RFC 7662 section 2.1: a resource server authenticates to the introspection endpoint as an
    /// OAuth client (RFC 6749 section 2.3.1), with a verifier key's name and secret.
    @Test func introspectionTakesClientCredentialsAndAnEmptyFormIsAMissingParameter() async throws {
        try await withRevoked { configuration in
            configure(&configuration)
            configuration.verifierKeys = [APIKey(name: "gateway", secret: "verifier-secret", role: .verifier)]
        } _: { (client, _, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let token = try await pyjwtTokens([
                #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now),"exp":\#(now + 600),"jti":"oc-1","sub":"dave"}"#
            ])[0]
            func introspect(_ form: String, basic: String? = nil) async throws -> Reply {
                var headers: HTTPFields = [:]
                if let basic { headers[.authorization] = "Basic " + Data(basic.utf8).base64EncodedString() }
                return try await client.call(
                    .post, "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: form, headers: headers)
            }
            #expect(try await introspect("token=\(token)", basic: "gateway:verifier-secret").json["active"] == .bool(true))
            #expect(try await introspect("token=\(token)&client_id=gateway&client_secret=verifier-secret").json["active"] == .bool(true))
            // The admin key is a client too; its secret under another key's name is not.
            #expect(try await introspect("token=\(token)", basic: "ops:admin-secret").json["active"] == .bool(true))
            for (form, basic) in [
                ("token=\(token)", "gateway:wrong-secret"), ("token=\(token)", "ops:verifier-secret"),
                ("token=\(token)&client_id=gateway&client_secret=wrong", nil), ("token=\(token)", nil),
            ] {
                let refused = try await introspect(form, basic: basic)
                #expect(refused.status == .unauthorized && refused.error == "unauthorized", "\(form) \(basic ?? "-")")
                #expect(refused.headers[.wwwAuthenticate] != nil)
            }
            let twice = try await introspect("token=\(token)&client_id=gateway&client_secret=verifier-secret", basic: "gateway:verifier-secret")
            #expect(twice.status == .badRequest, "\(twice.text)")
            // A POST with nothing in it misses its parameter: 400, not 415.
            for path in ["/oauth2/revoke", "/oauth2/introspect", "/v1/backchannel-logout"] {
                let empty = try await client.call(.post, path, key: "verifier-secret")
                #expect(empty.status == .badRequest && empty.error == "invalid_request", "\(path): \(empty.status) \(empty.text)")
            }
        }
    }

    /// Section 2.6: each way a logout token is refused answers 400 `invalid_request`.
    @Test func everyLogoutTokenTheSpecificationRefusesIs400() async throws {
        try await withRevoked(configure: configure) { (client, redis, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let base = #""iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now - 20),"jti":"bad""#
            let cases: [(String, String)] = [
                ("no iat", #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","jti":"bad","sub":"eve",\#(Self.event)}"#),
                ("no jti", #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now),"sub":"eve",\#(Self.event)}"#),
                ("no events", #"{\#(base),"sub":"eve"}"#),
                ("another event", #"{\#(base),"sub":"eve","events":{"http://example.com/other":{}}}"#),
                ("an event that is not an object", #"{\#(base),"sub":"eve","events":{"http://schemas.openid.net/event/backchannel-logout":"yes"}}"#),
                ("a nonce", #"{\#(base),"sub":"eve","nonce":"n-1",\#(Self.event)}"#),
                ("neither sub nor sid", #"{\#(base),\#(Self.event)}"#),
                ("expired", #"{\#(base),"exp":\#(now - 60),"sub":"eve",\#(Self.event)}"#),
                ("another issuer", #"{"iss":"https://evil.example","aud":"\#(Self.audience)","iat":\#(now),"jti":"bad","sub":"eve",\#(Self.event)}"#),
                ("another audience", #"{"iss":"\#(Self.issuer)","aud":"someone-else","iat":\#(now),"jti":"bad","sub":"eve",\#(Self.event)}"#),
            ]
            let tokens = try await pyjwtTokens(cases.map(\.1))
            let forged = try await pyjwtTokens(secret: String(repeating: "x", count: 64), [#"{\#(base),"sub":"eve",\#(Self.event)}"#])
            for (name, token) in zip(cases.map(\.0) + ["another key"], tokens + forged) {
                let reply = try await post(client, "/v1/backchannel-logout", form: "logout_token=\(token)")
                #expect(reply.status == .badRequest && reply.error == "invalid_request", "\(name): \(reply.status) \(reply.text)")
            }
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:cut:sub:eve")).integer == 0)
            #expect(try await post(client, "/v1/backchannel-logout", form: "token=x").error == "invalid_request")
            #expect(try await client.call(.post, "/v1/backchannel-logout", json: #"{"logout_token":"x"}"#).status == .unsupportedMediaType)
        }
    }

    @Test func introspectionIsActiveOnlyForAValidUnrevokedToken() async throws {
        // An issuer key with a kid, so that a key block can name it.
        let ec = P256.Signing.PrivateKey()
        let x963 = Array(ec.publicKey.x963Representation)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","x":"\#(Mint.b64(x963[1...32]))","y":"\#(Mint.b64(x963[33...64]))"}]}"#
        try await withRevoked { configuration in
            configure(&configuration)
            configuration.verifierKeys = [APIKey(name: "gateway", secret: "verifier-secret", role: .verifier)]
            configuration.jwks = jwks
        } _: { (client, redis, server) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let claims = #""iss":"\#(Self.issuer)","aud":["\#(Self.audience)","other"],"iat":\#(now - 10),"nbf":\#(now - 10),"exp":\#(now + 600)"#
            let tokens = try await pyjwtTokens([
                #"{\#(claims),"jti":"in-1","sub":"carol"}"#,  // active
                #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now - 700),"exp":\#(now - 100),"jti":"in-2","sub":"carol"}"#,  // expired
                #"{\#(claims.replacingOccurrences(of: "\"nbf\":\(now - 10)", with: "\"nbf\":\(now + 300)")),"jti":"in-3"}"#,  // not yet valid
                #"{"iss":"\#(Self.issuer)","aud":"someone-else","iat":\#(now),"exp":\#(now + 600),"jti":"in-4"}"#,  // wrong audience
                #"{\#(claims),"jti":"in-5","sub":"dave"}"#,  // revoked by jti
                #"{\#(claims),"jti":"in-6","sub":"erin"}"#,  // cut off
            ])
            let forged = try await pyjwtTokens(secret: String(repeating: "y", count: 64), [#"{\#(claims),"jti":"in-8"}"#])
            let signedWithEC = try Mint.es256(ec, payload: #"{\#(claims),"jti":"in-7"}"#, kid: "ec-1")
            func introspect(_ token: String, key: String? = "verifier-secret") async throws -> Reply {
                try await post(client, "/oauth2/introspect", form: "token=\(token)&token_type_hint=access_token", key: key)
            }
            let active = try await introspect(tokens[0])
            #expect(active.status == .ok && active.headers[.cacheControl] == "no-store")
            #expect(active.json["active"] == .bool(true) && active.json["jti"] == .string("in-1") && active.json["sub"] == .string("carol"))
            #expect(active.json["aud"] == .array([.string(Self.audience), .string("other")]) && active.json["exp"] == .number(Double(now + 600)))
            #expect(active.json["iss"] == .string(Self.issuer) && active.json["nbf"] != nil && active.json["iat"] != nil)

            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"in-5","expires_at":null}"#, key: "admin-secret").status == .created)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"erin"}"#, key: "admin-secret").status == .created)
            for (name, token) in zip(["expired", "not yet valid", "wrong audience", "revoked", "cut off"], tokens.dropFirst())
                + [("forged", forged[0]), ("not a JWT", "garbage")]
            {
                let reply = try await introspect(token)
                #expect(reply.status == .ok && reply.text == #"{"active":false}"#, "\(name): \(reply.text)")
            }
            // The EC key leaks: its token, active a moment ago, is no longer.
            #expect(try await introspect(signedWithEC).json["active"] == .bool(true))
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"ec-1"}"#, key: "admin-secret").status == .created)
            #expect(try await introspect(signedWithEC).text == #"{"active":false}"#)
            #expect(try await introspect(tokens[0]).json["active"] == .bool(true))
            #expect(try await post(client, "/oauth2/introspect", form: "token_type_hint=access_token", key: "verifier-secret").error == "invalid_request")
            #expect(try await introspect(tokens[0], key: nil).error == "unauthorized")
            server.pause()
            defer { server.resume() }
            #expect(try await introspect(tokens[0]).status == .serviceUnavailable)
        }
    }
}

/// Claims at the edge of the number line never trap: with a clock skew, an `exp` far beyond
/// every Int64 second is no overflow, and an `iat` far before it no crash.
@Suite struct ExtremeClaimsTests {
    @Test func hugeExpAndIatAreAnsweredNotTrappedOn() async throws {
        try await withRevoked { configuration in
            configuration.policy.clockSkew = 30
            configuration.issuer = LogoutAndIntrospectionTests.issuer
            configuration.audience = LogoutAndIntrospectionTests.audience
        } _: { (client, _, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let who = #""iss":"\#(LogoutAndIntrospectionTests.issuer)","aud":"\#(LogoutAndIntrospectionTests.audience)""#
            let tokens = try await pyjwtTokens([
                #"{\#(who),"jti":"far-1","sub":"zoe","iat":\#(now - 10),"exp":1e300}"#,
                #"{\#(who),"jti":"far-2","sub":"zoe","iat":-1e300,\#(LogoutAndIntrospectionTests.event)}"#,
                #"{\#(who),"jti":"far-3","sid":"s-far","iat":\#(now - 10),"exp":1e300,\#(LogoutAndIntrospectionTests.event)}"#,
            ])
            let introspected = try await client.call(
                .post, "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token=\(tokens[0])")
            #expect(introspected.status == .ok && introspected.json["active"] == .bool(true), "\(introspected.text)")
            let ancient = try await client.call(
                .post, "/v1/backchannel-logout", contentType: "application/x-www-form-urlencoded", body: "logout_token=\(tokens[1])")
            #expect(ancient.status == .badRequest && ancient.error == "invalid_request", "\(ancient.text)")
            let far = try await client.call(
                .post, "/v1/backchannel-logout", contentType: "application/x-www-form-urlencoded", body: "logout_token=\(tokens[2])")
            #expect(far.status == .ok, "\(far.status) \(far.text)")
        }
    }
}
