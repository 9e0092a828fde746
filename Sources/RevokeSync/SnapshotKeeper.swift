import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Retry
import RevokeCore
import RevokeSnapshot
import RevokeStore
import ServiceLifecycle
import Synchronization

/// Keeps what `GET /v1/snapshot` serves in step with the event log, so that serving one costs a
/// copy and an encoding of the filter, never a scan of Redis.
///
/// It loads everything once with one `SCAN` (``RevocationStore/scanSnapshotRecords(batch:_:)``),
/// reading the log's position first; from then on it applies every event the ``EventHub``
/// reads, in log order. Never a gap: each page the hub reads comes with the position it was read
/// after, and when that is past the keeper's (a page it dropped while busy, or the hub started
/// later), the keeper reads the missing events from the log itself
/// (``RevocationStore/events(after:count:)``, proven complete). When the log no longer
/// holds them (trimmed, or a failover to another log), or the hub lost track of the log, or an
/// event cannot be read, it loads everything again.
///
/// Expired `jti`s leave the filter when a quarter of what it holds is dead, or when it took more
/// than it was sized for: a new filter is built from the hashes in memory
/// (``SnapshotState/rebuilt(now:)``), off the event loops.
public actor SnapshotKeeper: Service {
    public struct Built: Sendable {
        public var bytes: ByteBuffer
        /// The state's generation it was encoded from.
        var generation: Int
        public var cursor: EventCursor
        var builtAt: ContinuousClock.Instant
    }

    /// What it counts, for `/metrics`.
    public struct Metrics: Sendable {
        /// Full loads from Redis: one at start, then one each time it could have missed an event.
        var loads: CoreMetrics.Counter
        /// Filters rebuilt from memory.
        var rebuilds: CoreMetrics.Counter
        /// Live revocations held, each second.
        var revocations: CoreMetrics.Gauge

        public init(loads: CoreMetrics.Counter, rebuilds: CoreMetrics.Counter, revocations: CoreMetrics.Gauge) {
            self.loads = loads
            self.rebuilds = rebuilds
            self.revocations = revocations
        }
    }

    /// What the keeper works through, one at a time.
    enum Input: Sendable {
        /// Events the hub read after `from`, oldest first.
        case events(from: EventCursor, [StoreEvent])
        /// Time passes: expiry, rebuilding, catching up, loading again after a failure.
        case tick
    }

    /// Where the keeper stands. Every change of phase is one of the mutating methods below.
    enum Phase {
        /// Nothing to serve: a load is due from `retryAt` (at once, or after a pause when Redis
        /// failed; `failure` is what requests waiting meanwhile are told).
        case unloaded(retryAt: ContinuousClock.Instant, failure: (any Error)?)
        /// The state as of its cursor, loaded when the hub had lost track `marker` times.
        case following(SnapshotState, marker: Int)

        /// The state, when there is one to serve.
        var state: SnapshotState? {
            if case .following(let state, _) = self { state } else { nil }
        }

        /// A load completed.
        mutating func loaded(_ state: SnapshotState, marker: Int) {
            self = .following(state, marker: marker)
        }

        /// What the state holds can no longer be vouched for (the hub lost track since it was
        /// loaded, the log no longer holds what comes after its cursor, too many unrevoked
        /// `jti`s): load again at once. A load pending after a failure is brought forward.
        mutating func mustLoad() {
            self = .unloaded(retryAt: .now, failure: nil)
        }

        /// Something failed while the state changed: whatever it missed must not be served.
        /// After Redis failed, the next load waits `pause`.
        mutating func failed(_ error: any Error, pause: Duration?) {
            self = .unloaded(retryAt: .now + (pause ?? .zero), failure: pause == nil ? nil : error)
        }

        /// Redis just answered a request: a load pending after a failure may run now.
        mutating func retryNow() {
            if case .unloaded(_, let failure) = self { self = .unloaded(retryAt: .now, failure: failure) }
        }

        /// Takes the state out to change it in place (the phase holds no other reference), or
        /// nil when there is none. Put it back with ``loaded(_:marker:)``; a throw in between
        /// leaves the phase unloaded.
        mutating func take() -> (state: SnapshotState, marker: Int)? {
            guard case .following(let state, let marker) = self else { return nil }
            self = .unloaded(retryAt: .now, failure: nil)
            return (state, marker)
        }
    }

    /// A request waiting for the state to reach a position of the log.
    private struct Waiter {
        var position: EventCursor
        var continuation: CheckedContinuation<SnapshotState, any Error>
        /// Fails the request after ``SnapshotKeeper/applyTimeout``, whatever the keeper is busy
        /// with (a long load suspends between pages, and the timer gets its turn then).
        var timer: Task<Void, Never>
    }

    private let store: RevocationStore
    private let falsePositiveRate: Double
    private let maximumAge: Duration
    private let metrics: Metrics
    private let logger: Logger
    private let inputs: AsyncStream<Input>
    private let continuation: AsyncStream<Input>.Continuation
    /// How many times the hub lost track of the log (every stream ended): a state loaded before
    /// the last time must be loaded again. Counted, so that no report is lost however busy the
    /// keeper is.
    private let lostTrack = Atomic(0)
    /// Set when a page of events was dropped: the keeper reads the log up to its end.
    private let dropped = Atomic(false)
    /// Whether a tick waits in the queue: one is enough, so that during a long load ticks do
    /// not push out pages of events.
    private let tickQueued = Atomic(false)

    private var phase = Phase.unloaded(retryAt: .now, failure: nil)
    private var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
    private var waiters: [Int: Waiter] = [:]
    private var nextWaiter = 0
    /// Set once `run` has returned: nothing would resume a request from then on.
    private var stopped = false
    private var current: Built?
    /// Counts the state's changes (events, loads, rebuilds): a built snapshot of the same
    /// generation needs no new encoding.
    private var generation = 0
    private var encoding: Task<Built, any Error>?

    public init(store: RevocationStore, falsePositiveRate: Double, maximumAge: Duration, metrics: Metrics, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.falsePositiveRate = falsePositiveRate
        self.maximumAge = maximumAge
        self.logger = logger
        // A page the keeper has no room for is dropped; the next one shows the gap, which the
        // keeper reads from the log (`dropped` covers the last one).
        (inputs, continuation) = AsyncStream.makeStream(of: Input.self, bufferingPolicy: .bufferingNewest(64))
    }

    // MARK: - From the hub

    /// The hub read `events` after `from`.
    nonisolated func offer(from: EventCursor, _ events: [StoreEvent]) {
        yield(.events(from: from, events))
    }

    /// The hub can no longer vouch for what it read (it skipped a gap, or the log changed under
    /// it): load everything again.
    nonisolated func hubLostTrack() {
        lostTrack.add(1, ordering: .releasing)
        tick()
    }

    /// Queues a tick, unless one is queued already.
    private nonisolated func tick() {
        guard !tickQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        yield(.tick)
    }

    /// Queues an input; the queue keeps the newest, and notes what it pushed out: a page of
    /// events (read from the log at the next tick) or the queued tick (another may be queued).
    private nonisolated func yield(_ input: Input) {
        guard case .dropped(let lost) = continuation.yield(input) else { return }
        if case .tick = lost { tickQueued.store(false, ordering: .releasing) } else { dropped.store(true, ordering: .releasing) }
    }

    // MARK: - Running

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    self.tick()
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        self.tick()
                    }
                }
                for await input in self.inputs {
                    if Task.isCancelled { break }
                    await self.handle(input)
                }
                group.cancelAll()
            }
        }
        continuation.finish()
        stopped = true
        for waiter in waiters.values {
            waiter.timer.cancel()
            waiter.continuation.resume(throwing: StoreError(.unavailable, "the snapshot keeper has stopped"))
        }
        waiters = [:]
    }

    private func handle(_ input: Input) async {
        if case .tick = input { tickQueued.store(false, ordering: .releasing) }
        // Whatever happened, requests waiting for a position it reached hear of it.
        defer { resumeWaiters() }
        do {
            if case .following(let state, let marker) = phase, marker != lostTrack.load(ordering: .acquiring) || state.needsLoad {
                phase.mustLoad()
            }
            if case .unloaded(let retryAt, _) = phase {
                guard ContinuousClock.now >= retryAt else { return }
                try await load()
            }
            switch input {
            case .events(let from, let events):
                try await catchUp(through: from)
                try apply(events)
            case .tick:
                if dropped.exchange(false, ordering: .acquiring) {
                    try await catchUp(through: store.lastEventCursor())
                } else if let wanted = waiters.values.map(\.position).max() {
                    // Requests wait for a position the hub has not brought yet: read up to it.
                    try await catchUp(through: wanted)
                }
                try await rebuildIfDue()
                if let state = phase.state { metrics.revocations.record(state.live(now: store.currentTime)) }
            }
        } catch {
            // Whatever the state missed, it must not be served: load again (after a pause when
            // Redis is what failed).
            if phase.state != nil { logger.warning("the snapshot lost step with the event log; loading it again", metadata: ["error": "\(error)"]) }
            let fromRedis = !(error is SnapshotState.UnreadableEvent) && !(error is LostStep)
            phase.failed(error, pause: fromRedis ? backoff.next() : nil)
        }
    }

    /// The log no longer holds what the state needs next.
    private struct LostStep: Error {}

    /// Loads everything from Redis: the log's position first, then one scan, so whatever
    /// changes during the scan comes after the position and is applied from the events.
    private func load() async throws {
        let marker = lostTrack.load(ordering: .acquiring)
        let started = ContinuousClock.now
        var loaded = SnapshotState(cursor: try await store.lastEventCursor(), falsePositiveRate: falsePositiveRate, policy: store.policy)
        try await store.scanSnapshotRecords { page in
            for (jti, expiresAt) in page.revocations {
                // Whole seconds, rounded up: never before Redis lets the key go.
                let seconds = expiresAt.map { $0 / 1000 + ($0 % 1000 > 0 ? 1 : 0) }
                loaded.hold(hash: jti.withUnsafeBytes { XXH64.hash($0) }, expiresAt: seconds)
            }
            for cutoff in page.cutoffs { loaded.setCutoff(cutoff) }
            for kid in page.keyBlocks { loaded.blockKey(kid) }
        }
        let now = store.currentTime
        loaded = try await Self.offload { [loaded] in loaded.rebuilt(now: now) }
        phase.loaded(loaded, marker: marker)
        generation += 1
        backoff.reset()
        metrics.loads.increment()
        logger.info(
            "snapshot loaded from Redis",
            metadata: [
                "revocations": "\(loaded.entries)", "cursor": "\(loaded.cursor)",
                "milliseconds": "\(Int((ContinuousClock.now - started) / .milliseconds(1)))",
            ])
    }

    /// Reads from the log whatever lies between the state's cursor and `position`.
    private func catchUp(through position: EventCursor) async throws {
        while let cursor = phase.state?.cursor, cursor < position {
            switch try await store.events(after: cursor, count: EventHub.pageSize) {
            case .gone: throw LostStep()
            case .events(let page):
                if page.isEmpty { return }
                try apply(page)
            }
        }
    }

    /// Applies the events after the state's cursor, in place.
    /// A throw leaves the phase unloaded, for ``handle(_:)`` to note why.
    private func apply(_ events: [StoreEvent]) throws {
        // Bound straight from the value `take()` returns: the state's only reference, so it
        // changes in place (a copy would copy every hash held, milliseconds at a million).
        guard !events.isEmpty, case (var state, let marker)? = phase.take() else { return }
        for event in events {
            guard let id = EventCursor(event.id) else { throw SnapshotState.UnreadableEvent(type: event.type, id: event.id) }
            if id <= state.cursor { continue }
            try state.apply(event)
        }
        phase.loaded(state, marker: marker)
        generation += 1
    }

    private func rebuildIfDue() async throws {
        let now = store.currentTime
        guard case .following(let held, let marker) = phase, held.needsRebuild(now: now) else { return }
        let before = generation
        let rebuilt = try await Self.offload { held.rebuilt(now: now) }
        // Only this task applies events; a request may meanwhile have found that the state must
        // be loaded again, and that stands.
        guard generation == before, case .following = phase else { return }
        phase.loaded(rebuilt, marker: marker)
        generation += 1
        metrics.rebuilds.increment()
    }

    /// CPU work that grows with the number of revocations, on NIO's thread pool: never on an
    /// event loop, and not holding a thread of Swift's cooperative pool.
    private static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    // MARK: - Serving

    /// The snapshot to serve: it holds every change acknowledged before the request (the keeper
    /// first applies the log up to its end as the request found it), unless one younger than
    /// `maximumAge` was built, whose cursor the log still holds.
    public func snapshot() async throws -> Built {
        let log = try await store.eventLogState()
        if let current, ContinuousClock.now - current.builtAt < maximumAge, log.holdsEverything(after: current.cursor) {
            return current
        }
        if let encoding { return try await encoding.value }
        let snapshot: Snapshot
        let cursor: EventCursor
        do {
            // Held only in this scope: a reference kept across the awaits below would make the
            // keeper copy the whole state when it next applies an event.
            let state = try await caughtUp(with: log)
            if let current, current.generation == generation, log.holdsEverything(after: current.cursor) { return current }
            snapshot = state.snapshot(now: store.currentTime, claimOrder: store.cutoffClaims)
            cursor = state.cursor
        }
        let generation = self.generation
        let task = Task { () async throws -> Built in
            let bytes = try await Self.offload { ByteBuffer(bytes: snapshot.encoded()) }
            return Built(bytes: bytes, generation: generation, cursor: cursor, builtAt: .now)
        }
        encoding = task
        defer { encoding = nil }
        let built = try await task.value
        // A snapshot always resumes: the log must still hold its cursor once it is built.
        if try await store.isGone(after: built.cursor) {
            throw StoreError(.unavailable, "the event log was trimmed past the snapshot while it was encoded")
        }
        current = built
        return built
    }

    /// The state once it holds every event of `log` (as a request read it). Events after the
    /// state's cursor that were removed before the hub read them (an operator's trim, say, with
    /// nothing written since for the hub to notice) make it load again first.
    private func caughtUp(with log: EventLogState) async throws -> SnapshotState {
        if let state = phase.state, !log.holdsEverything(after: state.cursor) { phase.mustLoad() }
        return try await waitUntilApplied(through: log.lastGenerated)
    }

    /// Waits until the state holds every event up to `position`, and returns it. Redis answered
    /// the request just before, so a load that failed is tried again at once; a state that is
    /// still being loaded, or a log that cannot be followed, makes the wait fail after
    /// ``applyTimeout`` (503). The keeper resumes the wait when its state gets there.
    private func waitUntilApplied(through position: EventCursor) async throws -> SnapshotState {
        if let state = phase.state, state.cursor >= position, !isStale(state) { return state }
        if stopped { throw StoreError(.unavailable, "the snapshot keeper has stopped") }
        // Ask the keeper to look now rather than at its next tick.
        phase.retryNow()
        tick()
        let id = nextWaiter
        nextWaiter += 1
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled { return continuation.resume(throwing: CancellationError()) }
                let timer = Task {
                    try? await Task.sleep(for: Self.applyTimeout)
                    if !Task.isCancelled { self.timeOut(id) }
                }
                waiters[id] = Waiter(position: position, continuation: continuation, timer: timer)
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    /// Whether the hub lost track of the log since the state was loaded (the keeper has not
    /// handled it yet).
    private func isStale(_ state: SnapshotState) -> Bool {
        guard case .following(_, let marker) = phase else { return true }
        return marker != lostTrack.load(ordering: .acquiring)
    }

    /// Resumes the requests whose position the state has reached.
    private func resumeWaiters() {
        guard !waiters.isEmpty, let state = phase.state, !isStale(state) else { return }
        for (id, waiter) in waiters where waiter.position <= state.cursor {
            waiters[id] = nil
            waiter.timer.cancel()
            waiter.continuation.resume(returning: state)
        }
    }

    /// A request waited ``applyTimeout``: it fails with what the last load failed with, else 503.
    private func timeOut(_ id: Int) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        var failure: (any Error)?
        if case .unloaded(_, let error) = phase { failure = error }
        waiter.continuation.resume(throwing: failure ?? StoreError(.unavailable, "the snapshot has not caught up with the event log"))
    }

    private func cancelWaiter(_ id: Int) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        waiter.timer.cancel()
        waiter.continuation.resume(throwing: CancellationError())
    }

    /// How long a request waits for the keeper to reach the log's end: a load of ten million
    /// revocations takes longer than that, and its first requests answer 503 with a retry.
    static let applyTimeout: Duration = .seconds(30)

    /// What `GET /v1/status` counts: live revocations and cutoffs now, and the position.
    public func counts() async throws -> (revocations: Int, cutoffs: Int, cursor: EventCursor) {
        let state = try await caughtUp(with: try await store.eventLogState())
        let now = store.currentTime
        return (state.live(now: now), state.liveCutoffs(now: now).count, state.cursor)
    }
}
