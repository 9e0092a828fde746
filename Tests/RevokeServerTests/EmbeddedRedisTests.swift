import Foundation
import Logging
import Redis
import RedisTestSupport
import RevokeServer
import ServiceLifecycle
import Synchronization
import RevokeTestSupport
import Testing

@Suite struct EmbeddedRedisTests {
    @Test func restartsAfterACrashWithItsDataAndStopsOnShutdown() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("revoke-embedded-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let embedded = try EmbeddedRedis(directory: directory, logger: Logger(label: "test"))
        var configuration = embedded.configuration
        configuration.reconnectBackoff = .milliseconds(20)
        configuration.maximumReconnectBackoff = .milliseconds(100)
        let group = ServiceGroup(services: [embedded], logger: Logger(label: "test"))

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await withRedisClient(configuration) { redis in
                _ = try await redis.send(RedisCommand("SET", "revoke:jti:acknowledged", "1"))
                let pid = try #require(Int32(try String(contentsOfFile: directory + "/redis.pid", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)))
                kill(pid, SIGKILL)
                // It comes back on the same port with the same password, and the acknowledged
                // write is still there.
                let restored = Mutex<RedisValue?>(nil)
                try await waitUntil("the embedded redis-server is back") {
                    let value = try? await redis.send(RedisCommand("GET", "revoke:jti:acknowledged"))
                    restored.withLock { $0 = value }
                    return value != nil
                }
                #expect(restored.withLock { $0 } == .bulkString(Array("1".utf8)))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // Stopped, not orphaned: nothing answers on its port any more.
        #expect((try? await RedisConnection.connect(to: configuration)) == nil)
        #expect(FileManager.default.fileExists(atPath: directory + "/appendonlydir"))
    }
}
