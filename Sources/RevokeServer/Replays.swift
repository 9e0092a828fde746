import NIOCore
import RevokeStore
import Synchronization

/// Where `GET /v1/events?since=` streams read what they replay from the log: a Redis
/// connection of their own, never the one that answers checks, and only `concurrency` pages
/// in flight at once whatever the number of streams. Redis runs one command at a time, so
/// without the bound a storm of full replays (each `XRANGE` page is ~100 µs of Redis' time)
/// would queue many milliseconds of work ahead of every check; with it, a check waits behind
/// at most `concurrency` pages. Replays then take turns: a storm is slower to replay, never
/// a reason for checks to time out.
struct Replays: Sendable {
    /// Events a replay reads at a time (the keeper that follows the log reads pages of
    /// ``EventHub/pageSize``).
    static let pageSize = 500

    /// The store, read through the replays' own connection.
    let store: RevocationStore
    private let gate: Gate

    init(store: RevocationStore, concurrency: Int = 2) {
        self.store = store
        self.gate = Gate(permits: concurrency)
    }

    /// Whether anything after `cursor` has left the log (then the stream must not start).
    func isGone(after cursor: EventCursor) async throws -> Bool {
        try await gate.run { try await store.isGone(after: cursor) }
    }

    /// The events after `cursor` (at most `count`), and whether the log still held everything
    /// after `cursor` once they were read: a page is only written when nothing was lost before it.
    func page(after cursor: EventCursor, count: Int) async throws -> (events: [StoreEvent], complete: Bool) {
        try await gate.run {
            let events = try await store.events(after: cursor, count: count)
            // Whatever was removed after the read is later than the page.
            return (events, try await !store.isGone(after: cursor))
        }
    }

    /// A counting semaphore for tasks: at most `permits` bodies run at once, the rest wait in
    /// the order they came.
    final class Gate: Sendable {
        private struct State {
            var available: Int
            var waiting = CircularBuffer<CheckedContinuation<Void, Never>>()
        }
        private let state: Mutex<State>

        init(permits: Int) {
            state = Mutex(State(available: max(permits, 1)))
        }

        func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
            await acquire()
            defer { release() }
            return try await body()
        }

        private func acquire() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let granted = state.withLock { state -> Bool in
                    if state.available > 0 {
                        state.available -= 1
                        return true
                    }
                    state.waiting.append(continuation)
                    return false
                }
                if granted { continuation.resume() }
            }
        }

        private func release() {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiting.isEmpty {
                    state.available += 1
                    return nil
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
    }
}
