import Logging
import Redis
import Retry
import RevokeStore
import ServiceLifecycle
import Synchronization

/// Follows the store's event log with one blocking `XREAD` loop per process and hands every
/// event to each `GET /v1/events` stream, in order, with a heartbeat when a second passes
/// without one. Several `revoked` processes on one Redis each follow the same log, so a client
/// may resume from its cursor on any of them.
///
/// A subscriber that asks to resume from a cursor is first replayed the events between its
/// cursor and the hub's position (from Redis), while live events wait in its own queue; no
/// event is lost or repeated at the seam. A subscriber too slow to take its events (10,000
/// queued) is ended: it reconnects and resumes from its cursor. While Redis cannot be read,
/// every stream is ended and new ones are refused with 503, so clients see that they are not
/// being kept fresh instead of receiving heartbeats that would lie.
final class EventHub: Service, Sendable {
    /// What a stream carries.
    enum Item: Sendable {
        case event(StoreEvent)
        case heartbeat
    }

    /// The items of one stream, and a way to end it early.
    struct Subscription: Sendable {
        var items: AsyncStream<Item>
        var end: @Sendable () -> Void
    }

    /// Why a subscription was refused.
    enum SubscribeError: Error {
        /// Events after the cursor were trimmed from the log.
        case gone
        /// The hub is not following the log (Redis is unreachable).
        case unavailable
    }

    private final class Subscriber: Sendable {
        let continuation: AsyncStream<Item>.Continuation
        /// Replaying: live events wait in `pending`. Live: events after `floor` go out at once.
        let state: Mutex<(replaying: Bool, pending: [StoreEvent], floor: EventCursor)>

        init(continuation: AsyncStream<Item>.Continuation, floor: EventCursor, replaying: Bool) {
            self.continuation = continuation
            self.state = Mutex((replaying, [], floor))
        }

        /// Sends an item; false when the subscriber's queue is full (it is then ended).
        func send(_ item: Item) -> Bool {
            if case .dropped = continuation.yield(item) {
                continuation.finish()
                return false
            }
            return true
        }
    }

    private struct State {
        /// Where the hub has read the log up to.
        var position: EventCursor?
        /// Whether the last read of the log succeeded.
        var following = false
        var subscribers: [Int: Subscriber] = [:]
        var nextID = 0
    }

    static let queueLimit = 10_000
    let heartbeatInterval: Duration
    private let store: RevocationStore
    private let reader: RedisClient
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameter reader: A Redis client of its own: the blocking reads hold its connection.
    init(store: RevocationStore, reader: RedisClient, logger: Logger, heartbeatInterval: Duration = .seconds(1)) {
        self.store = store
        self.reader = reader
        self.logger = logger
        self.heartbeatInterval = heartbeatInterval
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.follow()
        }
        endAll()
    }

    private func follow() async {
        var failures = 0
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        while !Task.isCancelled {
            do {
                // Resume where the hub was; the first time, from the end of the log. A PING
                // first, so the hub only says it follows once Redis answers.
                try await reader.waitUntilConnected(timeout: .seconds(2))
                _ = try await reader.send(RedisCommand("PING"))
                let known = state.withLock { $0.position }
                var start = EventCursor.start
                if let known { start = known } else { start = try await store.lastEventCursor() }
                state.withLock { state in
                    state.position = start
                    state.following = true
                }
                var position = start
                var lastSent = ContinuousClock.now
                while !Task.isCancelled {
                    let events = try await store.waitForEvents(after: position, on: reader, block: heartbeatInterval)
                    if let last = events.last, let cursor = EventCursor(last.id) { position = cursor }
                    if failures > 0 { logger.info("following the event log again") }
                    failures = 0
                    backoff.reset()
                    if !events.isEmpty {
                        broadcast(events, position: position)
                        lastSent = .now
                    } else if ContinuousClock.now - lastSent >= heartbeatInterval - .milliseconds(50) {
                        broadcast([], position: position)
                        lastSent = .now
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                if failures == 1 {
                    logger.warning("cannot follow the event log; event streams end until it can", metadata: ["error": "\(error)"])
                }
                // Streams cannot be kept fresh: end them, so clients know and resume later.
                endAll()
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    private func broadcast(_ events: [StoreEvent], position: EventCursor) {
        let subscribers = state.withLock { state in
            state.position = position
            state.following = true
            return state.subscribers
        }
        for (id, subscriber) in subscribers {
            let alive = subscriber.state.withLock { local -> Bool in
                if local.replaying {
                    local.pending += events
                    return local.pending.count <= Self.queueLimit
                }
                for event in events where (EventCursor(event.id) ?? .start) > local.floor {
                    guard subscriber.send(.event(event)) else { return false }
                }
                return subscriber.send(.heartbeat)
            }
            if !alive { remove(id) }
        }
    }

    private func remove(_ id: Int) {
        let subscriber = state.withLock { $0.subscribers.removeValue(forKey: id) }
        subscriber?.continuation.finish()
    }

    private func endAll() {
        let subscribers = state.withLock { state in
            defer {
                state.subscribers = [:]
                state.following = false
            }
            return state.subscribers
        }
        for subscriber in subscribers.values { subscriber.continuation.finish() }
    }

    /// A stream of the events after `since` (or from now), then live ones, with heartbeats.
    /// - Throws: ``SubscribeError``, or a `RedisError` from the replay.
    func subscribe(since: EventCursor?) async throws -> Subscription {
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(Self.queueLimit))
        let registered = state.withLock { state -> (id: Int, position: EventCursor, subscriber: Subscriber)? in
            guard state.following, let position = state.position else { return nil }
            let replaying = since.map { $0 < position } ?? false
            let subscriber = Subscriber(continuation: continuation, floor: max(since ?? position, position), replaying: replaying)
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = subscriber
            return (id, position, subscriber)
        }
        guard let (id, position, subscriber) = registered else {
            continuation.finish()
            throw SubscribeError.unavailable
        }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }
        let subscription = Subscription(items: stream, end: { continuation.finish() })
        guard let since, since < position else { return subscription }

        // Replay (since, position] from Redis, then what arrived meanwhile.
        do {
            if try await store.isTrimmed(after: since) { throw SubscribeError.gone }
            var cursor = since
            replay: while cursor < position {
                let page = try await store.events(after: cursor, count: 1000)
                if page.isEmpty { break }
                for event in page {
                    guard let id = EventCursor(event.id), id <= position else { break replay }
                    guard subscriber.send(.event(event)) else { break replay }
                    cursor = id
                }
            }
            // Trimmed while replaying: the stream may have a gap, so it must not go on.
            if try await store.isTrimmed(after: since) {
                remove(id)
                return subscription
            }
        } catch {
            remove(id)
            throw error
        }
        let alive = subscriber.state.withLock { local -> Bool in
            defer {
                local.replaying = false
                local.pending = []
            }
            for event in local.pending where (EventCursor(event.id) ?? .start) > position {
                guard subscriber.send(.event(event)) else { return false }
            }
            return local.pending.count <= Self.queueLimit
        }
        if !alive { remove(id) }
        return subscription
    }
}
