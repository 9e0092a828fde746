import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Redis
import RevokeCore
import RevokeHTTP
import RevokeSnapshot
import RevokeStore
import ServiceLifecycle

/// `GET /v1/snapshot` and `GET /v1/events` (role verifier): what a caching client loads, then
/// follows.
struct CacheController: Sendable {
    let snapshots: SnapshotKeeper
    let hub: EventHub
    let store: RevocationStore
    /// What replays read the log through: never the checks' connection.
    let replays: Replays
    /// `revoke_event_delivery_seconds`: per write to a stream, the age of its oldest event.
    let delivery: DeliveryTimes

    func addRoutes(verifier group: some RouterMethods<RevokeRequestContext>) {
        group.get("/v1/snapshot") { _, _ -> Response in
            let built = try await snapshots.snapshot()
            return Response(
                status: .ok,
                headers: [
                    .contentType: "application/vnd.revoke.snapshot", .cacheControl: "no-store",
                    HTTPField.Name("Revoke-Cursor")!: built.cursor.description,
                    HTTPField.Name("Revoke-Snapshot-Version")!: String(Snapshot.version),
                ],
                body: .init(byteBuffer: built.bytes))
        }
        group.get("/v1/events") { request, context -> Response in
            var since: EventCursor?
            if let text = request.uri.queryParameters.get("since") {
                guard let cursor = EventCursor(text) else {
                    throw APIError.invalidRequest("since must be a cursor as Revoke-Cursor or an event id gives it (<milliseconds>-<sequence>)")
                }
                since = cursor
            }
            // Without since, the stream starts where the log is as the request arrives: a change
            // acknowledged before it is not on it, even one the hub has not read yet.
            let start: EventCursor
            if let since { start = since } else { start = try await store.lastEventCursor() }
            let channel = context.channel
            // The kernel would otherwise buffer megabytes for a reader that does not read (its
            // send buffer grows by itself), out of sight of the stream's bound: keep it small, so
            // the backlog stays in the stream's queue, where REVOKE_STREAM_BUFFER_BYTES ends it.
            try? await channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: Self.socketSendBuffer).get()
            let subscription: EventHub.Subscription
            do {
                let ip = channel.remoteAddress?.ipAddress ?? "-"
                let follower = EventHub.Follower(
                    name: context.actor ?? request.headers[.userAgent] ?? "-", address: Self.describe(channel.remoteAddress),
                    client: context.actor.map { "\($0)@\(ip)" } ?? ip, connectedAt: store.currentTime)
                subscription = try hub.subscribe(since: start, follower: follower) { channel.close(promise: nil) }
            } catch EventHub.SubscribeError.unavailable {
                throw APIError.storeUnavailable("the event log cannot be read right now")
            } catch EventHub.SubscribeError.clientLimit {
                throw APIError(
                    .tooManyRequests, code: "too_many_requests",
                    message: "this client holds as many event streams as one client may (REVOKE_MAX_STREAMS_PER_CLIENT); close one or retry later",
                    headers: [.retryAfter: "5"])
            } catch EventHub.SubscribeError.overloaded {
                throw APIError.unavailable(
                    code: "overloaded", message: "this instance has as many event streams open as it allows; retry later",
                    retryAfterSeconds: 5)
            }
            // Whatever happens to the request from here (a client that goes while its replay
            // waits for its turn never reaches the body), its stream ends with the connection.
            channel.closeFuture.whenComplete { _ in hub.remove(subscription.id) }
            // Subscribed first, then checked: whatever the log loses from now on is caught by
            // the replay's own checks or by the hub's.
            if let since {
                do {
                    if try await replays.isGone(after: since) {
                        throw APIError(.gone, code: "gone", message: "events after \(since) are no longer in the log; load /v1/snapshot again")
                    }
                } catch {
                    hub.remove(subscription.id)
                    throw error
                }
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
                body: .init { writer in
                    // Ends when the hub ends the stream, when the client goes, or when the
                    // server shuts down (so a drain never waits on an open stream).
                    do {
                        try await withGracefulShutdownHandler {
                            if subscription.needsReplay, try await !replay(subscription, into: &writer) {
                                return
                            }
                            // Live from here: the first heartbeat says the stream has caught up.
                            guard subscription.goLive() else { return }
                            // Whatever has gathered goes out in one write: one wakeup per batch.
                            while let items = await subscription.next() {
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
                                try await writer.write(buffer)
                                subscription.written(size, through: last)
                                // How long its oldest event waited since Redis acknowledged it.
                                if let first { delivery.record(seconds: Date().timeIntervalSince1970 - Double(first.milliseconds) / 1000) }
                            }
                        } onGracefulShutdown: {
                            hub.remove(subscription.id)
                        }
                    } catch {
                        hub.remove(subscription.id)
                        throw error
                    }
                    hub.remove(subscription.id)
                    try await writer.finish(nil)
                })
        }
    }

    /// `host:port` (`[v6]:port`), for people.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "-" }
        return RedisAddress(host: ip, port: port).description
    }

    /// Writes the events in `(since, replayThrough]` from the log, a page at a time so a replay
    /// holds one page, not the log. False when the log lost events after what was written (a
    /// trim during the replay): the stream must end there, without a gap.
    private func replay(_ subscription: EventHub.Subscription, into writer: inout any ResponseBodyWriter) async throws -> Bool {
        guard var cursor = subscription.since else { return true }
        while cursor < subscription.replayThrough {
            // The page follows `cursor` without a gap only if nothing after `cursor` was removed
            // before it was read; whatever was removed since is later than the page.
            let (page, complete) = try await replays.page(after: cursor, count: Replays.pageSize)
            if !complete { return false }
            if page.isEmpty { return true }
            var buffer = ByteBuffer()
            for event in page {
                guard let id = EventCursor(event.id), id <= subscription.replayThrough else { break }
                Self.write(event, into: &buffer)
                cursor = id
            }
            try await replays.pace(buffer.readableBytes, for: subscription.follower.client)
            try await writer.write(buffer)
            subscription.written(0, through: cursor)
            if let last = page.last.flatMap({ EventCursor($0.id) }), last > subscription.replayThrough { return true }
        }
        return true
    }

    /// The send buffer of an event stream's socket (Linux doubles it): ample for a reader that
    /// keeps up on any network, small beside the stream's own bound.
    static let socketSendBuffer: SocketOptionValue = 32 * 1024

    /// One event as `text/event-stream`: `event:`, `id:` (its cursor), `data:` (the record).
    static func write(_ event: StoreEvent, into buffer: inout ByteBuffer) {
        buffer.writeString("event: \(event.type)\nid: \(event.id)\ndata: ")
        buffer.writeBytes(event.data)
        buffer.writeString("\n\n")
    }
}
