import Foundation
import HTTPTypes
import Redis
import RevokeServer
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
}
