import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

@Suite struct RestartTests {
    /// In embedded mode, revoked owns its redis-server: after a stop and a new start on the same
    /// data directory, every revocation that got a 2xx is still refused.
    @Test func acknowledgedRevocationsSurviveARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("revoke-restart-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory
        configuration.hmacSecret = testSecret
        configuration.adminKeys = [APIKey(name: "ops", secret: "admin-secret", role: .admin)]
        let tokens = (0..<20).map { Mint.hmac(payload: Mint.claims(jti: "restart-\($0)")) }

        let first = try await buildApplication(configuration: configuration, logger: Logger(label: "test"))
        try await first.test(.live) { client in
            try await waitUntilReady(client)
            for token in tokens {
                #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#).status == .ok)
            }
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"alice"}"#, key: "admin-secret").status == .created)
        }

        let second = try await buildApplication(configuration: configuration, logger: Logger(label: "test"))
        try await second.test(.live) { client in
            try await waitUntilReady(client)
            for token in tokens {
                let reply = try await client.call(.post, "/v1/check", json: #"{"token":"\#(token)"}"#)
                #expect(reply.json["revoked"] == .bool(true))
            }
            #expect(try await client.call(.get, "/v1/cutoffs/sub/alice").status == .ok)
        }
    }
}
