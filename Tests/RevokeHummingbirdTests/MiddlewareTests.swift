import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeHummingbird
import RevokeTestSupport
import Testing

/// A verifier's Hummingbird application with `RevocationMiddleware`, in front of a live
/// `revoked` on a real redis-server.
@Suite struct MiddlewareTests {
    /// The verifier: one protected route that answers who the caller is.
    func verifier(_ revoke: RevokeClient) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: RevocationMiddleware(client: revoke))
        router.get("/me") { _, _ in "ok" }
        return Application(router: router, logger: Logger(label: "test.verifier"))
    }

    func get(_ client: some TestClientProtocol, token: String?) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.call(.get, "/me", headers: headers)
    }

    @Test func refusesRevokedTokensAndCutOffSubjectsAndLetsTheRestThrough() async throws {
        try await withRevoked { (server, _, _) async throws in
            let port = try #require(server.port)
            let applied = AppliedEvents()
            try await withCachingClient(port: port, cache: .init(onEvent: applied.onEvent)) { revoke in
                try await verifier(revoke).test(.router) { client in
                    let alice = Mint.hmac(payload: Mint.claims(jti: "mw-1", extra: #""sub":"alice""#))
                    let bob = Mint.hmac(payload: Mint.claims(jti: "mw-2", extra: #""sub":"bob""#))
                    #expect(try await get(client, token: alice).text == "ok")
                    #expect(try await get(client, token: bob).status == .ok)
                    // No token: authentication is another middleware's job; this one passes it on.
                    #expect(try await get(client, token: nil).status == .ok)

                    // Logout: the token itself is posted to revoked; the verifier refuses it next.
                    var count = applied.count
                    #expect(try await server.call(.post, "/v1/revoke", json: #"{"token":"\#(alice)"}"#).status == .ok)
                    try await applied.waitForMore(than: count)
                    let refused = try await get(client, token: alice)
                    #expect(refused.status == .unauthorized)
                    #expect(refused.error == "invalid_token")
                    #expect(refused.headers[.wwwAuthenticate]?.hasPrefix(#"Bearer error="invalid_token""#) == true)
                    #expect(try await get(client, token: bob).status == .ok)

                    // Every token of bob issued until now, from the cache's cutoffs.
                    count = applied.count
                    #expect(try await server.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"bob"}"#, key: "admin-secret").status == .created)
                    try await applied.waitForMore(than: count)
                    #expect(try await get(client, token: bob).status == .unauthorized)
                    let fresh = Mint.hmac(payload: #"{"jti":"mw-3","sub":"bob","iat":\#(Int(Date().timeIntervalSince1970) + 5)}"#)
                    #expect(try await get(client, token: fresh).status == .ok)

                    // A bearer token whose payload cannot be read is refused, never passed on.
                    let garbage = try await get(client, token: "not.a-token.at-all")
                    #expect(garbage.status == .unauthorized && garbage.error == "invalid_token")
                }
            }
        }
    }

    @Test func anUnreachableServerFailsClosedWith503OrOpenByPolicy() async throws {
        let port = try RedisServerProcess.freeLoopbackPort()
        for (policy, expected) in [(RevokeClient.FailurePolicy.failClosed, HTTPResponse.Status.serviceUnavailable), (.failOpen, .ok)] {
            let revoke = RevokeClient(
                configuration: .init(url: "http://127.0.0.1:\(port)", requestTimeout: .milliseconds(500), cache: .init(failurePolicy: policy)),
                logger: Logger(label: "test.client"))
            try await verifier(revoke).test(.router) { client in
                let token = Mint.hmac(payload: Mint.claims(jti: "mw-down"))
                let answer = try await get(client, token: token)
                #expect(answer.status == expected, "\(policy)")
                if expected == .serviceUnavailable {
                    #expect(answer.error == "revocation_unavailable")
                    #expect(answer.headers[.retryAfter] == "1")
                }
            }
        }
    }
}
