import Foundation
import HTTPTypes
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeServer
import RevokeTestSupport
import Testing

@Suite struct MetricsTests {
    @Test func countsRequestsByRouteTemplateChecksAndStoreErrors() async throws {
        try await withRevoked { (client, _, server) async throws in
            _ = try await client.call(.post, "/v1/check", json: #"{"jti":"secret-jti-value"}"#)
            _ = try await client.call(.get, "/v1/cutoffs/sub/alice")
            server.pause()
            _ = try await client.call(.post, "/v1/check", json: #"{"jti":"x"}"#)
            server.resume()
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = metrics.text
            #expect(text.contains(#"revoke_http_requests_total{method="POST",route="/v1/check",status="200"} 1"#))
            #expect(text.contains(#"revoke_http_requests_total{method="POST",route="/v1/check",status="503"} 1"#))
            #expect(text.contains(#"route="/v1/cutoffs/{claim}/{value}",status="404""#))
            #expect(text.contains("revoke_http_request_duration_seconds_bucket"))
            #expect(text.contains("revoke_checks_total 1"))
            #expect(text.contains("revoke_store_errors_total 1"))
            // Labels are route templates: no jti ever becomes a label value.
            #expect(!text.contains("secret-jti-value"))
        }
    }

    /// A store that answers wrongly (here a key of the wrong type) is a 500 with a logged cause
    /// and a counted failure, never a 503 that tells clients to retry forever.
    @Test func aStoreFailureIsA500AndCountedApartFromOutages() async throws {
        try await withRevoked { (client, redis, _) async throws in
            _ = try await redis.send(RedisCommand("SET", "revoke:jti:damaged", "not a hash"))
            let reply = try await client.call(.get, "/v1/revocations/damaged")
            #expect(reply.status == .internalServerError)
            #expect(reply.error == "internal_error")
            #expect(reply.headers[.retryAfter] == nil)
            let text = try await client.call(.get, "/metrics").text
            #expect(text.contains("revoke_store_errors_total 1"))
            #expect(text.contains("revoke_store_failures_total 1"))
        }
    }

    /// The snapshot's keeper: one load at start, the live revocations it holds.
    @Test func theSnapshotKeeperCountsItsLoadsAndWhatItHolds() async throws {
        try await withRevoked { (client, _, _) async throws in
            for jti in ["m-1", "m-2", "m-3"] {
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"\#(jti)","expires_at":null}"#, key: "admin-secret").status == .created)
            }
            #expect(try await client.call(.delete, "/v1/revocations/m-2", key: "admin-secret").status == .noContent)
            func value(_ name: String, in text: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.dropFirst(name.count + 1)) }
            }
            // The gauge is set each second.
            try await waitUntil("the keeper holds 2 live revocations") {
                let text = (try? await client.call(.get, "/metrics"))?.text ?? ""
                return value("revoke_snapshot_revocations", in: text) == 2
            }
            let text = try await client.call(.get, "/metrics").text
            #expect(value("revoke_snapshot_loads_total", in: text) == 1)
        }
    }
}
