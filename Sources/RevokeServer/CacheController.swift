import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RevokeCore
import RevokeHTTP
import RevokeSnapshot
import RevokeStore
import ServiceLifecycle

/// `GET /v1/snapshot` and `GET /v1/events` (role verifier): what a caching client loads, then
/// follows.
struct CacheController: Sendable {
    let snapshots: SnapshotBuilder
    let hub: EventHub

    func addRoutes(to router: Router<RevokeRequestContext>, keyring: APIKeyring) {
        let group = router.group().add(middleware: AuthorizationMiddleware(keyring: keyring, required: .verifier))
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
            let stream: EventHub.Subscription
            do {
                stream = try await hub.subscribe(since: since)
            } catch EventHub.SubscribeError.gone {
                throw APIError(.gone, code: "gone", message: "events after \(since!) were trimmed from the log; load /v1/snapshot again")
            } catch EventHub.SubscribeError.unavailable {
                throw APIError.storeUnavailable("the event log cannot be read right now")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
                body: .init { writer in
                    try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                    // Ends when the hub ends the stream, when the client goes, or when the
                    // server shuts down (so a drain never waits on an open stream).
                    try await withGracefulShutdownHandler {
                        for await item in stream.items {
                            switch item {
                            case .heartbeat: try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                            case .event(let event):
                                var buffer = ByteBuffer(string: "event: \(event.type)\nid: \(event.id)\ndata: ")
                                buffer.writeBytes(event.data)
                                buffer.writeString("\n\n")
                                try await writer.write(buffer)
                            }
                        }
                    } onGracefulShutdown: {
                        stream.end()
                    }
                    try await writer.finish(nil)
                })
        }
    }
}
