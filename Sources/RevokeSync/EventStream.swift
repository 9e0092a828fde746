import NIOCore
import RevokeCore
import RevokeStore

extension EventHub.Subscription {
    /// Writes the stream until the hub ends it: the replay of `(since, replayThrough]` from the
    /// log first when the stream resumes from further back than the hub, then the live events
    /// as the hub hands them over, whatever has gathered in one write.
    /// - Parameters:
    ///   - replays: Where the replay reads the log.
    ///   - delivered: Hears, after each live write, the cursor of its oldest event.
    ///   - write: Writes bytes to the client.
    public func stream(
        replays: Replays, delivered: (EventCursor) -> Void, write: (ByteBuffer) async throws -> Void
    ) async throws {
        if needsReplay, try await !replay(from: replays, write: write) { return }
        // Live from here: the first heartbeat says the stream has caught up.
        guard goLive() else { return }
        while let items = await next() {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(items.reduce(0) { $0 + $1.size })
            var first: EventCursor?
            var last: EventCursor?
            for item in items {
                switch item {
                case .heartbeat: buffer.writeImmutableBuffer(StreamItem.heartbeatBytes)
                case .event(let event):
                    buffer.writeImmutableBuffer(event.bytes)
                    first = first ?? event.cursor
                    last = event.cursor
                }
            }
            let size = buffer.readableBytes
            try await write(buffer)
            written(size, through: last)
            if let first { delivered(first) }
        }
    }

    /// Writes the events in `(since, replayThrough]` from the log, a page at a time so a replay
    /// holds one page, not the log. False when the log lost events after what was written (a
    /// trim during the replay): the stream must end there, without a gap.
    private func replay(from replays: Replays, write: (ByteBuffer) async throws -> Void) async throws -> Bool {
        var cursor = since
        while cursor < replayThrough {
            guard case .events(let page) = try await replays.events(after: cursor, count: Replays.pageSize) else { return false }
            if page.isEmpty { return true }
            var buffer = ByteBuffer()
            for event in page {
                guard let id = EventCursor(event.id), id <= replayThrough else { break }
                RenderedEvent.render(event, into: &buffer)
                cursor = id
            }
            try await replays.pace(buffer.readableBytes, for: follower.client)
            try await write(buffer)
            written(0, through: cursor)
            if let last = page.last.flatMap({ EventCursor($0.id) }), last > replayThrough { return true }
        }
        return true
    }
}
