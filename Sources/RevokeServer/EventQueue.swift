import NIOCore
import RevokeStore
import Synchronization

/// What one `GET /v1/events` stream carries.
enum StreamItem: Sendable {
    case event(StoreEvent)
    case heartbeat

    /// About what it costs to hold until it is written: its bytes on the wire.
    var size: Int {
        switch self {
        case .heartbeat: 14
        case .event(let event): event.data.count + event.id.utf8.count + event.type.utf8.count + 20
        }
    }
}

/// The items of one stream not yet handed to its writer, bounded in bytes: one producer (the
/// hub) pushes, one consumer (the response writer) takes. A push past the bound empties the
/// queue, frees what it held and refuses everything after: the stream is over, and its client
/// resumes from the last `id` it got.
final class EventQueue: Sendable {
    private struct State {
        var items = CircularBuffer<StreamItem>()
        var bytes = 0
        var finished = false
        var waiter: CheckedContinuation<StreamItem?, Never>?
    }

    /// The most bytes it holds (`REVOKE_STREAM_BUFFER_BYTES`).
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Adds an item; false when the queue is over (finished, or this push overflowed it).
    func push(_ item: StreamItem) -> Bool {
        let (waiter, accepted) = state.withLock { state -> (CheckedContinuation<StreamItem?, Never>?, Bool) in
            if state.finished { return (nil, false) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, true)
            }
            state.bytes += item.size
            if state.bytes > limit {
                state.items.removeAll()
                state.bytes = 0
                state.finished = true
                return (nil, false)
            }
            state.items.append(item)
            return (nil, true)
        }
        waiter?.resume(returning: item)
        return accepted
    }

    /// Ends the queue: the consumer gets what is still held, then nil.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<StreamItem?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next item, waiting for one; nil once the queue is over and empty, or when the
    /// waiting task is cancelled.
    func next() async -> StreamItem? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<StreamItem?, Never>) in
                // Resumed exactly once: here when an item (or the end) is ready, else by the
                // next push or by finish(), which take the waiter out under the lock first.
                let ready = state.withLock { state -> StreamItem?? in
                    if let item = state.items.popFirst() {
                        state.bytes -= item.size
                        return .some(item)
                    }
                    if state.finished { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            finish()
        }
    }
}
