import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Redis
import RevokeCore
import RevokeHTTP
import RevokeStore
import RevokeSync
import ServiceLifecycle

/// Builds `revoked`: the Redis client (and the embedded `redis-server` when no URL is
/// configured) as services, and the HTTP routes.
///
/// Services stop in reverse order: the HTTP server drains first, then the Redis client
/// closes, then the embedded `redis-server` (if any) flushes and exits.
/// - Parameters:
///   - configuration: What `revoked` was configured with.
///   - logger: Where the application logs.
///   - now: The current time in Unix seconds; tests pass their own.
public func buildApplication(
    configuration: ServerConfiguration, logger: Logger,
    now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
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
    // The event streams' blocking reads hold a connection of their own.
    let reader = RedisClient(configuration: redisConfiguration, logger: logger)
    services.append(reader)
    // So do replays of the log (`?since=`): however many there are, checks never queue behind them.
    let replayReader = RedisClient(configuration: redisConfiguration, logger: logger)
    services.append(replayReader)
    // So do writes that WAIT for replicas: the checks never queue behind one.
    var writer: RedisClient?
    if configuration.replication.replicas > 0 {
        writer = RedisClient(configuration: redisConfiguration, logger: logger)
        services.append(writer!)
    }

    let store = RevocationStore(
        redis: redis, keys: KeyLayout(namespace: configuration.namespace), policy: configuration.policy,
        cutoffClaims: configuration.cutoffClaims, eventLogLength: configuration.eventLogLength,
        packedRecords: configuration.packedRecords, replication: configuration.replication, writer: writer, now: now)
    let metrics = ServerMetrics()
    let verifier = try await TokenVerifier.make(configuration, now: now, metricsFactory: metrics.factory)
    if !verifier.hasKeys {
        logger.warning("no issuer keys configured (REVOKE_HMAC_SECRET, REVOKE_JWKS_FILE, REVOKE_PUBLIC_KEY_FILE): POST /v1/revoke refuses every token")
    }
    if configuration.verifierKeys.isEmpty {
        logger.warning(
            "no verifier keys configured (REVOKE_VERIFIER_KEYS): verifier endpoints are open to anyone who reaches this address (checks, introspection, reads, snapshot, events); event streams are bounded per address (REVOKE_MAX_STREAMS_PER_CLIENT)")
    }
    if configuration.audience == nil {
        logger.notice("no REVOKE_AUDIENCE: POST /v1/backchannel-logout refuses every logout token (one issued to any other application would otherwise be accepted)")
    }
    let keyring = APIKeyring(admin: configuration.adminKeys, verifier: configuration.verifierKeys)
    let snapshots = SnapshotKeeper(
        store: store, falsePositiveRate: configuration.snapshotFalsePositiveRate, maximumAge: .seconds(configuration.snapshotMaximumAge),
        metrics: metrics.snapshot, logger: logger)
    services.append(snapshots)
    let hub = EventHub(
        store: store, reader: store.reading(through: reader), snapshots: snapshots, logger: logger, maximumStreams: configuration.maximumEventStreams,
        maximumStreamsPerClient: configuration.maximumStreamsPerClient, bufferBytes: configuration.streamBufferBytes)
    services.append(hub)

    let router = Router(context: RevokeRequestContext.self)
    // Metrics outside the error middleware, so they see the status every error becomes.
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: APIErrorMiddleware(storeErrors: metrics.storeErrors))
    // Who may call what, decided here and nowhere else: each route is added to the group of its role.
    let routes = RouteGroups(router: router, keyring: keyring)
    metrics.addRoutes(to: routes.open)
    HealthController(store: store).addRoutes(to: routes.open)
    LogoutController(store: store, verifier: verifier, revocations: metrics.logoutRevocations).addRoutes(to: routes.open)
    BackChannelLogoutController(store: store, verifier: verifier).addRoutes(to: routes.open)
    // These two authenticate their callers themselves, each as its kind of caller does: OAuth
    // client credentials (or a key as Bearer), and a gateway's Revoke-Key.
    IntrospectionController(store: store, verifier: verifier).addRoutes(to: routes.open, keyring: keyring)
    let forwardAuth = ForwardAuth(store: store, verifier: verifier, keyring: keyring, logger: logger, storeErrors: metrics.storeErrors)
    forwardAuth.addRoutes(to: routes.open)
    let checks = CheckController(store: store, checks: metrics.checks)
    checks.addRoutes(verifier: routes.verifier)
    CacheController(
        snapshots: snapshots, hub: hub, store: store, replays: Replays(store: store.reading(through: replayReader), bytesPerSecond: configuration.replayBytesPerSecond),
        delivery: metrics.delivery
    ).addRoutes(verifier: routes.verifier)
    RecordsController(store: store, revocations: metrics.adminRevocations, cutoffs: metrics.cutoffs, keyBlocks: metrics.keyBlocks)
        .addRoutes(verifier: routes.verifier, admin: routes.admin)
    StatusController(store: store, snapshots: snapshots, hub: hub, namespace: configuration.namespace).addRoutes(admin: routes.admin)
    // Last: every path answers the methods it does not serve with 405 and Allow.
    router.refuseUnservedMethods()

    let idleTimeout = TimeAmount.seconds(configuration.idleTimeout)
    let serverName = "revoked"
    let connections = ConnectionCount(limit: configuration.maximumConnections)
    let directChecks = DirectChecks(controller: checks, forwardAuth: forwardAuth, keyring: keyring, metrics: metrics, logger: logger, serverName: serverName)
    return Application(
        router: router,
        server: HTTPServerBuilder { responder in
            LimitedHTTP1Channel(
                responder: responder, idleTimeout: idleTimeout, headTimeout: .seconds(configuration.headTimeout),
                bodyTimeout: .seconds(configuration.bodyTimeout), connections: connections, checks: directChecks)
        },
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
        services: services,
        logger: logger
    )
}
