import Foundation
import Redis
import RevokeCore
import RevokeStore

/// Everything `revoked` is configured with, read from the environment (and the same as flags).
public struct ServerConfiguration: Sendable {
    /// `REVOKE_HOST`: the address the API listens on.
    public var host: String = "127.0.0.1"
    /// `REVOKE_PORT`: the port the API listens on (0 picks a free one, for tests).
    public var port: Int = 8080
    /// `REVOKE_REDIS_URL`: the Redis to use; nil starts and owns a local `redis-server`.
    public var redis: RedisConfiguration?
    /// `REVOKE_DATA_DIR`: where the embedded `redis-server` keeps its data when ``redis`` is nil.
    public var dataDirectory: String = "./.revoke-data"
    /// `REVOKE_HMAC_SECRET`: the shared secret for HS256/384/512 tokens.
    public var hmacSecret: String?
    /// `REVOKE_JWKS_FILE`: issuer public keys as a JWKS document (the file's contents).
    public var jwks: String?
    /// `REVOKE_PUBLIC_KEY_FILE`: one issuer public key in PEM (the file's contents).
    public var publicKeyPEM: String?
    /// `REVOKE_ISSUER`: the `iss` every token to revoke must carry.
    public var issuer: String?
    /// `REVOKE_AUDIENCE`: the audience every token to revoke must be for.
    public var audience: String?
    /// `REVOKE_ADMIN_KEYS`: API keys with the admin role.
    public var adminKeys: [APIKey] = []
    /// `REVOKE_VERIFIER_KEYS`: API keys with the verifier role.
    public var verifierKeys: [APIKey] = []
    /// `REVOKE_MAX_TOKEN_LIFETIME` and `REVOKE_CLOCK_SKEW`.
    public var policy = RevocationPolicy()
    /// `REVOKE_CUTOFF_CLAIMS`.
    public var cutoffClaims = CutoffClaims.default
    /// `REVOKE_NAMESPACE`: the Redis key prefix.
    public var namespace = "revoke"
    /// `REVOKE_SNAPSHOT_FALSE_POSITIVE_RATE`: the rate of "maybe" the snapshot's Bloom filter
    /// is sized for (a "maybe" costs the client one remote check).
    public var snapshotFalsePositiveRate = 0.01
    /// `REVOKE_SNAPSHOT_MAX_AGE`: seconds a built snapshot is served before it is rebuilt.
    public var snapshotMaximumAge: Int64 = 10
    /// `REVOKE_MAX_EVENT_STREAMS`: `/v1/events` streams open at once on this instance.
    public var maximumEventStreams = 10_000
    /// `REVOKE_MAX_STREAMS_PER_CLIENT`: streams one client may hold at once; a client is its
    /// verifier key's name and its address together, or its address alone without a key.
    public var maximumStreamsPerClient = 1000
    /// `REVOKE_REPLAY_BYTES_PER_SECOND`: what the replays of the log (`/v1/events?since=`) of
    /// one client (as ``maximumStreamsPerClient`` counts them) together may write a second.
    public var replayBytesPerSecond = 1 << 20
    /// `REVOKE_MAX_CONNECTIONS`: open HTTP connections at once; one more is answered 503
    /// `overloaded` and closed. Above the default streams (10,000) with room for checks.
    public var maximumConnections = 16_384
    /// `REVOKE_BODY_TIMEOUT`: seconds a request's body may take to arrive after its head.
    public var bodyTimeout: Int64 = 10
    /// `REVOKE_HEAD_TIMEOUT`: seconds a request's head may take to arrive after its first byte.
    public var headTimeout: Int64 = Limits.requestHeadSeconds
    /// `REVOKE_VERIFIED_TOKEN_CACHE`: tokens whose signature verified that are remembered (by
    /// their SHA-256), so that a gateway sending the same token again costs no signature check;
    /// 0 remembers none.
    public var verifiedTokenCacheSize = 10_000
    /// `REVOKE_STREAM_BUFFER_BYTES`: unsent bytes a stream may hold before it is closed.
    public var streamBufferBytes = 1 << 20
    /// `REVOKE_IDLE_TIMEOUT`: seconds a connection with no request in progress stays open.
    public var idleTimeout: Int64 = 60
    /// `REVOKE_EVENT_LOG_LENGTH`: entries the event log keeps (about).
    public var eventLogLength = 100_000
    /// `REVOKE_PACKED_RECORDS`: whether revocations are written in the packed shape where it
    /// fits (false: hashes only, for a rolling upgrade from a version that reads only those).
    public var packedRecords = true
    /// `REVOKE_REDIS_MIN_REPLICAS` and `REVOKE_REDIS_WAIT_TIMEOUT_MS`: replicas `WAIT` must
    /// confirm before a write is acknowledged, and how long it may take.
    public var replication = RevocationStore.Replication()

    public init() {}

    /// A configuration error: one line that names the variable and says what is wrong.
    public struct Error: Swift.Error, CustomStringConvertible {
        public var variable: String
        public var problem: String
        public var description: String { "\(variable): \(problem)" }
    }

    /// Every variable `revoked` reads (`REVOKE_LOG_LEVEL` by the executable, the rest here).
    public static let variableNames: Set<String> = Set([
        "REVOKE_HOST", "REVOKE_PORT", "REVOKE_REDIS_URL", "REVOKE_DATA_DIR", "REVOKE_HMAC_SECRET", "REVOKE_JWKS_FILE",
        "REVOKE_PUBLIC_KEY_FILE", "REVOKE_ISSUER", "REVOKE_AUDIENCE", "REVOKE_ADMIN_KEYS", "REVOKE_VERIFIER_KEYS",
        "REVOKE_MAX_TOKEN_LIFETIME", "REVOKE_CLOCK_SKEW", "REVOKE_CUTOFF_CLAIMS", "REVOKE_NAMESPACE",
        "REVOKE_SNAPSHOT_FALSE_POSITIVE_RATE", "REVOKE_SNAPSHOT_MAX_AGE", "REVOKE_LOG_LEVEL",
        "REVOKE_MAX_EVENT_STREAMS", "REVOKE_STREAM_BUFFER_BYTES", "REVOKE_IDLE_TIMEOUT", "REVOKE_EVENT_LOG_LENGTH",
        "REVOKE_PACKED_RECORDS",
        "REVOKE_REDIS_CA_FILE", "REVOKE_REDIS_CERT_FILE", "REVOKE_REDIS_KEY_FILE", "REVOKE_REDIS_SENTINEL_PASSWORD",
        "REVOKE_REDIS_MIN_REPLICAS", "REVOKE_REDIS_WAIT_TIMEOUT_MS",
        "REVOKE_MAX_STREAMS_PER_CLIENT", "REVOKE_MAX_CONNECTIONS", "REVOKE_BODY_TIMEOUT", "REVOKE_HEAD_TIMEOUT", "REVOKE_REPLAY_BYTES_PER_SECOND",
        "REVOKE_VERIFIED_TOKEN_CACHE",
    ]).union(secretVariables.map { $0 + "_FILE" })

    /// The variables that hold secrets. Each may instead be read from a file named by the same
    /// variable with `_FILE` appended (a mounted secret), which no process list shows.
    public static let secretVariables = [
        "REVOKE_HMAC_SECRET", "REVOKE_ADMIN_KEYS", "REVOKE_VERIFIER_KEYS", "REVOKE_REDIS_URL", "REVOKE_REDIS_SENTINEL_PASSWORD",
    ]

    /// The shortest API key secret accepted: 16 bytes (128 bits when random) cannot be guessed
    /// over a network; `a:b` can.
    public static let minimumKeyLength = 16

    /// Reads the configuration from variables (the environment, with flags laid over it).
    /// Key files are read here, so a missing or unreadable file is reported at start.
    /// - Throws: ``Error`` naming the first variable that is wrong; never a secret's value.
    public init(variables: [String: String]) throws(Error) {
        // NAME_FILE: the secret NAME read from a file, its final line break dropped.
        var resolved = variables
        for name in Self.secretVariables {
            guard let path = resolved[name + "_FILE"], !path.isEmpty else { continue }
            if let direct = resolved[name], !direct.isEmpty {
                throw Error(variable: name + "_FILE", problem: "is set, and so is \(name): set one of them")
            }
            guard let contents = FileManager.default.contents(atPath: path), var text = String(data: contents, encoding: .utf8) else {
                throw Error(variable: name + "_FILE", problem: "cannot read \(path)")
            }
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            guard !text.isEmpty else { throw Error(variable: name + "_FILE", problem: "\(path) is empty") }
            resolved[name] = text
        }
        let variables = resolved

        func value(_ name: String) -> String? {
            guard let raw = variables[name] else { return nil }
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        }
        func integer(_ name: String, _ range: ClosedRange<Int64>) throws(Error) -> Int64? {
            guard let text = value(name) else { return nil }
            guard let number = Int64(text), range.contains(number) else {
                throw Error(variable: name, problem: "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"")
            }
            return number
        }
        func file(_ name: String) throws(Error) -> String? {
            guard let path = value(name) else { return nil }
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw Error(variable: name, problem: "cannot read \(path)")
            }
            guard let text = String(data: contents, encoding: .utf8), !text.isEmpty else {
                throw Error(variable: name, problem: "\(path) is empty or not UTF-8 text")
            }
            return text
        }

        self.init()
        if let host = value("REVOKE_HOST") { self.host = host }
        if let port = try integer("REVOKE_PORT", 0...65535) { self.port = Int(port) }
        if let url = value("REVOKE_REDIS_URL") {
            do {
                self.redis = try RedisConfiguration(url: url)
            } catch {
                throw Error(variable: "REVOKE_REDIS_URL", problem: error.message + " (expected \(RedisConfiguration.urlForms))")
            }
        }
        try readRedisDeployment(value, integer: integer)
        if let directory = value("REVOKE_DATA_DIR") { self.dataDirectory = directory }
        // A secret is taken as given: surrounding spaces may be part of it.
        if let secret = variables["REVOKE_HMAC_SECRET"], !secret.isEmpty {
            // RFC 7518 section 3.2: an HS256 key has at least 32 bytes (48 for HS384, 64 for HS512).
            guard secret.utf8.count >= 32 else {
                throw Error(variable: "REVOKE_HMAC_SECRET", problem: "must be at least 32 bytes (RFC 7518 3.2); HS384 needs 48 and HS512 64")
            }
            self.hmacSecret = secret
        }
        self.jwks = try file("REVOKE_JWKS_FILE")
        self.publicKeyPEM = try file("REVOKE_PUBLIC_KEY_FILE")
        self.issuer = value("REVOKE_ISSUER")
        self.audience = value("REVOKE_AUDIENCE")
        self.adminKeys = try Self.keys(variables["REVOKE_ADMIN_KEYS"], variable: "REVOKE_ADMIN_KEYS", role: .admin)
        self.verifierKeys = try Self.keys(variables["REVOKE_VERIFIER_KEYS"], variable: "REVOKE_VERIFIER_KEYS", role: .verifier)
        let names = (adminKeys + verifierKeys).map(\.name)
        if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw Error(variable: "REVOKE_VERIFIER_KEYS", problem: "the key name \"\(repeated)\" is used twice (names must be unique across both lists)")
        }
        if let lifetime = try integer("REVOKE_MAX_TOKEN_LIFETIME", 1...(100 * 365 * 86_400)) { policy.maximumTokenLifetime = lifetime }
        if let skew = try integer("REVOKE_CLOCK_SKEW", 0...86_400) { policy.clockSkew = skew }
        if let text = value("REVOKE_SNAPSHOT_FALSE_POSITIVE_RATE") {
            guard let rate = Double(text), rate >= 0.000_001, rate <= 0.5 else {
                throw Error(variable: "REVOKE_SNAPSHOT_FALSE_POSITIVE_RATE", problem: "must be a number from 0.000001 to 0.5, not \"\(text)\"")
            }
            snapshotFalsePositiveRate = rate
        }
        if let age = try integer("REVOKE_SNAPSHOT_MAX_AGE", 0...3600) { snapshotMaximumAge = age }
        if let streams = try integer("REVOKE_MAX_EVENT_STREAMS", 1...1_000_000) { maximumEventStreams = Int(streams) }
        if let bytes = try integer("REVOKE_STREAM_BUFFER_BYTES", 4096...(1 << 30)) { streamBufferBytes = Int(bytes) }
        if let streams = try integer("REVOKE_MAX_STREAMS_PER_CLIENT", 1...1_000_000) { maximumStreamsPerClient = Int(streams) }
        if let entries = try integer("REVOKE_VERIFIED_TOKEN_CACHE", 0...10_000_000) { verifiedTokenCacheSize = Int(entries) }
        if let connections = try integer("REVOKE_MAX_CONNECTIONS", 1...10_000_000) { maximumConnections = Int(connections) }
        if let seconds = try integer("REVOKE_BODY_TIMEOUT", 1...3600) { bodyTimeout = seconds }
        if let seconds = try integer("REVOKE_HEAD_TIMEOUT", 1...3600) { headTimeout = seconds }
        if let rate = try integer("REVOKE_REPLAY_BYTES_PER_SECOND", 65536...(1 << 34)) { replayBytesPerSecond = Int(rate) }
        if let seconds = try integer("REVOKE_IDLE_TIMEOUT", 1...86_400) { idleTimeout = seconds }
        if let length = try integer("REVOKE_EVENT_LOG_LENGTH", 100...100_000_000) { eventLogLength = Int(length) }
        switch value("REVOKE_PACKED_RECORDS") {
        case nil, "true": packedRecords = true
        case "false": packedRecords = false
        case let other?: throw Error(variable: "REVOKE_PACKED_RECORDS", problem: "must be true or false, not \"\(other)\"")
        }
        if let claims = value("REVOKE_CUTOFF_CLAIMS") {
            do {
                self.cutoffClaims = try CutoffClaims(parsing: claims)
            } catch {
                throw Error(variable: "REVOKE_CUTOFF_CLAIMS", problem: error.message)
            }
        }
        if let namespace = value("REVOKE_NAMESPACE") {
            // No `:`: the namespace ends at the first one, so `a:jti` could not read another's `a`.
            guard namespace.utf8.count <= 64,
                namespace.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) })
            else {
                throw Error(variable: "REVOKE_NAMESPACE", problem: "must be 1 to 64 of A-Z a-z 0-9 _ - . (no colon: keys are <namespace>:...)")
            }
            self.namespace = namespace
        }
    }

    /// TLS files, the sentinels' password and the replicas a write needs: each only where the
    /// URL gives it a meaning, every file read now.
    private mutating func readRedisDeployment(
        _ value: (String) -> String?, integer: (String, ClosedRange<Int64>) throws(Error) -> Int64?
    ) throws(Error) {
        let files = (ca: value("REVOKE_REDIS_CA_FILE"), certificate: value("REVOKE_REDIS_CERT_FILE"), key: value("REVOKE_REDIS_KEY_FILE"))
        if files.ca != nil || files.certificate != nil || files.key != nil {
            let variable = files.ca != nil ? "REVOKE_REDIS_CA_FILE" : files.certificate != nil ? "REVOKE_REDIS_CERT_FILE" : "REVOKE_REDIS_KEY_FILE"
            guard redis?.tls != nil else {
                throw Error(variable: variable, problem: "is set, but REVOKE_REDIS_URL is not rediss:// or rediss-sentinel://")
            }
            if (files.certificate == nil) != (files.key == nil) {
                throw Error(
                    variable: files.certificate == nil ? "REVOKE_REDIS_CERT_FILE" : "REVOKE_REDIS_KEY_FILE",
                    problem: "a client certificate needs both REVOKE_REDIS_CERT_FILE and REVOKE_REDIS_KEY_FILE")
            }
            redis?.tls = RedisTLS(caFile: files.ca, certificateFile: files.certificate, keyFile: files.key)
        }
        if let tls = redis?.tls {
            // Read every file now, so a bad one stops revoked at start and names its variable.
            for (variable, settings) in [
                ("REVOKE_REDIS_CA_FILE", RedisTLS(caFile: tls.caFile)),
                ("REVOKE_REDIS_CERT_FILE", RedisTLS(certificateFile: tls.certificateFile, keyFile: tls.keyFile)),
            ] where settings != RedisTLS() {
                do {
                    _ = try RedisTLSContext(settings)
                } catch {
                    throw Error(variable: variable, problem: error.message)
                }
            }
        }
        if let password = value("REVOKE_REDIS_SENTINEL_PASSWORD") {
            guard redis?.sentinel != nil else {
                throw Error(variable: "REVOKE_REDIS_SENTINEL_PASSWORD", problem: "is set, but REVOKE_REDIS_URL is not redis-sentinel:// or rediss-sentinel://")
            }
            redis?.sentinel?.password = password
        }
        if let replicas = try integer("REVOKE_REDIS_MIN_REPLICAS", 0...64).map(Int.init) {
            if replicas > 0 && redis == nil {
                throw Error(variable: "REVOKE_REDIS_MIN_REPLICAS", problem: "needs REVOKE_REDIS_URL: the embedded redis-server has no replicas")
            }
            replication.replicas = replicas
        }
        if let milliseconds = try integer("REVOKE_REDIS_WAIT_TIMEOUT_MS", 10...60_000) { replication.wait = .milliseconds(milliseconds) }
    }

    private static func keys(_ list: String?, variable: String, role: APIKey.Role) throws(Error) -> [APIKey] {
        guard let list, !list.trimmingCharacters(in: .whitespaces).isEmpty else { return [] }
        var keys: [APIKey] = []
        for (index, entry) in list.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let pair = entry.trimmingCharacters(in: .whitespaces)
            guard let colon = pair.firstIndex(of: ":") else {
                throw Error(variable: variable, problem: "entry \(index + 1) is not name:secret")
            }
            let name = String(pair[..<colon])
            let secret = String(pair[pair.index(after: colon)...])
            guard !name.isEmpty, !secret.isEmpty else {
                throw Error(variable: variable, problem: "entry \(index + 1) needs both a name and a secret")
            }
            guard secret.utf8.count >= minimumKeyLength else {
                throw Error(
                    variable: variable,
                    problem: "the secret of \"\(name)\" is \(secret.utf8.count) bytes; a key needs at least \(minimumKeyLength) (openssl rand -base64 24 makes one)")
            }
            guard secret.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "," }), !secret.contains(where: \.isNewline) else {
                throw Error(variable: variable, problem: "the secret of \"\(name)\" must be printable ASCII without spaces or commas")
            }
            keys.append(APIKey(name: name, secret: secret, role: role))
        }
        return keys
    }
}
