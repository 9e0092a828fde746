import Hummingbird
import Redis

/// `/healthz` (the process runs) and `/readyz` (Redis answers).
struct HealthController: Sendable {
    let redis: RedisClient

    struct Status: ResponseEncodable {
        var status: String
    }

    func addRoutes(to router: Router<RevokeRequestContext>) {
        router.get("/healthz") { _, _ in Status(status: "ok") }
        router.get("/readyz") { _, _ in
            do {
                _ = try await redis.send(RedisCommand("PING"))
                return Status(status: "ready")
            } catch {
                throw APIError.storeUnavailable()
            }
        }
        refuseOtherMethods(router, "/healthz", allowed: [.get])
        refuseOtherMethods(router, "/readyz", allowed: [.get])
    }
}
