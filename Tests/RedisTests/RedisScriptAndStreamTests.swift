import Redis
import RedisSupervisor
import RedisTestSupport
import Testing

@Suite struct RedisScriptAndStreamTests {
    static let moveForward = RedisScript(
        """
        local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
        local proposed = tonumber(ARGV[1])
        if proposed > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
        return 0
        """)

    @Test func runsScriptsAndReloadsThemAfterAFlush() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                let key = Array("cut:\r\n\0".utf8)
                #expect(try await redis.evaluate(Self.moveForward, keys: [key], arguments: [Array("10".utf8)]) == .integer(1))
                #expect(try await redis.evaluate(Self.moveForward, keys: [key], arguments: [Array("5".utf8)]) == .integer(0))
                // Redis knows the script by the SHA-1 we computed.
                #expect(
                    try await redis.send(RedisCommand("SCRIPT", "EXISTS", Self.moveForward.sha1)) == .array([.integer(1)]))
                _ = try await redis.send(RedisCommand("SCRIPT", "FLUSH"))
                #expect(try await redis.evaluate(Self.moveForward, keys: [key], arguments: [Array("11".utf8)]) == .integer(1))
                #expect(
                    try await redis.send(RedisCommand(arguments: [Array("GET".utf8), key])) == .bulkString(Array("11".utf8)))
                await #expect {
                    _ = try await redis.evaluate(RedisScript("return redis.call('NOSUCH')"))
                } throws: { error in
                    (error as? RedisError)?.code == .commandFailed
                }
            }
        }
    }

    @Test func appendsAndReadsStreamEntries() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                var ids: [String] = []
                for index in 0..<20 {
                    ids.append(
                        try await redis.xadd(
                            "events", maximumLength: 1000,
                            fields: [.init(name: "n", value: Array("\(index)".utf8)), .init(name: "bin", value: [0, 13, 10])]))
                }
                let all = try await redis.xrange("events")
                #expect(all.map(\.id) == ids)
                #expect(all[3]["n"] == Array("3".utf8))
                #expect(all[3]["bin"] == [0, 13, 10])
                let page = try await redis.xrange("events", from: "(" + ids[4], count: 5)
                #expect(page.map(\.id) == Array(ids[5..<10]))
                let after = try await redis.xread("events", after: ids[17])
                #expect(after.map(\.id) == Array(ids[18...]))
                #expect(try await redis.xread("events", after: ids[19]).isEmpty)
            }
        }
    }

    @Test func blockingReadsWakeOnANewEntryOnTheirOwnConnection() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                let last = try await redis.xadd("stream", fields: [.init(name: "n", value: Array("0".utf8))])
                let reader = try await RedisConnection.connect(to: server.configuration())
                defer { reader.close() }
                // Nothing arrives: the read returns empty after its block time, not an error.
                #expect(try await reader.xread("stream", after: last, block: .milliseconds(100)).isEmpty)

                async let woken = reader.xread("stream", after: last, block: .seconds(5))
                try await Task.sleep(for: .milliseconds(100))
                // The shared client is not held up by the blocked reader.
                #expect(try await redis.send(RedisCommand("PING")) == .simpleString("PONG"))
                let id = try await redis.xadd("stream", fields: [.init(name: "n", value: Array("1".utf8))])
                let entries = try await woken
                #expect(entries.map(\.id) == [id])
                #expect(entries.first?["n"] == Array("1".utf8))
            }
        }
    }
}
