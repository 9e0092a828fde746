import Logging
import RedisTestSupport
import RevokeClient
import Synchronization

/// The events a caching client applied, for tests to wait on.
public final class AppliedEvents: Sendable {
    private let events = Mutex<[(type: String, cursor: String)]>([])

    public var onEvent: @Sendable (String, String) -> Void {
        { type, cursor in self.events.withLock { $0.append((type, cursor)) } }
    }

    public init() {}

    public var count: Int { events.withLock { $0.count } }

    /// Waits until more than `count` events were applied. The limit only turns a lost event
    /// into a failure instead of a hang; it is no claim about speed.
    public func waitForMore(than count: Int) async throws {
        try await waitUntil("more than \(count) events applied") { self.count > count }
    }
}

/// Runs `body` with a caching `RevokeClient` as a running service, once its cache is fresh.
public func withCachingClient(
    port: Int, cache: RevokeClient.CacheConfiguration, requestTimeout: Duration = .seconds(2),
    _ body: @Sendable (RevokeClient) async throws -> Void
) async throws {
    let client = RevokeClient(
        configuration: .init(url: "http://127.0.0.1:\(port)", requestTimeout: requestTimeout, cache: cache),
        logger: Logger(label: "test.client"))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        try await waitUntil("the cache is fresh") { client.isCacheFresh }
        try await body(client)
        group.cancelAll()
    }
}
