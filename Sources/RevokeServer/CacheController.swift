import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RevokeCore
import RevokeSnapshot
import RevokeStore
import ServiceLifecycle

/// Builds the snapshot `GET /v1/snapshot` serves and keeps it for `maximumAge`, so a fleet of
/// verifiers starting at once costs one scan of Redis, not one each. Requests that arrive
/// while it is being built wait for that build.
actor SnapshotBuilder {
    struct Built: Sendable {
        var bytes: ByteBuffer
        var cursor: EventCursor
        var builtAt: ContinuousClock.Instant
        /// Live revoked `jti`s and live cutoffs in it.
        var revocations: Int
        var cutoffs: Int
    }

    private let store: RevocationStore
    private let falsePositiveRate: Double
    private let maximumAge: Duration
    private var current: Built?
    private var building: Task<Built, any Error>?

    init(store: RevocationStore, falsePositiveRate: Double, maximumAge: Duration) {
        self.store = store
        self.falsePositiveRate = falsePositiveRate
        self.maximumAge = maximumAge
    }

    func snapshot() async throws -> Built {
        if let current, ContinuousClock.now - current.builtAt < maximumAge { return current }
        if let building { return try await building.value }
        let task = Task { [store, falsePositiveRate] in try await Self.build(store: store, falsePositiveRate: falsePositiveRate) }
        building = task
        defer { building = nil }
        let built = try await task.value
        current = built
        return built
    }

    /// The cursor is read before the scan: whatever changes during the scan comes after it, so
    /// a client that replays the events after the cursor misses nothing.
    static func build(store: RevocationStore, falsePositiveRate: Double) async throws -> Built {
        let cursor = try await store.lastEventCursor()
        var hashes: [UInt64] = []
        try await store.forEachRevokedJTI { jtis in
            for jti in jtis { hashes.append(XXH64.hash(jti)) }
        }
        let now = store.currentTime
        let cutoffs = try await store.allCutoffs().filter { $0.expiresAt > now }.map {
            Snapshot.Cutoff(claim: $0.claim, value: $0.value, before: $0.before, expiresAt: $0.expiresAt)
        }
        // Room for a quarter more, which clients add from the events until their next snapshot.
        let filter = BloomFilter(capacity: hashes.count + hashes.count / 4 + 1024, falsePositiveRate: falsePositiveRate)
        for hash in hashes { filter.insert(hash: hash) }
        let snapshot = Snapshot(createdAt: now, cursor: cursor.description, revocations: hashes.count, filter: filter, cutoffs: cutoffs)
        return Built(
            bytes: ByteBuffer(bytes: snapshot.encoded()), cursor: cursor, builtAt: .now, revocations: hashes.count, cutoffs: cutoffs.count)
    }
}

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
                throw APIError(
                    .serviceUnavailable, code: "store_unavailable", message: "the event log cannot be read right now",
                    headers: [.retryAfter: "1"])
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
        refuseOtherMethods(router, "/v1/snapshot", allowed: [.get])
        refuseOtherMethods(router, "/v1/events", allowed: [.get])
    }
}
