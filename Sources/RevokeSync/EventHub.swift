import Logging
import NIOCore
import Retry
import RevokeCore
import RevokeStore
import ServiceLifecycle
import Synchronization

/// Follows the store's event log with one blocking `XREAD` loop per process and hands every
/// event to each `GET /v1/events` stream, in order, with a heartbeat when a second passes
/// without one (a tenth of the streams at a time, a tenth of a second apart: 1,000 streams
/// woken at once held up the checks on the same event loops). Several `revoked` processes on
/// one Redis each follow the same log, so a client may resume from its cursor on any of them.
///
/// Never a gap: after each read the hub checks that nothing after its position was removed
/// before it read (it may have fallen behind while the log was trimmed); if something was, it
/// sends none of what it read and ends every stream, whose clients then resume from their last
/// `id` and get 410. While Redis cannot be read, every stream is ended and new ones are refused
/// with 503, so clients see that they are not being kept fresh instead of receiving heartbeats
/// that would lie.
///
/// A stream that resumes from a cursor is replayed by its own writer, page by page from Redis
/// (``Subscription/stream(replays:delivered:write:)``), while live events wait in its queue; no
/// event is lost or repeated at the seam. Each stream's queue holds at most `bufferBytes`; past
/// that the stream is closed.
public final class EventHub: Service, Sendable {
    /// Why a subscription was refused.
    public enum SubscribeError: Error {
        /// The hub is not following the log (Redis is unreachable).
        case unavailable
        /// As many streams are open as this instance allows.
        case overloaded
        /// This client holds as many streams as one client may (`REVOKE_MAX_STREAMS_PER_CLIENT`).
        case clientLimit
    }

    /// Who follows a stream, for `GET /v1/verifiers`.
    public struct Follower: Sendable {
        /// The verifier key's name, else the client's `User-Agent`.
        public var name: String
        /// The client's address.
        public var address: String
        /// Who the per-client bound counts this stream against: the verifier key's name and the
        /// client's IP address, or the address alone without a key.
        public var client: String
        /// When the stream opened (Unix seconds).
        public var connectedAt: Int64

        public init(name: String, address: String, client: String, connectedAt: Int64) {
            self.name = name
            self.address = address
            self.client = client
            self.connectedAt = connectedAt
        }
    }

    /// What `GET /v1/verifiers` shows of one stream.
    public struct StreamStatus: Sendable {
        public var follower: Follower
        /// The last event written to it (its cursor), or where it started.
        public var position: EventCursor
        /// Events read from the log and not yet written to it.
        public var lagEvents: Int
        /// How long the oldest of those has waited since it was written to the log (0 when none).
        public var lagSeconds: Double
    }

    /// One open stream: its queue, where its replay ends, and how to end it.
    public final class Subscription: Sendable {
        public let id: Int
        public let follower: Follower
        /// The last event written, and the events handed over but not yet written (oldest first).
        fileprivate let delivery: Mutex<(position: EventCursor, unwritten: CircularBuffer<EventCursor>)>
        /// Where the stream starts; the events of a replay, when there is one, are those in
        /// `(since, replayThrough]`.
        let since: EventCursor
        let replayThrough: EventCursor
        fileprivate let queue: EventQueue
        /// While replaying, live events wait here (their bytes count against the queue's bound).
        fileprivate let pending: Mutex<(replaying: Bool, events: [RenderedEvent], bytes: Int)>
        fileprivate let close: @Sendable () -> Void

        fileprivate init(
            id: Int, follower: Follower, since: EventCursor, replayThrough: EventCursor, limit: Int, close: @escaping @Sendable () -> Void
        ) {
            self.id = id
            self.follower = follower
            self.delivery = Mutex((since, CircularBuffer()))
            self.since = since
            self.replayThrough = replayThrough
            self.queue = EventQueue(limit: limit)
            self.pending = Mutex((since < replayThrough, [], 0))
            self.close = close
        }

        /// Whether the writer must replay `(since, replayThrough]` from the log first.
        var needsReplay: Bool { since < replayThrough }

        /// After the replay: the live events that arrived meanwhile go out, then live ones as
        /// they come. False when they overflowed the bound (the stream must end).
        func goLive() -> Bool {
            let waiting = pending.withLock { state -> [RenderedEvent]? in
                defer { state = (false, [], 0) }
                return state.bytes > queue.limit ? nil : state.events
            }
            guard let waiting else { return false }
            let fresh = waiting.filter { $0.cursor > replayThrough }
            handedOver(fresh)
            return queue.push(fresh.map(StreamItem.event) + [.heartbeat])
        }

        /// Everything queued for the writer, waiting for something; nil when the stream is over.
        func next() async -> [StreamItem]? { await queue.next() }

        /// The writer wrote `bytes` of what it took, up to the event at `cursor` (nil: heartbeats
        /// or a replay page only).
        func written(_ bytes: Int, through cursor: EventCursor?) {
            queue.written(bytes)
            guard let cursor else { return }
            delivery.withLock { delivery in
                delivery.position = max(delivery.position, cursor)
                while let first = delivery.unwritten.first, first <= cursor { delivery.unwritten.removeFirst() }
            }
        }

        /// Notes events handed over for writing (their cursors, oldest first).
        fileprivate func handedOver(_ events: [RenderedEvent]) {
            guard !events.isEmpty else { return }
            delivery.withLock { delivery in
                for event in events where event.cursor > delivery.position { delivery.unwritten.append(event.cursor) }
            }
        }

        func status(now: Double) -> StreamStatus {
            delivery.withLock { delivery in
                let oldest = delivery.unwritten.first.map { Double($0.milliseconds) / 1000 }
                return StreamStatus(
                    follower: follower, position: delivery.position, lagEvents: delivery.unwritten.count,
                    lagSeconds: oldest.map { max(0, now - $0) } ?? 0)
            }
        }

        /// Takes a live batch (`items`: the events, then a heartbeat, built once for every
        /// stream): queued while replaying, else pushed. False when the stream must end (it
        /// overflowed).
        fileprivate func offer(_ events: [RenderedEvent], items: [StreamItem], bytes: Int) -> Bool {
            let queuedForLater = pending.withLock { state -> Bool? in
                guard state.replaying else { return nil }
                state.events += events
                state.bytes += bytes
                return state.bytes <= queue.limit
            }
            if let queuedForLater { return queuedForLater }
            // Events come in log order: when the first is past what this stream replayed, all are,
            // and it takes the shared items; else it skips those it replayed.
            if events.first.map({ $0.cursor > replayThrough }) ?? true {
                handedOver(events)
                return queue.push(items)
            }
            let fresh = events.filter { $0.cursor > replayThrough }
            handedOver(fresh)
            return queue.push(fresh.map(StreamItem.event) + [.heartbeat])
        }
    }

    private struct State {
        /// Where the hub has read the log up to.
        public var position: EventCursor?
        /// Whether the last read of the log succeeded.
        var following = false
        var subscribers: [Int: Subscription] = [:]
        /// Open streams by ``Follower/client``.
        var clients: [String: Int] = [:]
        var nextID = 0
    }

    let heartbeatInterval: Duration
    /// `REVOKE_MAX_EVENT_STREAMS` and `REVOKE_STREAM_BUFFER_BYTES`.
    let maximumStreams: Int
    /// `REVOKE_MAX_STREAMS_PER_CLIENT`.
    let maximumStreamsPerClient: Int
    let bufferBytes: Int
    /// The store, where a stream without a cursor reads where the log is now.
    private let store: RevocationStore
    /// The store, read through a Redis client of the hub's own: the blocking reads hold it.
    private let reader: RevocationStore
    private let snapshots: SnapshotKeeper
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameters:
    ///   - reader: The store read through a Redis client of the hub's own
    ///     (``RevocationStore/reading(through:)``): the blocking reads hold its connection.
    ///   - snapshots: Takes every page of events read, and hears when the hub lost track.
    public init(
        store: RevocationStore, reader: RevocationStore, snapshots: SnapshotKeeper, logger: Logger, maximumStreams: Int = 10_000,
        maximumStreamsPerClient: Int = 1000, bufferBytes: Int = 1 << 20, heartbeatInterval: Duration = .seconds(1)
    ) {
        self.maximumStreamsPerClient = maximumStreamsPerClient
        self.store = store
        self.reader = reader
        self.snapshots = snapshots
        self.logger = logger
        self.maximumStreams = maximumStreams
        self.bufferBytes = bufferBytes
        self.heartbeatInterval = heartbeatInterval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.follow()
        }
        endAll()
    }

    /// Follows the log until cancelled: from where the hub was, else from the log's end; while
    /// Redis cannot be read, every stream is ended and the hub tries again after a pause.
    private func follow() async {
        var failures = 0
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        while !Task.isCancelled {
            do {
                // The hub only says it follows once Redis answers.
                try await reader.waitUntilReachable(timeout: .seconds(2))
                let start = try await startingPoint()
                state.withLock { state in
                    state.position = start
                    state.following = true
                }
                if failures > 0 { logger.info("following the event log again") }
                failures = 0
                backoff.reset()
                // Returns when the log lost events after the hub's position before it read them:
                // the next turn finds that out and starts again from the log's end.
                try await read(from: start)
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

    /// Where to read from: the hub's position while the log still holds everything after it,
    /// else (the first time, or after losing track) the log's end.
    private func startingPoint() async throws -> EventCursor {
        let log = try await reader.eventLogState()
        guard let known = state.withLock({ $0.position }) else { return log.lastGenerated }
        if log.holdsEverything(after: known) { return known }
        // Trimmed while the hub was away or behind, or another log (a failover to a replica that
        // had not received the last events). Reading on from it could skip events: end every
        // stream (their clients resume and get 410), tell the keeper, follow from the log's end.
        logger.warning(
            "the event log no longer holds the hub's position (trimmed, or a failover); ending every stream",
            metadata: ["position": "\(known)", "log.last": "\(log.lastGenerated)"])
        endAll()
        snapshots.hubLostTrack()
        return log.lastGenerated
    }

    /// Reads the log after `start` and hands out what it reads, with heartbeats between; returns
    /// when events after its position left the log before it read them.
    private func read(from start: EventCursor) async throws {
        let tick = heartbeatInterval / Self.heartbeatSlices
        var position = start
        var heartbeats = (slice: 0, last: ContinuousClock.now)
        var lastEvents: ContinuousClock.Instant?
        var behind = false
        while !Task.isCancelled {
            // A broadcast costs every stream a wakeup and a write. Under a flood of changes,
            // gather for a moment instead of broadcasting each one: at most one broadcast per
            // `pace` (longer with more streams). A quiet log, or a hub that is behind (its last
            // read was a full page), does not wait.
            if !behind, let lastEvents {
                let elapsed = ContinuousClock.now - lastEvents
                if elapsed < broadcastPace { try await Task.sleep(for: broadcastPace - elapsed) }
            }
            guard case .events(let events) = try await reader.waitForEvents(after: position, block: tick, count: Self.pageSize) else {
                return
            }
            behind = events.count >= Self.pageSize
            if let last = events.last, let cursor = EventCursor(last.id) {
                snapshots.offer(from: position, events)
                position = cursor
                broadcast(events, position: position)
                heartbeats.last = .now
                lastEvents = .now
            } else if ContinuousClock.now - heartbeats.last >= tick - tick / 10 {
                // Each slice in turn: every stream hears from the hub once an interval.
                broadcast([], position: position, slice: heartbeats.slice)
                heartbeats = ((heartbeats.slice + 1) % Self.heartbeatSlices, .now)
            }
        }
    }

    /// Events read from the log at once.
    public static let pageSize = 1000

    /// Heartbeats go to the streams whose ID falls in one of this many slices at a time.
    static let heartbeatSlices = 10

    /// The shortest time between two broadcasts of events: 20 µs per open stream, at most 50 ms
    /// (1,000 streams: 20 ms). A change then reaches every stream within that much more than
    /// one read of the log, and a flood costs each stream at most one wakeup per pace.
    var broadcastPace: Duration {
        let streams = state.withLock { $0.subscribers.count }
        return min(.milliseconds(50), .microseconds(20 * streams))
    }

    /// Hands `events` to every stream, or, with none and a `slice`, a heartbeat to that slice.
    private func broadcast(_ events: [StoreEvent], position: EventCursor, slice: Int? = nil) {
        let subscribers = state.withLock { state in
            state.position = position
            state.following = true
            return state.subscribers
        }
        // Rendered once here, shared by every stream.
        let rendered = events.compactMap(RenderedEvent.init)
        let bytes = rendered.reduce(0) { $0 + $1.bytes.readableBytes }
        let items = rendered.map(StreamItem.event) + [.heartbeat]
        for (id, subscription) in subscribers where slice.map({ id % Self.heartbeatSlices == $0 }) ?? true {
            if subscription.offer(rendered, items: items, bytes: bytes) { continue }
            logger.debug("closing an event stream that does not keep up", metadata: ["stream": "\(id)"])
            remove(id)
            subscription.close()
        }
    }

    /// Every open stream, oldest first.
    public func streams(now: Double) -> [StreamStatus] {
        state.withLock { $0.subscribers }.sorted { $0.key < $1.key }.map { $0.value.status(now: now) }
    }

    /// Ends a stream's queue and forgets it.
    public func remove(_ id: Int) {
        let subscription = state.withLock { state -> Subscription? in
            guard let subscription = state.subscribers.removeValue(forKey: id) else { return nil }
            let client = subscription.follower.client
            if let count = state.clients[client], count > 1 { state.clients[client] = count - 1 } else { state.clients[client] = nil }
            return subscription
        }
        subscription?.queue.finish()
    }

    private func endAll() {
        let subscribers = state.withLock { state in
            defer {
                state.subscribers = [:]
                state.clients = [:]
                state.following = false
            }
            return state.subscribers
        }
        for subscription in subscribers.values { subscription.queue.finish() }
    }

    /// Opens a stream of the events after `since`, or, without one, of those written from now
    /// on: after the log's position as Redis gives it when the request comes (the hub may not
    /// have read yet a change Redis acknowledged before, and the stream must not carry it). Its
    /// writer replays what lies before the hub's position itself (``Subscription/stream(replays:delivered:write:)``).
    /// - Parameter close: Closes the stream's connection, for a reader that does not keep up.
    /// - Throws: ``SubscribeError``, or the store's error when Redis cannot say where the log is.
    public func subscribe(since: EventCursor?, follower: Follower, close: @escaping @Sendable () -> Void) async throws -> Subscription {
        let start: EventCursor
        if let since { start = since } else { start = try await store.lastEventCursor() }
        let outcome = state.withLock { state -> Result<Subscription, SubscribeError> in
            guard state.following, let position = state.position else { return .failure(.unavailable) }
            guard state.subscribers.count < maximumStreams else { return .failure(.overloaded) }
            guard state.clients[follower.client, default: 0] < maximumStreamsPerClient else { return .failure(.clientLimit) }
            state.clients[follower.client, default: 0] += 1
            let subscription = Subscription(
                id: state.nextID, follower: follower, since: start, replayThrough: max(start, position), limit: bufferBytes, close: close)
            state.nextID += 1
            state.subscribers[subscription.id] = subscription
            return .success(subscription)
        }
        return try outcome.get()
    }
}
