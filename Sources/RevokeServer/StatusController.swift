import Foundation
import Hummingbird
import RevokeCore
import RevokeHTTP
import RevokeStore

/// `GET /v1/status` (role admin): what an operator asks first. Is Redis there and persisting,
/// and how much is revoked. The counts come from the state the snapshot is served from (kept in
/// step with the event log), as of the request: no scan of Redis.
struct StatusController: Sendable {
    let store: RevocationStore
    let snapshots: SnapshotKeeper
    let namespace: String

    func addRoutes(to router: Router<RevokeRequestContext>, keyring: APIKeyring) {
        let admin = router.group().add(middleware: AuthorizationMiddleware(keyring: keyring, required: .admin))
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
