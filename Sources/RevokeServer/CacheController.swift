import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RevokeCore
import RevokeHTTP
import RevokeSnapshot
import RevokeStore
import RevokeSync
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
                subscription = try await hub.subscribe(since: since, follower: follower) { channel.close(promise: nil) }
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
                            try await subscription.stream(replays: replays) { oldest in
                                // How long its oldest event waited since Redis acknowledged it.
                                delivery.record(seconds: Date().timeIntervalSince1970 - Double(oldest.milliseconds) / 1000)
                            } write: { buffer in
                                try await writer.write(buffer)
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
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// The send buffer of an event stream's socket (Linux doubles it): ample for a reader that
    /// keeps up on any network, small beside the stream's own bound.
    static let socketSendBuffer: SocketOptionValue = 32 * 1024
}
