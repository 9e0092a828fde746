import Foundation
import HTTPTypes
import Redis
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

/// Tokens minted by PyJWT (the library Python issuers use) are revoked and checked as ours
/// are, and PyJWT and Revoke agree on which tokens verify. The cases come from
/// `Tests/interop/pyjwt_cases.py`, run with `REVOKE_TEST_PYTHON` (set by `make test` to a
/// virtual environment holding PyJWT) or `python3`.
@Suite struct PyJWTInteropTests {
    struct Case: Decodable, CustomTestStringConvertible {
        var name: String
        var token: String
        var jti: String?
        var exp: Int64?
        var pyjwt: String
        var testDescription: String { name }
    }

    struct Cases: Decodable {
        var jwks: JSONValue
        var cases: [Case]
    }

    @Test func pyjwtTokensAreRevokedAndCheckedAndVerdictsAgree() async throws {
        let minted = try await Self.mint()
        let jwks = String(decoding: try JSONEncoder().encode(minted.jwks), as: UTF8.self)
        let valid = minted.cases.filter { $0.pyjwt == "valid" }
        // Every family of the contract, and forgeries PyJWT itself refuses.
        for alg in ["HS256", "RS256", "PS256", "ES256", "EdDSA"] {
            #expect(valid.contains { $0.name == "\(alg) valid" }, "PyJWT did not verify its own \(alg) token")
        }
        #expect(minted.cases.count - valid.count >= 30)

        try await withRevoked { configuration in
            configuration.jwks = jwks
        } _: { (client, redis, _) async throws in
            for testCase in minted.cases {
                let body = String(decoding: try JSONEncoder().encode(["token": testCase.token]), as: UTF8.self)
                let sent = Date().timeIntervalSince1970
                let reply = try await client.call(.post, "/v1/revoke", json: body)
                if testCase.pyjwt == "valid" {
                    #expect(reply.status == .ok, "\(testCase.name): PyJWT verifies it, Revoke answered \(reply.status) \(reply.text)")
                    let jti = try #require(testCase.jti)
                    #expect(reply.json["jti"] == .string(jti), "\(testCase.name)")
                    let exp = try #require(testCase.exp)
                    let ttl = try #require(try await redis.send(RedisCommand("TTL", "revoke:jti:\(jti)")).integer)
                    let window = TTLWindow(expiresAt: exp, requestSentAt: sent, readAt: Date().timeIntervalSince1970)
                    #expect(window.contains(ttl), "\(testCase.name): TTL \(ttl), expected \(window)")
                    let check = try await client.call(.post, "/v1/check", json: body)
                    #expect(check.json == ["revoked": .bool(true), "reason": .string("jti")], "\(testCase.name)")
                } else {
                    #expect(reply.status == .unauthorized, "\(testCase.name): PyJWT refuses it, Revoke answered \(reply.status) \(reply.text)")
                    #expect(reply.error == "invalid_token", "\(testCase.name)")
                }
            }
        }
    }

    /// Runs the PyJWT script and decodes what it prints.
    static func mint() async throws -> Cases {
        let script = URL(filePath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appending(path: "interop/pyjwt_cases.py")
        let python = ProcessRun.python
        let run = try await ProcessRun.run(python, [script.path, testSecret])
        guard run.status == 0 else {
            throw SetupError("\(python) \(script.lastPathComponent) exited \(run.status) (is PyJWT installed? `make test` installs it): \(run.error.suffix(600))")
        }
        return try JSONDecoder().decode(Cases.self, from: Data(run.output.utf8))
    }
}
