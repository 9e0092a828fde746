import Hummingbird
import Logging
import NIOCore
import Redis
import ServiceLifecycle

/// The request context of every route.
public typealias RevokeRequestContext = BasicRequestContext

/// Builds `revoked`: the Redis client (and the embedded `redis-server` when no URL is
/// configured) as services, and the HTTP routes.
///
/// Services stop in reverse order: the HTTP server drains first, then the Redis client
/// closes, then the embedded `redis-server` (if any) flushes and exits.
public func buildApplication(
    configuration: ServerConfiguration, logger: Logger
) async throws -> some ApplicationProtocol {
    var services: [any Service] = []
    let redisConfiguration: RedisConfiguration
    if let configured = configuration.redis {
        redisConfiguration = configured
    } else {
        let embedded = try EmbeddedRedis(directory: configuration.dataDirectory, logger: logger)
        services.append(embedded)
        redisConfiguration = embedded.configuration
    }
    let redis = RedisClient(configuration: redisConfiguration, logger: logger)
    services.append(redis)

    let router = Router(context: RevokeRequestContext.self)
    router.add(middleware: APIErrorMiddleware())
    HealthController(redis: redis).addRoutes(to: router)

    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "revoked"),
        services: services,
        logger: logger
    )
}
