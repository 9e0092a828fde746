import AsyncHTTPClient
import Atomics
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RevokeCore
import RevokeSnapshot
import ServiceLifecycle
import Synchronization

/// The client verifiers use to ask Revoke whether a token is revoked.
///
/// Without a cache, every ``check(_:)`` asks the server. With one (``Configuration/cache``),
/// run the client as a swift-service-lifecycle `Service`: it loads `GET /v1/snapshot` and
/// follows `GET /v1/events`, and ``check(_:)`` answers from memory whenever it can:
///
/// - a cutoff in the cache matches: revoked, locally (cutoffs are held exactly);
/// - the Bloom filter says the `jti` is absent: not revoked, locally, with no network;
/// - the filter says "maybe": the server confirms (a false positive costs one request);
/// - the cache has heard nothing (no event, no heartbeat) for longer than
///   ``CacheConfiguration/staleness``, or is not loaded yet: the server answers;
/// - the server cannot answer: the ``FailurePolicy`` decides (closed by default: revoked),
///   within ``Configuration/requestTimeout``, never a hang.
public final class RevokeClient: Service, Sendable {
    /// Where the server is and how to reach it.
    public struct Configuration: Sendable {
        /// The server's base URL, `http://host:port`.
        public var url: String
        /// A verifier (or admin) API key, sent as `Authorization: Bearer`; nil when the
        /// server's verifier endpoints are open.
        public var apiKey: String?
        /// How long one check may wait for the server.
        public var requestTimeout: Duration
        /// The local cache; nil asks the server every time.
        public var cache: CacheConfiguration?

        public init(url: String, apiKey: String? = nil, requestTimeout: Duration = .seconds(2), cache: CacheConfiguration? = nil) {
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
            self.apiKey = apiKey
            self.requestTimeout = requestTimeout
            self.cache = cache
        }
    }

    /// What a caller gets when the server cannot answer.
    public enum FailurePolicy: Sendable, Equatable {
        /// Treat the token as revoked (the default: an outage never lets a revoked token in).
        case failClosed
        /// Treat the token as not revoked.
        case failOpen
    }

    /// How the local cache behaves.
    public struct CacheConfiguration: Sendable {
        /// How long the cache trusts itself without hearing from the server (an event or a
        /// heartbeat, which comes every second); past it, checks go to the server.
        public var staleness: Duration
        /// What to answer when the server cannot be reached.
        public var failurePolicy: FailurePolicy
        /// How often the snapshot is loaded again, so that expired `jti`s leave the filter.
        public var refreshInterval: Duration
        /// Called after each event is applied, with its type and cursor (for observability).
        public var onEvent: (@Sendable (_ type: String, _ cursor: String) -> Void)?
        /// The time by which the cache judges its staleness and when its snapshot is due again:
        /// the monotonic clock, unless a test drives one of its own.
        public var clock: @Sendable () -> ContinuousClock.Instant

        public init(
            staleness: Duration = .seconds(5), failurePolicy: FailurePolicy = .failClosed, refreshInterval: Duration = .seconds(600),
            onEvent: (@Sendable (_ type: String, _ cursor: String) -> Void)? = nil,
            clock: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
        ) {
            self.staleness = staleness
            self.failurePolicy = failurePolicy
            self.refreshInterval = refreshInterval
            self.onEvent = onEvent
            self.clock = clock
        }
    }

    /// An answer.
    public struct Verdict: Sendable, Equatable {
        public enum Reason: Sendable, Equatable {
            /// The `jti` is revoked.
            case jti
            /// A cutoff on this claim matches.
            case cutoff(claim: String)
            /// The key that signed it (its header's `kid`) is blocked.
            case key(kid: String)
            /// The server could not answer; the failure policy decided.
            case unavailable
        }

        public enum Source: Sendable, Equatable {
            /// The local cache answered.
            case cache
            /// The server answered.
            case server
            /// The failure policy answered.
            case policy
        }

        public var revoked: Bool
        public var reason: Reason?
        public var source: Source
        /// For an answer of the cache: when it last heard from the server (an event or a
        /// heartbeat on its live stream), so a caller can judge how fresh "not revoked" is.
        public var heardAt: ContinuousClock.Instant? { heard.map { Heard.origin + .nanoseconds($0.nanoseconds) } }
        /// For an answer of the cache: its position in the server's event log (the last event
        /// applied, or its snapshot's cursor).
        public var cursor: String? { heard?.cursor.description }

        /// What a cache answer carries of its freshness, kept raw and trivially copyable: the
        /// instant and the cursor's text are made only when asked, off the hot path. (No
        /// `ContinuousClock.Instant` in it: the standard library may change that type's layout, so
        /// a struct holding one is copied through runtime calls, which tripled a lookup's cost.)
        struct Heard: Sendable {
            /// What ``nanoseconds`` count from: one instant for the whole process.
            static let origin = ContinuousClock.now
            /// Nanoseconds on the monotonic clock since ``origin``.
            var nanoseconds: Int64
            var cursor: EventCursor
        }

        let heard: Heard?

        /// The cache's "not revoked".
        init(notRevokedAsOf heard: Heard) {
            self.init(revoked: false, source: .cache, heard: heard)
        }

        public init(revoked: Bool, reason: Reason? = nil, source: Source) {
            self.init(revoked: revoked, reason: reason, source: source, heard: nil)
        }

        init(revoked: Bool, reason: Reason? = nil, source: Source, heard: Heard?) {
            self.revoked = revoked
            self.reason = reason
            self.source = source
            self.heard = heard
        }

        /// Two verdicts are equal when they say the same: revoked or not, why, and who answered
        /// (not when, nor from which position).
        public static func == (lhs: Verdict, rhs: Verdict) -> Bool {
            lhs.revoked == rhs.revoked && lhs.reason == rhs.reason && lhs.source == rhs.source
        }
    }

    /// Why the server did not answer a remote call.
    public struct ServerError: Error, CustomStringConvertible {
        /// The HTTP status, when one came back.
        public var status: Int?
        /// The contract's error code, when the body had one.
        public var code: String?
        public var description: String
    }

    public let configuration: Configuration
    let http: HTTPClient
    let logger: Logger
    /// The cache, when configured.
    let cache: RevocationCache?
    /// Set once `run()` has shut ``http`` down.
    private let httpShutDown = ManagedAtomic(false)

    public init(configuration: Configuration, logger: Logger = Logger(label: "revoke.client")) {
        self.configuration = configuration
        self.logger = logger
        var httpConfiguration = HTTPClient.Configuration()
        // The event stream's heartbeat comes every second: three without a byte is a dead stream.
        httpConfiguration.timeout = .init(connect: .seconds(2), read: .seconds(3))
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        cache = configuration.cache.map { RevocationCache(configuration: $0) }
    }

    deinit {
        // A safety net for a client that never ran: `run()` shuts the HTTP client down when it
        // ends. Never `syncShutdown` here: a deinit may run on an event loop, which must not block.
        if !httpShutDown.load(ordering: .acquiring) { _ = http.shutdown() }
    }

    /// Keeps the cache fresh until cancelled or shut down gracefully (without a cache, waits
    /// for that), then shuts the HTTP client down: checks after `run()` returns answer by the
    /// failure policy.
    public func run() async throws {
        if let cache {
            await cancelWhenGracefulShutdown {
                await self.follow(cache)
            }
        } else {
            try? await gracefulShutdown()
        }
        if httpShutDown.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            try? await http.shutdown()
        }
    }

    /// Whether the cache has a snapshot and heard from the server within the staleness limit,
    /// so that checks it can answer need no network.
    public var isCacheFresh: Bool {
        guard let cache else { return false }
        return cache.fresh.load(ordering: .acquiring) && cache.view.read({ _ in true }) == true
    }

    /// Loads `snapshot` into the cache and counts it fresh, as if its stream had just gone live:
    /// for benchmarks that measure lookups against a filter no server holds. `run()` replaces it.
    @_spi(Benchmarks)
    public func loadCache(_ snapshot: Snapshot) {
        cache?.load(snapshot)
        cache?.heard()
    }

    /// How many snapshots the cache has loaded (the first, one per refresh, one per 410).
    public var snapshotsLoaded: Int { cache?.snapshotsLoaded.load(ordering: .relaxed) ?? 0 }

    // MARK: - Checks

    /// The cache's answer, at once and without suspending, when it can give one (fresh, and the
    /// filter says absent, or a cutoff or key block matches); nil when the server must be asked
    /// (then call ``check(_:)``). For hot paths that cannot await.
    public func cachedVerdict(_ query: CheckQuery) -> Verdict? {
        // Through the optional, not `guard let`: a bound copy would cost a retain and a release.
        // Each verdict built where it is returned: built first and returned after, "not revoked"
        // was copied and destroyed on the way (outlined calls, on the path that must be fastest).
        switch cache?.lookup(query, counting: false) {
        case .notRevoked(let heard)?: Verdict(notRevokedAsOf: heard)
        case .revoked(let verdict)?: verdict
        case .askServer?, nil: nil
        }
    }

    /// Whether a token (by its `jti`, `iat` and the claims cutoffs may name) is revoked, from
    /// the cache when it can answer, else from the server, else by the failure policy. Never
    /// throws and never waits longer than the request timeout.
    public func check(_ query: CheckQuery) async -> Verdict {
        if let cache {
            switch cache.lookup(query) {
            case .notRevoked(let heard): return Verdict(notRevokedAsOf: heard)
            case .revoked(let verdict): return verdict
            case .askServer(let possibleHit):
                do {
                    let verdict = try await checkRemotely(query)
                    cache.recordConfirmation(possibleHit: possibleHit, revoked: verdict.revoked)
                    return verdict
                } catch {
                    return cache.policyVerdict(error: error, logger: logger)
                }
            }
        }
        do {
            return try await checkRemotely(query)
        } catch {
            logger.debug("check failed; failing closed", metadata: ["error": "\(error)"])
            return Verdict(revoked: true, reason: .unavailable, source: .policy)
        }
    }

    /// Checks a compact JWS by the claims in its payload (its signature is not verified here:
    /// verify it first). A token whose payload cannot be read is answered revoked.
    /// - Parameter kid: The `kid` of the key that verified a token whose header names none. An
    ///   issuer whose JWKS holds one key per algorithm may mint tokens without `kid`: the
    ///   verifier picks the one key of the token's algorithm (jwt-kit and PyJWT's `PyJWKClient`
    ///   both know which), but the token names none, so a block on that key can only refuse the
    ///   token when the verifier says which key it was. A `kid` other than the header's is
    ///   answered revoked: no verifier picks another key than the one the header names.
    public func check(token: String, kid: String? = nil) async -> Verdict {
        guard let query = try? CheckQuery(compactJWS: token, verifiedBy: kid) else {
            return Verdict(revoked: true, reason: .unavailable, source: .policy)
        }
        return await check(query)
    }

    /// Asks the server (`POST /v1/check`), bypassing the cache.
    /// - Throws: ``ServerError`` for any answer but 200, or the transport's error.
    public func checkRemotely(_ query: CheckQuery) async throws -> Verdict {
        let answer = try await post("/v1/check", body: query.json)
        return try Self.verdict(answer)
    }

    /// Asks the server about many tokens at once (`POST /v1/check/batch`, at most 1000).
    public func checkRemotely(batch queries: [CheckQuery]) async throws -> [Verdict] {
        let body = JSONValue.object(["checks": .array(queries.map(\.json))])
        guard case .array(let results)? = try await post("/v1/check/batch", body: body)["results"] else {
            throw ServerError(description: "the batch answer has no results")
        }
        return try results.map { result in
            guard case .object(let object) = result else { throw ServerError(description: "a batch result is not an object") }
            return try Self.verdict(object)
        }
    }

    // MARK: - HTTP

    func request(_ path: String, method: HTTPMethod = .GET) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: configuration.url + path)
        request.method = method
        if let apiKey = configuration.apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        return request
    }

    private func post(_ path: String, body: JSONValue) async throws -> [String: JSONValue] {
        var request = request(path, method: .POST)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        let response = try await http.execute(request, timeout: .init(configuration.requestTimeout))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        let parsed = try? JSONValue(parsing: bytes.readableBytesView)
        guard response.status == .ok, case .object(let object)? = parsed else {
            var code: String?
            if case .object(let object)? = parsed, case .string(let text)? = object["error"] { code = text }
            throw ServerError(status: Int(response.status.code), code: code, description: "POST \(path): \(response.status)")
        }
        return object
    }

    static func verdict(_ object: [String: JSONValue]) throws -> Verdict {
        if case .string(let code)? = object["error"] {
            throw ServerError(code: code, description: "the server refused the check: \(code)")
        }
        let verdict: CheckVerdict
        do {
            verdict = try CheckVerdict(json: object)
        } catch {
            throw ServerError(description: error.message)
        }
        switch verdict {
        case .allowed: return Verdict(revoked: false, source: .server)
        case .revokedByJTI: return Verdict(revoked: true, reason: .jti, source: .server)
        case .revokedByCutoff(let claim): return Verdict(revoked: true, reason: .cutoff(claim: claim), source: .server)
        case .revokedByKey(let kid): return Verdict(revoked: true, reason: .key(kid: kid), source: .server)
        }
    }
}

