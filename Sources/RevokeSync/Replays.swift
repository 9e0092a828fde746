import NIOCore
import RevokeCore
import RevokeStore
import Synchronization

/// Where `GET /v1/events?since=` streams read what they replay from the log: a Redis
/// connection of their own, never the one that answers checks, and only `concurrency` pages
/// in flight at once whatever the number of streams. Redis runs one command at a time, so
/// without the bound a storm of full replays (each `XRANGE` page is ~100 µs of Redis' time)
/// would queue many milliseconds of work ahead of every check; with it, a check waits behind
/// at most `concurrency` pages.
///
/// And the replays of one client (a verifier key's name with its address, or the address: the
/// client `REVOKE_MAX_STREAMS_PER_CLIENT` counts) write at most `bytesPerSecond`
/// (`REVOKE_REPLAY_BYTES_PER_SECOND`) together: reading, rendering and writing a page is work on
/// the event loops that answer checks, and a request for a full replay costs its sender a few
/// bytes and the server megabytes. Each page takes its turn on its client's timeline: it waits
/// until that client's pages before it have had their share of the rate. A storm from one
/// client is slower to replay, never a reason for checks to time out; a verifier resuming from
/// a recent cursor (a few kilobytes), the usual case, does not wait.
public struct Replays: Sendable {
    /// Events a replay reads at a time (the keeper that follows the log reads pages of
    /// ``EventHub/pageSize``).
    public static let pageSize = 500

    /// The store, read through the replays' own connection.
    let store: RevocationStore
    private let gate: Gate

    private let pacer: Pacer

    public init(store: RevocationStore, concurrency: Int = 2, bytesPerSecond: Int = 1 << 20) {
        self.store = store
        self.gate = Gate(permits: concurrency)
        self.pacer = Pacer(bytesPerSecond: bytesPerSecond)
    }

    /// Waits for `bytes` of `client`'s share of the rate before they are written.
    func pace(_ bytes: Int, for client: String) async throws {
        let wait = pacer.reserve(bytes, for: client)
        if wait > .zero { try await Task.sleep(for: wait) }
    }

    /// A rate per client, each on a timeline of its own (the generic cell rate algorithm): a
    /// reservation starts when the client's ones before it have had their time, and says how
    /// long its caller waits for that.
    final class Pacer: Sendable {
        private struct Timelines {
            /// When each client's timeline is free again, on the monotonic clock.
            var free: [String: ContinuousClock.Instant] = [:]
            /// Past this many clients, those whose timeline is free again are forgotten.
            var prune = 1024
        }
        private let secondsPerByte: Double
        private let timelines = Mutex(Timelines())

        init(bytesPerSecond: Int) {
            secondsPerByte = 1 / Double(max(bytesPerSecond, 1))
        }

        func reserve(_ bytes: Int, for client: String) -> Duration {
            let now = ContinuousClock.now
            return timelines.withLock { timelines in
                if timelines.free.count > timelines.prune {
                    timelines.free = timelines.free.filter { $0.value > now }
                    timelines.prune = max(1024, 2 * timelines.free.count)
                }
                let start = max(timelines.free[client] ?? now, now)
                timelines.free[client] = start + .seconds(Double(bytes) * secondsPerByte)
                return start - now
            }
        }
    }

    /// Whether anything after `cursor` has left the log (then the stream must not start).
    public func isGone(after cursor: EventCursor) async throws -> Bool {
        try await gate.run { try await store.isGone(after: cursor) }
    }

    /// The events after `cursor` (at most `count`), proven to follow it without a gap
    /// (``RevocationStore/events(after:count:)``).
    func events(after cursor: EventCursor, count: Int) async throws -> EventPage {
        try await gate.run { try await store.events(after: cursor, count: count) }
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
