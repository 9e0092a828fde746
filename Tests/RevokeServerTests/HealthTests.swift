import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Redis
import RedisTestSupport
import RevokeServer
import Testing

@Suite struct HealthTests {
    private func configuration(_ server: RedisServerProcess) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.port = 0
        var redis = server.configuration(commandTimeout: .milliseconds(300))
        redis.connectTimeout = .milliseconds(300)
        redis.reconnectBackoff = .milliseconds(20)
        redis.maximumReconnectBackoff = .milliseconds(100)
        configuration.redis = redis
        return configuration
    }

    @Test func readyOnlyWhileRedisAnswers() async throws {
        try await withRedisServer { server in
            let app = try await buildApplication(configuration: configuration(server), logger: Logger(label: "test"))
            try await app.test(.live) { client in
                try await waitUntilReady(client)
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                }
                server.pause()
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] == "1")
                    let body = try JSONDecoder().decode([String: String].self, from: Data(String(buffer: response.body).utf8))
                    #expect(body["error"] == "store_unavailable")
                }
                // The process is still alive while Redis is away.
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                }
                server.resume()
                try await waitUntilReady(client)
            }
        }
    }

    @Test func unknownPathsGetTheJSONErrorBody() async throws {
        try await withRedisServer { server in
            let app = try await buildApplication(configuration: configuration(server), logger: Logger(label: "test"))
            try await app.test(.live) { client in
                try await client.execute(uri: "/v0/nothing%20here", method: .get) { response in
                    #expect(response.status == .notFound)
                    #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                    #expect(String(buffer: response.body) == #"{"error":"not_found","message":"no such resource"}"#)
                }
            }
        }
    }

    private func waitUntilReady(_ client: some TestClientProtocol) async throws {
        for _ in 0..<200 {
            let ready = try await client.execute(uri: "/readyz", method: .get) { $0.status == .ok }
            if ready { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("/readyz never answered 200")
    }
}

@Suite struct ServerConfigurationTests {
    @Test func readsTheContractVariables() throws {
        let configuration = try ServerConfiguration(variables: [
            "REVOKE_HOST": "0.0.0.0", "REVOKE_PORT": "9090", "REVOKE_REDIS_URL": "redis://:pw@10.1.2.3:6380/2",
        ])
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 9090)
        #expect(configuration.redis?.host == "10.1.2.3")
        #expect(configuration.redis?.database == 2)
    }

    @Test func defaultsToAnEmbeddedRedis() throws {
        let configuration = try ServerConfiguration(variables: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.redis == nil)
        #expect(configuration.dataDirectory == "./.revoke-data")
    }

    @Test(arguments: [
        ("REVOKE_PORT", "http"), ("REVOKE_PORT", "65536"), ("REVOKE_PORT", "-1"), ("REVOKE_REDIS_URL", "localhost:6379"),
        ("REVOKE_REDIS_URL", "redis://h:99999"),
    ])
    func namesTheBadVariable(_ variable: String, _ value: String) {
        do {
            _ = try ServerConfiguration(variables: [variable: value])
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            #expect(error.variable == variable)
            #expect("\(error)".hasPrefix(variable + ": "))
            #expect(!"\(error)".contains("\n"))
        }
    }
}
