import NIOCore
import RevokeCore
import RevokeStore
import Synchronization

/// One event of the log, rendered once as `text/event-stream` for every stream that carries it.
struct RenderedEvent: Sendable {
    /// Its position in the log.
    let cursor: EventCursor
    /// `event:`, `id:`, `data:` and the blank line; shared by every stream, never copied.
    let bytes: ByteBuffer

    init?(_ event: StoreEvent) {
        guard let cursor = EventCursor(event.id) else { return nil }
        self.cursor = cursor
        var buffer = ByteBuffer()
        Self.render(event, into: &buffer)
        self.bytes = buffer
    }

    /// One event as `text/event-stream`: `event:`, `id:` (its cursor), `data:` (the record).
    static func render(_ event: StoreEvent, into buffer: inout ByteBuffer) {
        buffer.writeString("event: \(event.type)\nid: \(event.id)\ndata: ")
        buffer.writeBytes(event.data)
        buffer.writeString("\n\n")
    }
}

/// What one `GET /v1/events` stream carries.
enum StreamItem: Sendable {
    case event(RenderedEvent)
    case heartbeat

    static let heartbeatBytes = ByteBuffer(string: ": heartbeat\n\n")

    /// What it costs to hold until it is written: its bytes on the wire.
    var size: Int {
        switch self {
        case .heartbeat: Self.heartbeatBytes.readableBytes
        case .event(let event): event.bytes.readableBytes
        }
    }
}

/// The items of one stream not yet written, bounded in bytes: one producer (the hub) pushes
/// batches, one consumer (the response writer) takes everything there is at once, so a stream
/// costs one wakeup and one write per batch, not per event. What the writer took counts until
/// it says the write completed (``written(_:)``): a reader that does not read holds the queue
/// and the write in progress within the bound, and NIO's own write buffer beside it. A push
/// past the bound empties the queue, frees what it held and refuses everything after: the
/// stream is over, and its client resumes from the last `id` it got.
final class EventQueue: Sendable {
    private struct State {
        var items: [StreamItem] = []
        /// Queued and being written.
        var bytes = 0
        var finished = false
        var waiter: CheckedContinuation<[StreamItem]?, Never>?
    }

    /// The most bytes it holds (`REVOKE_STREAM_BUFFER_BYTES`).
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Adds items; false when the queue is over (finished, or this push overflowed it).
    func push(_ items: [StreamItem]) -> Bool {
        if items.isEmpty { return true }
        let size = items.reduce(0) { $0 + $1.size }
        let waiter = state.withLock { state -> CheckedContinuation<[StreamItem]?, Never>?? in
            if state.finished { return .none }
            // Held until the writer says it wrote them, whether queued or handed over now: what
            // comes while a batch is being written meets the bound with that batch counted.
            state.bytes += size
            if let waiter = state.waiter {
                // The writer waits, so the queue is empty: hand the batch over as it is.
                state.waiter = nil
                return .some(waiter)
            }
            if state.bytes > limit {
                state.items = []
                state.bytes = 0
                state.finished = true
                return .none
            }
            state.items += items
            return .some(nil)
        }
        guard let waiter else { return false }
        waiter?.resume(returning: items)
        return true
    }

    /// Whether the consumer waits for items (tests wait for it).
    var hasWaiter: Bool { state.withLock { $0.waiter != nil } }

    /// The consumer wrote `bytes` of what it took: they no longer count against the bound.
    func written(_ bytes: Int) {
        state.withLock { $0.bytes = max(0, $0.bytes - bytes) }
    }

    /// Ends the queue: the consumer gets what is still held, then nil.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<[StreamItem]?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Everything queued, waiting for something if nothing is; nil once the queue is over and
    /// empty, or when the waiting task is cancelled.
    func next() async -> [StreamItem]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[StreamItem]?, Never>) in
                // Resumed exactly once: here when items (or the end) are ready, else by the
                // next push or by finish(), which take the waiter out under the lock first.
                let ready = state.withLock { state -> [StreamItem]?? in
                    if !state.items.isEmpty {
                        // Their bytes still count, until written(_:).
                        defer { state.items = [] }
                        return .some(state.items)
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
