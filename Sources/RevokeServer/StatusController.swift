import Foundation
import Hummingbird
import RevokeCore
import RevokeHTTP
import RevokeStore
import RevokeSync

/// What an operator asks first (role admin). `GET /v1/status`: is Redis there and persisting,
/// and how much is revoked; the counts come from the state the snapshot is served from (kept in
/// step with the event log), as of the request: no scan of Redis. `GET /v1/verifiers`: who
/// follows the events, and how far behind each is.
struct StatusController: Sendable {
    let store: RevocationStore
    let snapshots: SnapshotKeeper
    let hub: EventHub
    let namespace: String

    func addRoutes(admin: some RouterMethods<RevokeRequestContext>) {
        admin.get("/v1/verifiers") { _, _ -> Response in
            let streams: [JSONValue] = hub.streams(now: Date().timeIntervalSince1970).map { stream in
                .object([
                    "name": .string(stream.follower.name), "address": .string(stream.follower.address),
                    "connected_at": .number(Double(stream.follower.connectedAt)), "position": .string(stream.position.description),
                    "lag_events": .number(Double(stream.lagEvents)), "lag_seconds": .number((stream.lagSeconds * 1000).rounded() / 1000),
                ])
            }
            return jsonResponse(.object(["streams": .array(streams)]))
        }
        admin.get("/v1/status") { _, _ -> Response in
            let info = try await store.serverInfo()
            let counts = try await snapshots.counts()
            let redisStatus: [String: JSONValue] = [
                "version": .string(info["redis_version"] ?? "unknown"),
                "role": .string(info["role"] ?? "unknown"),
                "used_memory_bytes": .number(Double(info["used_memory"] ?? "") ?? 0),
                "append_only": .bool(info["aof_enabled"] == "1"),
                "last_save_ok": .bool(info["rdb_last_bgsave_status"].map { $0 == "ok" } ?? true),
            ]
            return jsonResponse(.object([
                "ready": .bool(true),
                "namespace": .string(namespace),
                "revocations": .number(Double(counts.revocations)),
                "cutoffs": .number(Double(counts.cutoffs)),
                "cursor": .string(counts.cursor.description),
                "counted_seconds_ago": .number(0),
                "redis": .object(redisStatus),
            ]))
        }
    }
}
