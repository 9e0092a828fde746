import Foundation
import Redis
import RedisSupervisor
import RedisTestSupport
import Testing

/// A dead or frozen Redis must never hold a caller past its timeout, and the client must
/// come back by itself when Redis does.
@Suite struct RedisFaultTests {
    @Test func aPausedServerTimesOutAndTheClientRecovers() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration(commandTimeout: .milliseconds(300))
            configuration.connectTimeout = .milliseconds(300)
            try await withRedisClient(configuration) { redis in
                // Commands meant to succeed take a timeout of their own, generous for a busy
                // machine; the one meant to time out takes the connection's 300 ms.
                _ = try await redis.send(RedisCommand("SET", "before", "1"), timeout: .seconds(30))
                server.pause()
                // The caller is answered (with a timeout), not held for as long as Redis sleeps.
                await #expect {
                    _ = try await redis.send(RedisCommand("GET", "before"))
                } throws: { error in
                    (error as? RedisError)?.code == .timeout
                }

                // While the server stays frozen, callers are told at once that Redis is away.
                try await waitUntil("the client dropped the frozen connection") { !redis.isConnected }
                await #expect {
                    _ = try await redis.send(RedisCommand("GET", "before"))
                } throws: { error in
                    (error as? RedisError)?.isUnavailable == true
                }

                server.resume()
                try await redis.waitUntilConnected(timeout: .seconds(60))
                #expect(try await redis.send(RedisCommand("GET", "before"), timeout: .seconds(30)) == .bulkString(Array("1".utf8)))
            }
        }
    }

    @Test func concurrentCallersAllFailWhenTheServerFreezes() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration(commandTimeout: .milliseconds(300))) { redis in
                server.pause()
                defer { server.resume() }
                let outcomes = await withTaskGroup(of: RedisError.Code?.self) { group in
                    for index in 0..<200 {
                        group.addTask {
                            do {
                                _ = try await redis.send(RedisCommand("ECHO", "\(index)"))
                                return nil
                            } catch {
                                return (error as? RedisError)?.code
                            }
                        }
                    }
                    return await group.reduce(into: [RedisError.Code?]()) { $0.append($1) }
                }
                #expect(outcomes.count == 200)
                #expect(outcomes.allSatisfy { $0 == .timeout || $0 == .unavailable || $0 == .connectionClosed })
            }
        }
    }

    @Test func reconnectsAfterTheServerIsKilledAndRestarted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("revoke-test-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await RedisServerProcess.start(.init(directory: directory, appendOnly: true))
        var configuration = first.configuration()
        configuration.reconnectBackoff = .milliseconds(20)
        configuration.maximumReconnectBackoff = .milliseconds(200)
        try await withRedisClient(configuration) { redis in
            _ = try await redis.send(RedisCommand("SET", "survives", "yes"))
            // Written to disk before the kill: the rewrite has run to its end (INFO says so).
            _ = try await redis.send(RedisCommand("BGREWRITEAOF"))
            try await waitUntil("the AOF rewrite finished") {
                let info = (try? await redis.send(RedisCommand("INFO", "persistence")).string) ?? ""
                return info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0")
                    && info.contains("aof_last_bgrewrite_status:ok")
            }
            await first.kill()

            await #expect {
                _ = try await redis.send(RedisCommand("GET", "survives"))
            } throws: { error in
                (error as? RedisError)?.isUnavailable == true
            }
            #expect(!redis.isConnected)

            let second = try await RedisServerProcess.start(first.options)
            defer { Task { await second.stop() } }
            try await redis.waitUntilConnected()
            #expect(second.port == first.port)
            #expect(try await redis.send(RedisCommand("GET", "survives")) == .bulkString(Array("yes".utf8)))
            await second.stop()
        }
    }

    @Test func aClosedConnectionRefusesNewCommands() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(to: server.configuration())
            connection.close()
            await connection.waitUntilClosed()
            #expect(!connection.isOpen)
            await #expect {
                _ = try await connection.send(RedisCommand("PING"))
            } throws: { error in
                (error as? RedisError)?.code == .connectionClosed
            }
        }
    }

    /// A script that runs 300 ms, with a busy loop: Redis answers nothing else meanwhile.
    static let slowScript = RedisCommand(
        "EVAL",
        "local s = redis.call('TIME') while true do local n = redis.call('TIME') if (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 300000 then break end end return 1",
        "0")

    /// One slow reply fails only the command that waited too long for it: the commands behind
    /// it (with longer timeouts) are answered, and the connection goes on.
    @Test func aSlowReplyFailsOnlyItsOwnCommand() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration(commandTimeout: .seconds(30))) { redis in
                async let slow: RedisError.Code? = {
                    do {
                        _ = try await redis.send(Self.slowScript, timeout: .milliseconds(50))
                        return nil
                    } catch {
                        return (error as? RedisError)?.code
                    }
                }()
                try await Task.sleep(for: .milliseconds(10))
                async let behind = redis.send(RedisCommand("PING"))
                let (slowOutcome, pong) = try await (slow, behind)
                #expect(slowOutcome == .timeout)
                #expect(pong == .simpleString("PONG"))
                #expect(try await redis.send(RedisCommand("PING")) == .simpleString("PONG"))
                #expect(redis.isConnected)
            }
        }
    }
}
