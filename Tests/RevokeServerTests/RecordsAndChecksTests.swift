import Foundation
import HTTPTypes
import Redis
import RedisSupervisor
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

@Suite struct RecordsAndChecksTests {
    @Test func incidentRespondersRevokeReadAndUnrevoke() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let exp = Int(Date().timeIntervalSince1970) + 3_600
            let created = try await client.call(.post, "/v1/revocations", json: #"{"jti":"a/b c%","expires_at":\#(exp),"reason":"leaked"}"#, key: "admin-secret")
            #expect(created.status == .created)
            #expect(created.json["reason"] == .string("leaked"))
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:jti:a/b c%")) == .integer(1))
            let read = try await client.call(.get, "/v1/revocations/a%2Fb%20c%25")
            #expect(read.status == .ok)
            #expect(read.json["jti"] == .string("a/b c%"))
            #expect(read.json["revoked"] == .bool(true))
            #expect(read.json["expires_at"] == .number(Double(exp)))

            let forever = try await client.call(.post, "/v1/revocations", json: #"{"jti":"forever","expires_at":null}"#, key: "admin-secret")
            #expect(forever.status == .created)
            #expect(try await redis.send(RedisCommand("TTL", "revoke:jti:forever")) == .integer(-1))
            let expired = try await client.call(.post, "/v1/revocations", json: #"{"jti":"past","expires_at":1}"#, key: "admin-secret")
            #expect(expired.status == .ok && expired.json["revoked"] == .bool(false))

            #expect(try await client.call(.delete, "/v1/revocations/a%2Fb%20c%25?reason=mistake", key: "admin-secret").status == .noContent)
            #expect(try await client.call(.delete, "/v1/revocations/a%2Fb%20c%25", key: "admin-secret").error == "not_found")
            #expect(try await client.call(.get, "/v1/revocations/a%2Fb%20c%25").status == .notFound)

            let audit = try await client.call(.get, "/v1/audit?limit=2", key: "admin-secret")
            guard case .array(let entries)? = audit.json["entries"] else {
                Issue.record("no entries in \(audit.text)")
                return
            }
            #expect(entries.count == 2)
            #expect(entries.first == .object(["at": entries.first!.field("at"), "actor": .string("ops"), "action": .string("unrevoke"), "target": .string("a/b c%"), "reason": .string("mistake")]))
        }
    }

    @Test func refusesBadAdminInput() async throws {
        try await withRevoked { (client, _, _) async throws in
            for body in [#"{"jti":"x"}"#, #"{"expires_at":null}"#, #"{"jti":"","expires_at":null}"#, #"{"jti":"x","expires_at":"soon"}"#, #"{"jti":5,"expires_at":null}"#, "[]", "{", #"{"jti":"x","expires_at":null,"reason":7}"#] {
                let reply = try await client.call(.post, "/v1/revocations", json: body, key: "admin-secret")
                #expect(reply.status == .badRequest, "\(body)")
                #expect(reply.error == "invalid_request")
            }
            let future = Int(Date().timeIntervalSince1970) + 600
            for body in [#"{"claim":"email","value":"a"}"#, #"{"claim":"sub","value":"a","before":\#(future)}"#, #"{"claim":"sub"}"#, #"{"claim":"sub","value":""}"#] {
                #expect(try await client.call(.post, "/v1/cutoffs", json: body, key: "admin-secret").status == .badRequest, "\(body)")
            }
            for limit in ["0", "1001", "x", "-1"] {
                #expect(try await client.call(.get, "/v1/audit?limit=\(limit)", key: "admin-secret").status == .badRequest)
            }
        }
    }

    @Test func cutoffsRevokeEveryMatchingTokenAndOnlyMoveForward() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let first = try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"alice","before":\#(now - 100),"reason":"phished"}"#, key: "admin-secret")
            #expect(first.status == .created)
            #expect(first.json["before"] == .number(Double(now - 100)))
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:cut:sub:alice")) == .integer(1))
            let older = try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"alice","before":\#(now - 200)}"#, key: "admin-secret")
            #expect(older.status == .ok)
            #expect(older.json["before"] == .number(Double(now - 100)))

            let before = try await client.call(.post, "/v1/check", json: #"{"jti":"t1","iat":\#(now - 150),"claims":{"sub":"alice"}}"#)
            #expect(before.json == ["revoked": .bool(true), "reason": .string("cutoff"), "claim": .string("sub")])
            let after = try await client.call(.post, "/v1/check", json: #"{"jti":"t1","iat":\#(now - 50),"claims":{"sub":"alice"}}"#)
            #expect(after.json == ["revoked": .bool(false)])
            let token = Mint.hmac(payload: #"{"sub":"alice","jti":"t2"}"#)  // no iat: revoked
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(token)"}"#).json["reason"] == .string("cutoff"))

            #expect(try await client.call(.get, "/v1/cutoffs/sub/alice").json["reason"] == .string("phished"))
            #expect(try await client.call(.delete, "/v1/cutoffs/sub/alice", key: "admin-secret").status == .noContent)
            #expect(try await client.call(.get, "/v1/cutoffs/sub/alice").status == .notFound)
            #expect(try await client.call(.delete, "/v1/cutoffs/sub/alice", key: "admin-secret").status == .notFound)
        }
    }

    @Test func batchChecksAnswerInOrderWithErrorsInPlace() async throws {
        try await withRevoked { (client, _, _) async throws in
            _ = try await client.call(.post, "/v1/revocations", json: #"{"jti":"r-3","expires_at":null}"#, key: "admin-secret")
            let checks = (0..<1000).map { #"{"jti":"r-\#($0)"}"# }
            var body = checks
            body[10] = #"{"jti":17}"#
            let reply = try await client.call(.post, "/v1/check/batch", json: #"{"checks":[\#(body.joined(separator: ","))]}"#)
            #expect(reply.status == .ok)
            guard case .array(let results)? = reply.json["results"] else {
                Issue.record("no results")
                return
            }
            #expect(results.count == 1000)
            #expect(results[3] == .object(["revoked": .bool(true), "reason": .string("jti")]))
            #expect(results[4] == .object(["revoked": .bool(false)]))
            #expect(results[10].errorCode == "invalid_request")
            let tooMany = try await client.call(.post, "/v1/check/batch", json: #"{"checks":[\#((checks + ["{}"]).joined(separator: ","))]}"#)
            #expect(tooMany.status == .badRequest)
            #expect(try await client.call(.post, "/v1/check/batch", json: #"{"checks":{}}"#).status == .badRequest)
        }
    }

    @Test func rolesAreEnforced() async throws {
        try await withRevoked { configuration in
            configuration.verifierKeys = [APIKey(name: "gateway", secret: "verifier-secret", role: .verifier)]
        } _: { (client, _, _) async throws in
            let check = #"{"jti":"x"}"#
            #expect(try await client.call(.post, "/v1/check", json: check).error == "unauthorized")
            #expect(try await client.call(.post, "/v1/check", json: check, key: "wrong").status == .unauthorized)
            #expect(try await client.call(.post, "/v1/check", json: check, key: "verifier-secret").status == .ok)
            #expect(try await client.call(.post, "/v1/check", json: check, key: "admin-secret").status == .ok)
            #expect(try await client.call(.get, "/v1/audit", key: "verifier-secret").error == "forbidden")
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"x","expires_at":null}"#, key: "verifier-secret").status == .forbidden)
            #expect(try await client.call(.get, "/v1/audit").status == .unauthorized)
            #expect(try await client.call(.get, "/v1/audit", key: "admin-secret").status == .ok)
        }
    }

    @Test func clientInputNeverGetsA500() async throws {
        try await withRevoked { (client, _, _) async throws in
            #expect(try await client.call(.put, "/v1/check").error == "method_not_allowed")
            #expect(try await client.call(.put, "/v1/check").headers[.allow] == "POST")
            #expect(try await client.call(.get, "/v2/anything").error == "not_found")
            #expect(try await client.call(.post, "/v1/check", contentType: "text/plain", body: "{}").error == "unsupported_media_type")
            for type in ["application/json; charset=utf-8", " Application/JSON ", "APPLICATION/JSON;charset=UTF-8"] {
                #expect(try await client.call(.post, "/v1/check", contentType: type, body: "{}").status == .ok, "\(type)")
            }
            for type in ["application/jsonx", "application/json-patch+json", "", "application/ json", "text/json"] {
                #expect(try await client.call(.post, "/v1/check", contentType: type, body: "{}").error == "unsupported_media_type", "\(type)")
            }
            #expect(try await client.call(.post, "/v1/check", json: #"{"jti":"a","jti":"b"}"#).error == "invalid_request")
            #expect(try await client.call(.post, "/v1/check", json: String(repeating: " ", count: 70_000) + "{}").error == "payload_too_large")
            for body in ["", "null", "[1]", "{\"jti\":", "{\"token\":\"a.b\"}", "{\"iat\":\"x\"}", "{\"claims\":{\"sub\":1}}", "{\"jti\":\"\(String(repeating: "x", count: 257))\"}"] {
                let reply = try await client.call(.post, "/v1/check", json: body)
                #expect(reply.status == .badRequest, "\(body)")
            }
            #expect(try await client.call(.get, "/v1/revocations/%ZZ").status == .badRequest)
        }
    }

    @Test func aDownStoreIsA503NeverAGuess() async throws {
        try await withRevoked { (client, _, server) async throws in
            server.pause()
            defer { server.resume() }
            let reply = try await client.call(.post, "/v1/check", json: #"{"jti":"x"}"#)
            #expect(reply.status == .serviceUnavailable)
            #expect(reply.error == "store_unavailable")
            #expect(reply.headers[.retryAfter] == "1")
            #expect(try await client.call(.get, "/readyz").status == .serviceUnavailable)
            server.resume()
            try await waitUntilReady(client)
            #expect(try await client.call(.post, "/v1/check", json: #"{"jti":"x"}"#).status == .ok)
        }
    }
}

extension JSONValue {
    func field(_ name: String) -> JSONValue {
        if case .object(let object) = self { return object[name] ?? .null }
        return .null
    }
}

@Suite struct CutoffPathTests {
    /// The claim of a cutoff's path is part of its key: one no cutoff may name is refused, so
    /// `sub:x` cannot reach `sub`'s cutoff of `x:...`.
    @Test func aCutoffPathWithAnUnknownClaimIsRefused() async throws {
        try await withRevoked { (client, redis, _) async throws in
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"x:y"}"#, key: "admin-secret").status == .created)
            let deleted = try await client.call(.delete, "/v1/cutoffs/sub%3Ax/y", key: "admin-secret")
            #expect(deleted.status == .badRequest && deleted.error == "invalid_request")
            #expect(try await client.call(.get, "/v1/cutoffs/sub%3Ax/y").status == .badRequest)
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:cut:sub:x:y")) == .integer(1))
        }
    }
}
