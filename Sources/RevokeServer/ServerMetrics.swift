import CoreMetrics
import Hummingbird
import Metrics
import NIOCore
import Prometheus
import RevokeSync
import Synchronization

/// The metrics of one `revoked` instance, kept in its own Prometheus registry (no global
/// bootstrap, so several instances in one process, as in tests, never share counters).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// Redis failures answered with 503.
    let storeErrors: StoreErrorCounters
    /// Revocations by logout flows.
    let logoutRevocations: CoreMetrics.Counter
    /// Revocations by incident responders.
    let adminRevocations: CoreMetrics.Counter
    /// Cutoffs created or moved forward.
    let cutoffs: CoreMetrics.Counter
    /// `revoke_key_blocks_total`: signing keys blocked.
    let keyBlocks: CoreMetrics.Counter
    /// Checks answered, single or in batches.
    let checks: CoreMetrics.Counter
    /// `revoke_event_delivery_seconds`.
    let delivery: DeliveryTimes
    /// What the snapshot's keeper did: `revoke_snapshot_loads_total`,
    /// `revoke_snapshot_rebuilds_total`, `revoke_snapshot_revocations`.
    let snapshot: SnapshotKeeper.Metrics

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
        storeErrors = StoreErrorCounters(
            errors: CoreMetrics.Counter(label: "revoke_store_errors_total", factory: factory),
            failures: CoreMetrics.Counter(label: "revoke_store_failures_total", factory: factory))
        logoutRevocations = CoreMetrics.Counter(label: "revoke_revocations_total", dimensions: [("source", "logout")], factory: factory)
        adminRevocations = CoreMetrics.Counter(label: "revoke_revocations_total", dimensions: [("source", "admin")], factory: factory)
        cutoffs = CoreMetrics.Counter(label: "revoke_cutoffs_total", factory: factory)
        keyBlocks = CoreMetrics.Counter(label: "revoke_key_blocks_total", factory: factory)
        checks = CoreMetrics.Counter(label: "revoke_checks_total", factory: factory)
        delivery = DeliveryTimes(timer: CoreMetrics.Timer(label: "revoke_event_delivery_seconds", factory: factory))
        snapshot = SnapshotKeeper.Metrics(
            loads: CoreMetrics.Counter(label: "revoke_snapshot_loads_total", factory: factory),
            rebuilds: CoreMetrics.Counter(label: "revoke_snapshot_rebuilds_total", factory: factory),
            revocations: CoreMetrics.Gauge(label: "revoke_snapshot_revocations", factory: factory))
    }

    private struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    /// The counter and timer of each (method, route, status), made once: the factory's lookup
    /// by name and labels is far slower than this one.
    private let requestMetrics = Mutex<[RequestKey: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])

    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// Counts a request and records its latency, by method, route template and status. Any
    /// other method is labelled `other`, so a client cannot grow the label set.
    func request(method: String, route: String, status: Int, duration: Duration) {
        let key = RequestKey(method: Self.knownMethods.contains(method) ? method : "other", route: route, status: status)
        let (counter, timer) = requestMetrics.withLock { cache in
            if let made = cache[key] { return made }
            let made = (
                CoreMetrics.Counter(
                    label: "revoke_http_requests_total",
                    dimensions: [("method", key.method), ("route", route), ("status", String(status))], factory: factory),
                CoreMetrics.Timer(
                    label: "revoke_http_request_duration_seconds", dimensions: [("method", key.method), ("route", route)], factory: factory)
            )
            cache[key] = made
            return made
        }
        counter.increment()
        timer.record(duration: duration)
    }

    func addRoutes(to open: some RouterMethods<RevokeRequestContext>) {
        open.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            self.registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }
}

/// Records every request in ``ServerMetrics``; the route is the template (`/v1/cutoffs/{claim}/{value}`),
/// never the path, so `jti`s never become label values.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = RevokeRequestContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.request(
                method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: response.status.code,
                duration: ContinuousClock.now - started)
            return response
        } catch let error as any HTTPResponseError {
            metrics.request(
                method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: error.status.code,
                duration: ContinuousClock.now - started)
            throw error
        }
    }
}

/// `revoke_event_delivery_seconds`: the time from a change's acknowledgement (its event ID is the
/// primary's clock when it was appended) to its write on a stream, one sample per write (the
/// oldest event in it).
struct DeliveryTimes: Sendable {
    let timer: CoreMetrics.Timer

    func record(seconds: Double) {
        timer.record(duration: .nanoseconds(Int64(max(0, seconds) * 1e9)))
    }
}
