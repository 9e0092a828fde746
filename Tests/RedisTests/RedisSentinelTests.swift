import Foundation
import Redis
import RedisSupervisor
import RedisTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `redis-sentinel://` against a real deployment (a primary, a replica, three sentinels): the
/// client finds the primary through the sentinels, follows a failover by itself, and never
/// writes to a replica.
@Suite(.serialized) struct RedisSentinelTests {
    @Test func parsesSentinelURLs() throws {
        let configuration = try RedisConfiguration(url: "rediss-sentinel://:pw@10.0.0.7,10.0.0.8:26380,[::1]/my%2Dprimary/2")
        let sentinel = try #require(configuration.sentinel)
        #expect(sentinel.sentinels == [
            RedisAddress(host: "10.0.0.7", port: 26379), RedisAddress(host: "10.0.0.8", port: 26380), RedisAddress(host: "::1", port: 26379),
        ])
        #expect(sentinel.masterName == "my-primary")
        #expect(configuration.database == 2 && configuration.password == "pw" && configuration.tls != nil)
        #expect(!"\(configuration)".contains("pw@"))
        for bad in ["redis-sentinel://h1,h2", "redis-sentinel://h1/", "redis-sentinel://h1,,h2/m", "redis://h1,h2/0", "redis-sentinel://h1/m/x", "redis-sentinel://h1/a%20b"] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
    }

    @Test func aClientFollowsAFailoverToThePromotedReplica() async throws {
        try await withSentinelDeployment { deployment in
            let first = try await deployment.primaryPort()
            try await withRedisClient(try deployment.configuration()) { client in
                #expect(try await client.send(RedisCommand("SET", "before", "1")) == .simpleString("OK"))
                #expect(try await client.send(RedisCommand("WAIT", "1", "5000")).integer == 1)
                await deployment.node(port: first)?.kill()
                // Writes fail (503 for revoked) until a replica is promoted, then go to it.
                try await waitUntil("a write succeeds after the failover") {
                    (try? await client.send(RedisCommand("SET", "after", "2"))) == .simpleString("OK")
                }
                let promoted = try await deployment.primaryPort()
                #expect(promoted != first)
                let direct = try await RedisConnection.connect(to: deployment.configuration(port: promoted))
                defer { direct.close() }
                #expect(try await direct.send(RedisCommand("GET", "before")).string == "1")
                #expect(try await direct.send(RedisCommand("GET", "after")).string == "2")
                #expect(try await direct.role() == "master")
            }
        }
    }

    /// `rediss-sentinel://`: TLS to the sentinels and to the data nodes they name (their TLS
    /// ports, verified against the test's CA), through a failover too.
    @Test func aClientFollowsThePrimaryOverTLSThroughTLSSentinels() async throws {
        try await withSentinelDeployment(tls: true) { deployment in
            let configuration = try deployment.configuration()
            #expect(configuration.tls != nil && deployment.url.hasPrefix("rediss-sentinel://"))
            let first = try await deployment.primaryPort()
            try await withRedisClient(configuration) { client in
                #expect(try await client.send(RedisCommand("SET", "tls-before", "1")) == .simpleString("OK"))
                #expect(try await client.send(RedisCommand("WAIT", "1", "5000")).integer == 1)
                await deployment.node(port: first)?.kill()
                try await waitUntil("a write succeeds over TLS after the failover") {
                    (try? await client.send(RedisCommand("SET", "tls-after", "2"))) == .simpleString("OK")
                }
                #expect(try await client.send(RedisCommand("GET", "tls-before")).string == "1")
            }
            // Without the CA, nothing is reached: the sentinels' certificates do not verify.
            var untrusted = configuration
            untrusted.tls?.caFile = deployment.tls?.otherCAFile
            let client = RedisClient(configuration: untrusted)
            let running = Task { try await client.run() }
            defer { running.cancel() }
            await #expect(throws: RedisError.self) { try await client.waitUntilConnected(timeout: .seconds(2)) }
        }
    }

    /// A switch while connected: the old primary stays up and is made a replica. The client
    /// follows `+switch-master` (or `READONLY`) to the new primary. Between the promotion and
    /// the demotion the old primary still takes writes, and loses them when it resynchronises:
    /// Sentinel alone cannot keep them. A write `WAIT` confirmed on a replica is never among
    /// them (the promoted replica stopped replicating the old primary), so every one is on the
    /// new primary.
    @Test func aClientNeverWritesToTheDemotedPrimary() async throws {
        try await withSentinelDeployment { deployment in
            let first = try await deployment.primaryPort()
            try await withRedisClient(try deployment.configuration()) { client in
                _ = try await client.send(RedisCommand("SET", "k-0", "v"))
                _ = try await deployment.ask(deployment.sentinels[0], RedisCommand("SENTINEL", "FAILOVER", deployment.masterName))
                let succeeded = Mutex<[Int]>([])
                var index = 1
                try await waitUntil("a write reaches the new primary") {
                    defer { index += 1 }
                    let replies = try? await client.send(
                        batch: [RedisCommand("SET", "k-\(index)", "v"), RedisCommand("WAIT", "1", "1000")], timeout: .seconds(3))
                    guard let replies, replies[0] == .simpleString("OK") else { return false }
                    if replies[1].integer == 1 { succeeded.withLock { $0.append(index) } }
                    guard let now = try? await deployment.primaryPort(), now != first else { return false }
                    let info = try? await client.send(RedisCommand("CLIENT", "INFO"))
                    return info?.string?.contains("laddr=127.0.0.1:\(now)") == true
                }
                let promoted = try await deployment.primaryPort()
                let direct = try await RedisConnection.connect(to: deployment.configuration(port: promoted))
                defer { direct.close() }
                // Every write a replica confirmed is on the new primary.
                let confirmed = succeeded.withLock { $0 }
                #expect(!confirmed.isEmpty)
                for key in confirmed {
                    #expect(try await direct.send(RedisCommand("EXISTS", "k-\(key)")).integer == 1, "k-\(key)")
                }
            }
        }
    }
}

