import Foundation
import Redis
import RedisSupervisor

/// Runs `body` against a private `redis-server` on a free loopback port, then stops the
/// server and removes its directory, whatever `body` did.
///
/// A missing `redis-server` is an error, never a skip: `make test` installs it, and CI
/// (`CI=true`) must fail rather than pass without having tested anything.
/// - Parameters:
///   - appendOnly: Whether the server keeps an append-only file.
///   - password: `requirepass`; nil generates one.
public func withRedisServer<Result>(
    appendOnly: Bool = false, password: String? = nil,
    _ body: (RedisServerProcess) async throws -> Result
) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("revoke-test-redis-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let server = try await RedisServerProcess.start(
        .init(directory: directory, appendOnly: appendOnly, password: password))
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Runs `body` with a ``RedisClient`` that is connected to `configuration`, and shuts the
/// client down afterwards.
public func withRedisClient<Result: Sendable>(
    _ configuration: RedisConfiguration,
    _ body: (RedisClient) async throws -> Result
) async throws -> Result {
    let client = RedisClient(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        try await client.waitUntilConnected()
        return try await body(client)
    }
}
