import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

@Suite struct HealthTests {
    @Test func readyOnlyWhileRedisAnswers() async throws {
        try await withRevoked { (client, _, server) async throws in
            #expect(try await client.call(.get, "/healthz").status == .ok)
            server.pause()
            let notReady = try await client.call(.get, "/readyz")
            #expect(notReady.status == .serviceUnavailable)
            #expect(notReady.headers[.retryAfter] == "1")
            #expect(notReady.error == "store_unavailable")
            // The process is still alive while Redis is away.
            #expect(try await client.call(.get, "/healthz").status == .ok)
            server.resume()
            try await waitUntilReady(client)
        }
    }

    @Test func statusCountsWhatIsRevokedAndDescribesRedis() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, _, server) async throws in
            #expect(try await client.call(.get, "/v1/status").error == "unauthorized")
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"st-1","expires_at":null}"#, key: "admin-secret").status == .created)
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"st-2","expires_at":null}"#, key: "admin-secret").status == .created)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"eve"}"#, key: "admin-secret").status == .created)
            let status = try await client.call(.get, "/v1/status", key: "admin-secret")
            #expect(status.status == .ok)
            #expect(status.json["revocations"] == .number(2))
            #expect(status.json["cutoffs"] == .number(1))
            #expect(status.json["namespace"] == .string("revoke"))
            guard case .object(let redis)? = status.json["redis"], case .string(let version)? = redis["version"] else {
                Issue.record("no redis version in \(status.text)")
                return
            }
            #expect(version.split(separator: ".").count == 3)
            #expect(redis["role"] == .string("master"))
            server.pause()
            #expect(try await client.call(.get, "/v1/status", key: "admin-secret").error == "store_unavailable")
            server.resume()
        }
    }

    @Test func undeclaredMethodsGet405WithAllowEverywhere() async throws {
        try await withRevoked { (client, _, _) async throws in
            for (method, path, allow) in [
                (HTTPRequest.Method.trace, "/v1/status", "GET"), (.options, "/healthz", "GET"), (HTTPRequest.Method("QUERY")!, "/metrics", "GET"),
                (.head, "/v1/check", "POST"), (.put, "/v1/revocations/x", "GET, DELETE"),
                // A method HTTP itself does not define is refused the same way.
                (HTTPRequest.Method("PROPFIND")!, "/v1/revocations/x", "GET, DELETE"), (HTTPRequest.Method("PURGE")!, "/v1/snapshot", "GET"),
            ] {
                let reply = try await client.call(method, path, key: "admin-secret")
                #expect(reply.status == .methodNotAllowed, "\(method) \(path)")
                #expect(reply.headers[.allow] == allow, "\(method) \(path)")
            }
        }
    }

    @Test func aReasonOnDeleteIsLimitedAsInBodies() async throws {
        try await withRevoked { (client, _, _) async throws in
            #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"r-1","expires_at":null}"#, key: "admin-secret").status == .created)
            let long = String(repeating: "a", count: 1025)
            #expect(try await client.call(.delete, "/v1/revocations/r-1?reason=\(long)", key: "admin-secret").error == "invalid_request")
            #expect(try await client.call(.delete, "/v1/cutoffs/sub/x?reason=\(long)", key: "admin-secret").error == "invalid_request")
            #expect(try await client.call(.delete, "/v1/revocations/r-1?reason=fine", key: "admin-secret").status == .noContent)
        }
    }

    @Test func unknownPathsGetTheJSONErrorBody() async throws {
        try await withRevoked { (client, _, _) async throws in
            let reply = try await client.call(.get, "/v0/nothing%20here")
            #expect(reply.status == .notFound)
            #expect(reply.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(reply.text == #"{"error":"not_found","message":"no such resource"}"#)
        }
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
        #expect(configuration.maximumEventStreams == 10_000)
        #expect(configuration.streamBufferBytes == 1_048_576)
        #expect(configuration.idleTimeout == 60)
        #expect(configuration.eventLogLength == 100_000)
        #expect(configuration.packedRecords)
        #expect(try ServerConfiguration(variables: ["REVOKE_PACKED_RECORDS": "false"]).packedRecords == false)
    }

    @Test(arguments: [
        ("REVOKE_PORT", "http"), ("REVOKE_PORT", "65536"), ("REVOKE_PORT", "-1"), ("REVOKE_REDIS_URL", "localhost:6379"),
        ("REVOKE_REDIS_URL", "redis://h:99999"), ("REVOKE_NAMESPACE", "a:jti"), ("REVOKE_MAX_EVENT_STREAMS", "0"),
        ("REVOKE_STREAM_BUFFER_BYTES", "10"), ("REVOKE_IDLE_TIMEOUT", "forever"), ("REVOKE_EVENT_LOG_LENGTH", "5"),
        ("REVOKE_PACKED_RECORDS", "yes"),
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
