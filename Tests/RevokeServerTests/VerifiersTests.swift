import Foundation
import HTTPTypes
import HummingbirdTesting
import Redis
import RedisTestSupport
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

/// Contract section 7, "who is behind": `GET /v1/verifiers`, `revoke_event_delivery_seconds`,
/// `revokectl verifiers`.
@Suite struct VerifiersTests {
    @Test func everyStreamShowsWhoFollowsItAndHowFarBehindItIs() async throws {
        try await withRevoked { configuration in
            configuration.verifierKeys = [APIKey(name: "gateway", secret: "verifier-secret", role: .verifier)]
        } _: { (client, redis, _) async throws in
            let port = try #require(client.port)
            #expect(try await client.call(.get, "/v1/verifiers").error == "unauthorized")
            #expect(try await client.call(.get, "/v1/verifiers", key: "verifier-secret").error == "forbidden")
            #expect(try await client.call(.get, "/v1/verifiers", key: "admin-secret").json["streams"] == .array([]))

            // One verifier that reads, one that stopped reading.
            let reading = try await OpenStream.live(port: port, path: "/v1/events", headers: ["Authorization": "Bearer verifier-secret"])
            let stalled = try await OpenStream.open(
                port: port, path: "/v1/events", headers: ["Authorization": "Bearer verifier-secret"], receiveBuffer: 4096)
            defer { _ = stalled }
            try await waitUntil("two streams are open") {
                (try? await client.call(.get, "/v1/verifiers", key: "admin-secret"))?.json["streams"]?.array?.count == 2
            }
            // 2,000 changes (about 300 KB): more than the stalled reader's socket holds.
            let data = #"{"jti":"\#(String(repeating: "x", count: 100))","expires_at":null,"revoked_at":1,"reason":null}"#
            _ = try await redis.send(batch: (0..<2000).map { _ in RedisCommand("XADD", "revoke:events", "*", "type", "revocation", "data", data) })
            let last = try #require(try await redis.xrange("revoke:events").last?.id)
            try await reading.read { $0.contains("id: \(last)") }

            try await waitUntil("the stalled stream shows its lag") {
                guard let streams = try? await client.call(.get, "/v1/verifiers", key: "admin-secret").json["streams"]?.array,
                    streams.count == 2
                else { return false }
                let behind = streams.compactMap(\.object).filter { $0["lag_events"] != .number(0) }
                return behind.count == 1
            }
            let streams = try #require(try await client.call(.get, "/v1/verifiers", key: "admin-secret").json["streams"]?.array?.compactMap(\.object))
            let current = try #require(streams.first { $0["lag_events"] == .number(0) })
            let behind = try #require(streams.first { $0["lag_events"] != .number(0) })
            // Named by the verifier key (both use it here); the address is the client's.
            #expect(current["name"] == .string("gateway") && behind["name"] == .string("gateway"))
            #expect(current["address"]?.string?.contains("127.0.0.1") == true)
            #expect(current["position"] == .string(last) && current["lag_seconds"] == .number(0))
            guard case .number(let lagEvents)? = behind["lag_events"], case .number(let lagSeconds)? = behind["lag_seconds"] else {
                Issue.record("\(behind)")
                return
            }
            #expect(lagEvents > 0 && lagEvents <= 2000 && lagSeconds > 0)
            #expect(behind["position"] != .string(last))
            if case .number(let connectedAt)? = current["connected_at"] { #expect(abs(connectedAt - Date().timeIntervalSince1970) < 3600) }

            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.text.contains("revoke_event_delivery_seconds"), "\(metrics.text.prefix(300))")

            let ctl = Revokectl(url: "http://localhost:\(port)")
            let table = try await ctl("verifiers")
            #expect(table.status == 0 && table.output.contains("gateway") && table.output.contains("lag events"), "\(table)")
            let json = try await ctl("verifiers", "--json")
            #expect(json.status == 0 && json.json["streams"]?.array?.count == 2, "\(json)")
        }
    }

    /// Without verifier keys, a stream is named by its client's `User-Agent`.
    @Test func anOpenStreamIsNamedByItsUserAgent() async throws {
        try await withRevoked { (client, _, _) async throws in
            let stream = try await OpenStream.live(port: try #require(client.port), path: "/v1/events", headers: ["User-Agent": "edge-proxy/2.1"])
            defer { _ = stream }
            let streams = try await client.call(.get, "/v1/verifiers", key: "admin-secret").json["streams"]?.array
            #expect(streams?.first?.object?["name"] == .string("edge-proxy/2.1"), "\(String(describing: streams))")
        }
    }
}
