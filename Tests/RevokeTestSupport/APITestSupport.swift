import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeServer
import Synchronization
import Testing

/// An HMAC secret long enough for HS256, HS384 and HS512.
public let testSecret = String(repeating: "s3cr3t-", count: 10)

/// Runs `body` against a live `revoked` built on a private `redis-server`, with a client for
/// the API and a Redis client to inspect what was stored.
/// - Parameter now: revoked's clock (Unix seconds); tests that move time pass their own.
public func withRevoked(
    configure: (inout ServerConfiguration) -> Void = { _ in }, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
    _ body: @escaping @Sendable (any TestClientProtocol, RedisClient, RedisServerProcess) async throws -> Void
) async throws {
    try await withRedisServer { server in
        // Short enough that tests freezing Redis see 503 soon, long enough for a busy machine.
        var redis = server.configuration(commandTimeout: .seconds(1))
        redis.connectTimeout = .seconds(1)
        redis.reconnectBackoff = .milliseconds(20)
        redis.maximumReconnectBackoff = .milliseconds(100)
        try await withRedisClient(server.configuration()) { inspector in
            try await withRevoked(redis: redis, configure: configure, now: now) { client in
                try await body(client, inspector, server)
            }
        }
    }
}

/// Runs `body` against a live `revoked` on `redis` (any deployment), once it is ready.
public func withRevoked(
    redis: RedisConfiguration, ready: Bool = true, configure: (inout ServerConfiguration) -> Void = { _ in },
    now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
) async throws {
    var configuration = ServerConfiguration()
    configuration.port = 0
    configuration.redis = redis
    configuration.hmacSecret = testSecret
    configuration.adminKeys = [APIKey(name: "ops", secret: "admin-secret", role: .admin)]
    configure(&configuration)
    let app = try await buildApplication(configuration: configuration, logger: Logger(label: "test"), now: now)
    try await app.test(.live) { client in
        if ready { try await waitUntilReady(client) }
        try await body(client)
    }
}

/// A clock a test moves forward by hand: the real one plus what the test added.
public final class DrivenClock: Sendable {
    public init() {}

    private let offset = Mutex(Duration.zero)

    public func advance(by duration: Duration) { offset.withLock { $0 += duration } }

    /// The monotonic clock, moved: for a caching client (`CacheConfiguration.clock`).
    public var monotonic: @Sendable () -> ContinuousClock.Instant { { ContinuousClock.now + self.offset.withLock { $0 } } }

    /// Unix seconds, moved: for revoked's `now`.
    public var unixSeconds: @Sendable () -> Double {
        { Date().timeIntervalSince1970 + Double(self.offset.withLock { $0 } / .milliseconds(1)) / 1000 }
    }
}

public func waitUntilReady(_ client: some TestClientProtocol) async throws {
    try await waitUntil("/readyz answers 200") {
        (try? await client.execute(uri: "/readyz", method: .get, body: nil, testCallback: { $0.status == .ok })) ?? false
    }
}

/// A response as status, headers and parsed JSON.
public struct Reply: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var text: String
    public var json: [String: JSONValue] {
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return [:] }
        return object
    }
    public var error: String? {
        if case .string(let code)? = json["error"] { return code }
        return nil
    }
}

extension TestClientProtocol {
    public func call(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, key: String? = nil,
        contentType: String = "application/json", body: String? = nil, headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let key { headers[.authorization] = "Bearer \(key)" }
        let payload = json ?? body
        if payload != nil { headers[.contentType] = contentType }
        return try await execute(
            uri: uri, method: method, headers: headers, body: payload.map { ByteBuffer(string: $0) }
        ) { response in
            Reply(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}

/// Compact JWS tokens signed the way issuers sign them, with nothing of the server's code.
public enum Mint {
    public static func b64(_ bytes: some Sequence<UInt8>) -> String { Base64URL.encode(bytes) }

    public static func token(header: String, payload: String, sign: (Data) throws -> [UInt8]) rethrows -> String {
        let input = b64(Array(header.utf8)) + "." + b64(Array(payload.utf8))
        return input + "." + b64(try sign(Data(input.utf8)))
    }

    public static func hmac(_ alg: String = "HS256", secret: String = testSecret, payload: String, kid: String? = nil) -> String {
        let header = kid.map { #"{"alg":"\#(alg)","typ":"JWT","kid":"\#($0)"}"# } ?? #"{"alg":"\#(alg)","typ":"JWT"}"#
        let key = SymmetricKey(data: Array(secret.utf8))
        return token(header: header, payload: payload) { input in
            switch alg {
            case "HS384": Array(HMAC<SHA384>.authenticationCode(for: input, using: key))
            case "HS512": Array(HMAC<SHA512>.authenticationCode(for: input, using: key))
            default: Array(HMAC<SHA256>.authenticationCode(for: input, using: key))
            }
        }
    }

    public static func es256(_ key: P256.Signing.PrivateKey, payload: String, kid: String? = nil, alg: String = "ES256") throws -> String {
        let header = kid.map { #"{"alg":"\#(alg)","kid":"\#($0)"}"# } ?? #"{"alg":"\#(alg)"}"#
        return try token(header: header, payload: payload) { Array(try key.signature(for: $0).rawRepresentation) }
    }

    public static func eddsa(_ key: Curve25519.Signing.PrivateKey, payload: String, kid: String) throws -> String {
        try token(header: #"{"alg":"EdDSA","kid":"\#(kid)"}"#, payload: payload) { Array(try key.signature(for: $0)) }
    }

    /// A payload with a fresh `exp` (`lifetime` seconds from now, or `expiresAt`) and `iat`.
    public static func claims(
        jti: String? = "j-\(UUID().uuidString)", lifetime: Int = 600, expiresAt: Int64? = nil, extra: String = ""
    ) -> String {
        let now = Int(Date().timeIntervalSince1970)
        var fields = [#""iat":\#(now - 5)"#, #""exp":\#(expiresAt.map(Int.init) ?? now + lifetime)"#]
        if let jti { fields.append(#""jti":"\#(jti)""#) }
        if !extra.isEmpty { fields.append(extra) }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// The TTLs Redis may report for a revocation of a token expiring at `expiresAt`, derived from
/// the instants the test itself observed, never from a margin that assumes a fast machine:
/// the server set `ceil(exp - now)` at some `now` after the request was sent, and the TTL was
/// read before `readAt`.
public struct TTLWindow: Sendable, CustomStringConvertible {
    public var range: ClosedRange<Int64>

    public init(expiresAt: Int64, requestSentAt: Double, readAt: Double, clockSkew: Int64 = 0) {
        let highest = Int64((Double(expiresAt) - requestSentAt).rounded(.up)) + clockSkew
        // TTL rounds the milliseconds left to the nearest second: one second of slack below.
        let lowest = Int64((Double(expiresAt) - readAt).rounded(.down)) + clockSkew - 1
        range = min(lowest, highest)...highest
    }

    public func contains(_ ttl: Int64) -> Bool { range.contains(ttl) }

    public var description: String { "\(range.lowerBound)...\(range.upperBound)" }
}
