import Hummingbird
import RevokeHTTP
import RevokeStore

/// `/healthz` (the process runs) and `/readyz` (Redis answers).
struct HealthController: Sendable {
    let store: RevocationStore

    struct Status: ResponseEncodable {
        var status: String
    }

    func addRoutes(to open: some RouterMethods<RevokeRequestContext>) {
        open.get("/healthz") { _, _ in Status(status: "ok") }
        open.get("/readyz") { _, _ in
            do {
                try await store.ping()
                return Status(status: "ready")
            } catch {
                throw APIError.storeUnavailable()
            }
        }
    }
}
