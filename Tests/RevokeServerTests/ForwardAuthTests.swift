import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import LoopbackHTTP
import Redis
import RedisSupervisor
import RevokeCore
@testable import RevokeServer
import RevokeTestSupport
import Testing

/// Contract section 10: `/v1/forward-auth` for gateways. A request passes only with a token
/// that verifies, is within `nbf`/`exp`, matches `iss`/`aud`, and is not revoked by `jti`,
/// cutoff or key block; the gateway authenticates with `Revoke-Key`.
@Suite struct ForwardAuthTests {
    static let issuer = "https://issuer.example"
    static let audience = "api"

    private static func forwardAuth(
        _ client: some TestClientProtocol, _ token: String?, path: String = "/v1/forward-auth", method: HTTPRequest.Method = .get,
        gatewayKey: String? = nil, authorization: String? = nil
    ) async throws -> Reply {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let authorization { headers[.authorization] = authorization }
        if let gatewayKey { headers[HTTPField.Name("Revoke-Key")!] = gatewayKey }
        return try await client.call(method, path, headers: headers)
    }

    private static func claims(_ extra: String = "", lifetime: Int = 600) -> String {
        let now = Int(Date().timeIntervalSince1970)
        return #"{"iss":"\#(issuer)","aud":"\#(audience)","iat":\#(now - 5),"exp":\#(now + lifetime)\#(extra.isEmpty ? "" : "," + extra)}"#
    }

    @Test func aValidTokenPassesWithItsSubjectAndJTI() async throws {
        try await withRevoked { configuration in
            configuration.issuer = Self.issuer
            configuration.audience = Self.audience
        } _: { (client, _, _) async throws in
            let token = Mint.hmac(payload: Self.claims(#""jti":"fa-1","sub":"alice""#))
            let reply = try await Self.forwardAuth(client, token)
            #expect(reply.status == .ok, "\(reply.text)")
            #expect(reply.headers[HTTPField.Name("Revoke-Subject")!] == "alice")
            #expect(reply.headers[HTTPField.Name("Revoke-Jti")!] == "fa-1")
            #expect(reply.headers[.cacheControl] == "no-store")
            // No body: nginx keeps its connection to revoked only for an answer without one.
            #expect(reply.text.isEmpty && reply.headers[.contentLength] == "0")

            // Every path under it and any method; a body is not read.
            for (method, path) in [(HTTPRequest.Method.post, "/v1/forward-auth/orders/7?x=1"), (.delete, "/v1/forward-auth/"), (.put, "/v1/forward-auth?from=nginx")] {
                let reply = try await client.call(method, path, body: "ignored", headers: [.authorization: "Bearer \(token)"])
                #expect(reply.status == .ok && reply.headers[HTTPField.Name("Revoke-Subject")!] == "alice", "\(method) \(path): \(reply.text)")
            }
            let head = try await client.call(.head, "/v1/forward-auth", headers: [.authorization: "Bearer \(token)"])
            #expect(head.status == .ok && head.text.isEmpty && head.headers[HTTPField.Name("Revoke-Jti")!] == "fa-1")
            // Not a prefix of another word.
            #expect(try await client.call(.get, "/v1/forward-authx", headers: [.authorization: "Bearer \(token)"]).status == .notFound)

            // A subject that could end a header, or is not ASCII, is percent-encoded.
            let odd = Mint.hmac(payload: Self.claims(#""jti":"fa-2","sub":"ève 50%\r\nX-Admin: 1""#))
            let encoded = try await Self.forwardAuth(client, odd)
            #expect(encoded.status == .ok)
            #expect(encoded.headers[HTTPField.Name("Revoke-Subject")!] == "%C3%A8ve%2050%25%0D%0AX-Admin:%201")
            #expect(encoded.headers[HTTPField.Name("X-Admin")!] == nil)
            #expect(encoded.headers[HTTPField.Name("Revoke-Subject")!]?.removingPercentEncoding == "ève 50%\r\nX-Admin: 1")
            // Without sub, the header is there, empty: a gateway copying it never passes on the client's own.
            let anonymous = try await Self.forwardAuth(client, Mint.hmac(payload: Self.claims(#""jti":"fa-3""#)))
            #expect(anonymous.status == .ok && anonymous.headers[HTTPField.Name("Revoke-Subject")!] == "")
        }
    }

    @Test func whatMustNotPassGets401WithRFC6750Challenge() async throws {
        try await withRevoked { configuration in
            configuration.issuer = Self.issuer
            configuration.audience = Self.audience
            // An hour, so that no test run is slow enough to move a token across it.
            configuration.policy.clockSkew = 3600
        } _: { (client, _, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            // No token, or another scheme: `Bearer` alone.
            for authorization in [nil, "Basic dXNlcjpwYXNz"] as [String?] {
                let reply = try await Self.forwardAuth(client, nil, authorization: authorization)
                #expect(reply.status == .unauthorized && reply.headers[.wwwAuthenticate] == "Bearer", "\(reply.headers)")
                #expect(reply.error == "invalid_token")
            }
            let cases: [(String, String?, String)] = [
                ("bad signature", Mint.hmac(secret: String(repeating: "x", count: 64), payload: Self.claims(#""jti":"b-1""#)), "signature"),
                ("expired beyond the skew", Mint.hmac(payload: #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","exp":\#(now - 7200),"jti":"b-2"}"#), "expired"),
                ("not valid yet", Mint.hmac(payload: Self.claims(#""jti":"b-3","nbf":\#(now + 7200)"#)), "nbf"),
                ("wrong issuer", Mint.hmac(payload: #"{"iss":"https://evil.example","aud":"\#(Self.audience)","exp":\#(now + 600),"jti":"b-4"}"#), "iss"),
                ("wrong audience", Mint.hmac(payload: #"{"iss":"\#(Self.issuer)","aud":"other","exp":\#(now + 600),"jti":"b-5"}"#), "audience"),
                ("alg none", Mint.b64(Array(#"{"alg":"none"}"#.utf8)) + "." + Mint.b64(Array(Self.claims(#""jti":"b-6""#).utf8)) + ".", "none"),
                ("a quote in alg", Mint.token(header: #"{"alg":"H\"S256"}"#, payload: Self.claims(#""jti":"b-7""#)) { _ in [1, 2, 3] }, "H?S256"),
                ("garbage", "not-a-jwt", "compact JWS"),
            ]
            for (name, token, reason) in cases {
                let reply = try await Self.forwardAuth(client, token)
                #expect(reply.status == .unauthorized && reply.error == "invalid_token", "\(name): \(reply.status) \(reply.text)")
                let challenge = reply.headers[.wwwAuthenticate] ?? ""
                #expect(challenge.hasPrefix(#"Bearer error="invalid_token", error_description=""#) && challenge.contains(reason), "\(name): \(challenge)")
                #expect(challenge.dropFirst(#"Bearer error="invalid_token", error_description=""#.count).dropLast().allSatisfy { $0 != "\"" })
            }
            // Within the skew, an expired token still passes (as every verifier with that skew accepts it).
            let late = Mint.hmac(payload: #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","exp":\#(now - 60),"jti":"b-8"}"#)
            #expect(try await Self.forwardAuth(client, late).status == .ok)
            // More than one token, or not one that a bearer header carries.
            for authorization in ["Bearer a b", "Bearer", "Basic x, Bearer y"] {
                let reply = try await Self.forwardAuth(client, nil, authorization: authorization)
                #expect(reply.status == .unauthorized && reply.headers[.wwwAuthenticate]?.contains("invalid_token") == true, "\(authorization)")
            }
        }
    }

    @Test func revocationsCutoffsAndKeyBlocksAre401() async throws {
        let ec = P256.Signing.PrivateKey()
        let x963 = Array(ec.publicKey.x963Representation)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","x":"\#(Mint.b64(x963[1...32]))","y":"\#(Mint.b64(x963[33...64]))"}]}"#
        try await withRevoked { configuration in
            configuration.jwks = jwks
        } _: { (client, redis, server) async throws in
            let byJTI = Mint.hmac(payload: Mint.claims(jti: "rv-1", extra: #""sub":"bob""#))
            let byCutoff = Mint.hmac(payload: Mint.claims(jti: "rv-2", extra: #""sub":"carol""#))
            let byKey = try Mint.es256(ec, payload: Mint.claims(jti: "rv-3", extra: #""sub":"dave""#), kid: "ec-1")
            for token in [byJTI, byCutoff, byKey] { #expect(try await Self.forwardAuth(client, token).status == .ok) }

            // The logout flow revokes the token: the very next forwarded request is refused.
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(byJTI)"}"#).status == .ok)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"carol"}"#, key: "admin-secret").status == .created)
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"ec-1"}"#, key: "admin-secret").status == .created)
            for token in [byJTI, byCutoff, byKey] {
                let reply = try await Self.forwardAuth(client, token)
                #expect(reply.status == .unauthorized && reply.json["message"] == .string("the token has been revoked"), "\(reply.text)")
                #expect(reply.headers[.wwwAuthenticate] == #"Bearer error="invalid_token", error_description="the token has been revoked""#)
            }
            // The EC token verified once and was remembered: the second time cost no signature check.
            let metrics = try await client.call(.get, "/metrics").text
            #expect(metrics.contains(#"revoke_verified_tokens_total{result="hit"}"#), "\(metrics.prefix(300))")

            // The store cannot answer: never a guess.
            let alive = Mint.hmac(payload: Mint.claims(jti: "rv-4"))
            #expect(try await Self.forwardAuth(client, alive).status == .ok)
            server.pause()
            defer { server.resume() }
            let unavailable = try await Self.forwardAuth(client, alive)
            #expect(unavailable.status == .serviceUnavailable && unavailable.error == "store_unavailable", "\(unavailable.text)")
            _ = redis
        }
    }

    @Test func theGatewayAuthenticatesWithRevokeKey() async throws {
        try await withRevoked { configuration in
            configuration.verifierKeys = [APIKey(name: "nginx", secret: "gateway-secret-0001", role: .verifier)]
        } _: { (client, _, _) async throws in
            let token = Mint.hmac(payload: Mint.claims(jti: "gk-1", extra: #""sub":"alice""#))
            for key in [nil, "wrong-secret-000001"] as [String?] {
                let reply = try await Self.forwardAuth(client, token, gatewayKey: key)
                #expect(reply.status == .forbidden && reply.error == "forbidden", "\(reply.text)")
            }
            // A verifier key where the user's token belongs is no token at all.
            let misplaced = try await Self.forwardAuth(client, "gateway-secret-0001", gatewayKey: "gateway-secret-0001")
            #expect(misplaced.status == .unauthorized)
            #expect(try await Self.forwardAuth(client, token, gatewayKey: "gateway-secret-0001").status == .ok)
            #expect(try await Self.forwardAuth(client, token, gatewayKey: "admin-secret").status == .ok)
        }
    }

    /// A forwarded request pipelined behind one the router answers is answered by the router,
    /// the same way and in order.
    @Test func pipelinedBehindAnotherRequestTheAnswerIsTheSame() async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            let token = Mint.hmac(payload: Mint.claims(jti: "pl-1", extra: #""sub":"pat""#))
            let requests = [
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /v1/forward-auth/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n",
                "HEAD /v1/forward-auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n",
                "GET /v1/forward-auth HTTP/1.1\r\nHost: x\r\n\r\n",
                "HEAD /v1/forward-auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer garbage\r\n\r\n",
                "GET /v1/forward-auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n",
            ]
            let text = try await RawHTTP.onThread {
                let socket = try LoopbackSocket(port: port, timeout: 60)
                try socket.write(requests.joined())
                return try socket.read()
            }
            let heads = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(heads == ["200", "200", "200", "401", "401", "200"], "\(text)")
            // The HEAD's 401 says how long the GET's body is, and sends none.
            let headAnswer = text.components(separatedBy: "HTTP/1.1 ")[5]
            let length = try #require(headAnswer.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") })
            #expect(length != "content-length: 0" && length != "Content-Length: 0", "\(headAnswer)")
            #expect(headAnswer.hasSuffix("\r\n\r\n"), "\(headAnswer)")
            #expect(text.components(separatedBy: "Revoke-Subject: pat").count - 1 == 3, "\(text)")
        }
    }

    // MARK: - The verified tokens, on a clock the test drives

    private static func verified(expiresAt: Int64?) -> TokenVerifier.Verified {
        TokenVerifier.Verified(claims: TokenClaims(jti: "v", expiresAt: expiresAt.map(Double.init)), payload: [:], kid: nil)
    }

    @Test func aRememberedTokenNeverOutlivesItsExp() {
        let clock = ManualClock(now: 1_000)
        let tokens = VerifiedTokens(capacity: 10, now: { clock.now })
        let key = VerifiedTokens.key("header.payload.signature")
        tokens.insert(key, Self.verified(expiresAt: 1_010))
        #expect(tokens.lookup(key) != nil)
        #expect(tokens.lookup(VerifiedTokens.key("header.payload.signaturf")) == nil)
        clock.now = 1_009
        #expect(tokens.lookup(key) != nil)
        clock.now = 1_010
        #expect(tokens.lookup(key) == nil)
        #expect(tokens.count == 0)
        // One already past its exp is not remembered at all.
        tokens.insert(key, Self.verified(expiresAt: 1_000))
        #expect(tokens.count == 0)
        // Without exp, it stays until pushed out.
        tokens.insert(key, Self.verified(expiresAt: nil))
        clock.now = 9_999_999
        #expect(tokens.lookup(key) != nil)
    }

    @Test func rememberedTokensAreBounded() {
        let clock = ManualClock(now: 0)
        let tokens = VerifiedTokens(capacity: 3, now: { clock.now })
        let keys = (0..<5).map { VerifiedTokens.key("token-\($0)") }
        for key in keys { tokens.insert(key, Self.verified(expiresAt: 100)) }
        #expect(tokens.count == 3)
        #expect(keys.map { tokens.lookup($0) != nil } == [false, false, true, true, true])
        // Again and again the same token takes one place.
        for _ in 0..<10 { tokens.insert(keys[4], Self.verified(expiresAt: 100)) }
        #expect(keys.map { tokens.lookup($0) != nil } == [false, false, true, true, true])
        let none = VerifiedTokens(capacity: 0, now: { clock.now })
        none.insert(keys[0], Self.verified(expiresAt: 100))
        #expect(none.lookup(keys[0]) == nil && none.count == 0)
    }
}

/// A clock a test moves by hand.
private final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64

    init(now: Int64) { value = now }

    var now: Int64 {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
