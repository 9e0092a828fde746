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
///   - extraConfiguration: More directives for `redis.conf` (`tls-port ...`), made from the
///     server's own directory.
public func withRedisServer<Result>(
    appendOnly: Bool = false, password: String? = nil, extraConfiguration: (String) throws -> [String] = { _ in [] },
    _ body: (RedisServerProcess) async throws -> Result
) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("revoke-test-redis-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let server = try await RedisServerProcess.start(
        .init(directory: directory, appendOnly: appendOnly, password: password, extraConfiguration: try extraConfiguration(directory)))
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

/// Waits until `condition` holds. The limit only turns "never" into a failure instead of a
/// hang, so it is generous: no test relies on how fast the machine is.
/// - Throws: ``WaitTimeout`` naming `what`, which fails the test that waited.
public func waitUntil(_ what: String, seconds: Double = 60, _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw WaitTimeout(description: "not true within \(seconds) s: \(what)")
}

/// What ``waitUntil(_:seconds:_:)`` throws when the condition never held.
public struct WaitTimeout: Error, CustomStringConvertible {
    public var description: String
}
