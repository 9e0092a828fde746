import ArgumentParser
import Foundation
import Hummingbird
import Logging
import RevokeServer

/// `revoked`: the Revoke server. Reads its configuration and runs until SIGTERM or SIGINT.
@main
struct Revoked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoked",
        abstract: "Revoke: the JWT revocation service.",
        discussion: """
            Every option can also be set through the environment variable named in its help; a flag \
            wins over the variable. With no Redis URL, revoked starts and owns a local redis-server \
            (append-only file on) with its data under ./.revoke-data.

            Secrets are best read from files, which no process list shows: REVOKE_HMAC_SECRET_FILE, \
            REVOKE_ADMIN_KEYS_FILE, REVOKE_VERIFIER_KEYS_FILE, REVOKE_REDIS_URL_FILE and \
            REVOKE_REDIS_SENTINEL_PASSWORD_FILE each name a file holding the variable's value.

            Example:
              REVOKE_PORT=8080 revoked
              revoked --redis-url redis://:secret@10.0.0.5:6379/0
              REVOKE_REDIS_MIN_REPLICAS=1 revoked --redis-url redis-sentinel://:secret@10.0.0.7,10.0.0.8,10.0.0.9/revoke
            """
    )

    @Option(name: .long, help: "Address the API listens on (REVOKE_HOST, default 127.0.0.1).")
    var host: String?

    @Option(name: .long, help: "Port the API listens on (REVOKE_PORT, default 8080).")
    var port: String?

    @Option(name: .long, help: "redis://[:password@]host:port[/db], rediss:// (TLS), redis-sentinel://[:password@]host:port[,host:port...]/master-name[/db] or rediss-sentinel:// (REVOKE_REDIS_URL; unset: an embedded redis-server).")
    var redisURL: String?

    @Option(name: .long, help: "PEM file of the CAs to trust for rediss:// (REVOKE_REDIS_CA_FILE; unset: the system's trust store).")
    var redisCaFile: String?

    @Option(name: .long, help: "PEM file of a client certificate for rediss:// (REVOKE_REDIS_CERT_FILE).")
    var redisCertFile: String?

    @Option(name: .long, help: "PEM file of the client certificate's key (REVOKE_REDIS_KEY_FILE).")
    var redisKeyFile: String?

    @Option(name: .long, help: "Password of sentinels that require one (REVOKE_REDIS_SENTINEL_PASSWORD).")
    var redisSentinelPassword: String?

    @Option(name: .long, help: "Replicas WAIT must confirm before a write is acknowledged (REVOKE_REDIS_MIN_REPLICAS, default 0).")
    var redisMinReplicas: String?

    @Option(name: .long, help: "Milliseconds WAIT may take before a write is answered 503 (REVOKE_REDIS_WAIT_TIMEOUT_MS, default 500).")
    var redisWaitTimeoutMs: String?

    @Option(name: .long, help: "Data directory of the embedded redis-server (REVOKE_DATA_DIR, default ./.revoke-data).")
    var dataDir: String?

    @Option(name: .long, help: "Shared secret for HS256/384/512 tokens (REVOKE_HMAC_SECRET).")
    var hmacSecret: String?

    @Option(name: .long, help: "Issuer public keys as a JWKS file (REVOKE_JWKS_FILE).")
    var jwksFile: String?

    @Option(name: .long, help: "One issuer public key as a PEM file (REVOKE_PUBLIC_KEY_FILE).")
    var publicKeyFile: String?

    @Option(name: .long, help: "Required iss of tokens to revoke (REVOKE_ISSUER).")
    var issuer: String?

    @Option(name: .long, help: "Required aud of tokens to revoke (REVOKE_AUDIENCE).")
    var audience: String?

    @Option(name: .long, help: "Admin API keys, name:secret,... (REVOKE_ADMIN_KEYS).")
    var adminKeys: String?

    @Option(name: .long, help: "Verifier API keys, name:secret,... (REVOKE_VERIFIER_KEYS; unset: verifier endpoints are open).")
    var verifierKeys: String?

    @Option(name: .long, help: "Longest lifetime the issuer mints, seconds (REVOKE_MAX_TOKEN_LIFETIME, default 2592000).")
    var maxTokenLifetime: String?

    @Option(name: .long, help: "Claims a cutoff may name (REVOKE_CUTOFF_CLAIMS, default sub,sid,client_id).")
    var cutoffClaims: String?

    @Option(name: .long, help: "Redis key prefix (REVOKE_NAMESPACE, default revoke).")
    var namespace: String?

    @Option(name: .long, help: "Seconds added to every TTL and expiry test (REVOKE_CLOCK_SKEW, default 0).")
    var clockSkew: String?

    @Option(name: .long, help: "False-positive rate the snapshot's Bloom filter is sized for (REVOKE_SNAPSHOT_FALSE_POSITIVE_RATE, default 0.01).")
    var snapshotFalsePositiveRate: String?

    @Option(name: .long, help: "Seconds a built snapshot is served before it is rebuilt (REVOKE_SNAPSHOT_MAX_AGE, default 10).")
    var snapshotMaxAge: String?

    @Option(name: .long, help: "Open /v1/events streams this instance allows (REVOKE_MAX_EVENT_STREAMS, default 10000).")
    var maxEventStreams: String?

    @Option(name: .long, help: "Unsent bytes a slow event stream may hold before it is closed (REVOKE_STREAM_BUFFER_BYTES, default 1048576).")
    var streamBufferBytes: String?

    @Option(name: .long, help: "Seconds an idle HTTP connection stays open (REVOKE_IDLE_TIMEOUT, default 60).")
    var idleTimeout: String?

    @Option(name: .long, help: "Entries the event log keeps, about (REVOKE_EVENT_LOG_LENGTH, default 100000).")
    var eventLogLength: String?

    @Option(name: .long, help: "Write revocations packed where they fit: true or false (REVOKE_PACKED_RECORDS, default true).")
    var packedRecords: String?

    @Option(name: .long, help: "Event streams one client (a verifier key, else an address) may hold (REVOKE_MAX_STREAMS_PER_CLIENT, default 1000).")
    var maxStreamsPerClient: String?

    @Option(name: .long, help: "Open HTTP connections this instance accepts; more are answered 503 and closed (REVOKE_MAX_CONNECTIONS, default 16384).")
    var maxConnections: String?

    @Option(name: .long, help: "Seconds a request body may take to arrive after its head; then 408 (REVOKE_BODY_TIMEOUT, default 10).")
    var bodyTimeout: String?

    @Option(name: .long, help: "Seconds a request head may take to arrive after its first byte; then the connection closes (REVOKE_HEAD_TIMEOUT, default 10).")
    var headTimeout: String?

    @Option(name: .long, help: "Bytes the replays of the event log of one client may write a second (REVOKE_REPLAY_BYTES_PER_SECOND, default 1048576).")
    var replayBytesPerSecond: String?

    @Option(name: .long, help: "Tokens whose signature verified that are remembered, so a gateway sending one again costs no signature check; 0 for none (REVOKE_VERIFIED_TOKEN_CACHE, default 10000).")
    var verifiedTokenCache: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (REVOKE_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        var variables = ProcessInfo.processInfo.environment
        for (name, flag) in [
            ("REVOKE_HOST", host), ("REVOKE_PORT", port), ("REVOKE_REDIS_URL", redisURL), ("REVOKE_DATA_DIR", dataDir),
            ("REVOKE_LOG_LEVEL", logLevel), ("REVOKE_HMAC_SECRET", hmacSecret), ("REVOKE_JWKS_FILE", jwksFile),
            ("REVOKE_PUBLIC_KEY_FILE", publicKeyFile), ("REVOKE_ISSUER", issuer), ("REVOKE_AUDIENCE", audience),
            ("REVOKE_ADMIN_KEYS", adminKeys), ("REVOKE_VERIFIER_KEYS", verifierKeys),
            ("REVOKE_MAX_TOKEN_LIFETIME", maxTokenLifetime), ("REVOKE_CUTOFF_CLAIMS", cutoffClaims),
            ("REVOKE_NAMESPACE", namespace), ("REVOKE_CLOCK_SKEW", clockSkew),
            ("REVOKE_SNAPSHOT_FALSE_POSITIVE_RATE", snapshotFalsePositiveRate), ("REVOKE_SNAPSHOT_MAX_AGE", snapshotMaxAge),
            ("REVOKE_MAX_EVENT_STREAMS", maxEventStreams), ("REVOKE_STREAM_BUFFER_BYTES", streamBufferBytes),
            ("REVOKE_IDLE_TIMEOUT", idleTimeout), ("REVOKE_EVENT_LOG_LENGTH", eventLogLength),
            ("REVOKE_PACKED_RECORDS", packedRecords),
            ("REVOKE_REDIS_CA_FILE", redisCaFile), ("REVOKE_REDIS_CERT_FILE", redisCertFile), ("REVOKE_REDIS_KEY_FILE", redisKeyFile),
            ("REVOKE_REDIS_SENTINEL_PASSWORD", redisSentinelPassword), ("REVOKE_REDIS_MIN_REPLICAS", redisMinReplicas),
            ("REVOKE_REDIS_WAIT_TIMEOUT_MS", redisWaitTimeoutMs), ("REVOKE_MAX_STREAMS_PER_CLIENT", maxStreamsPerClient),
            ("REVOKE_MAX_CONNECTIONS", maxConnections), ("REVOKE_BODY_TIMEOUT", bodyTimeout), ("REVOKE_HEAD_TIMEOUT", headTimeout),
            ("REVOKE_REPLAY_BYTES_PER_SECOND", replayBytesPerSecond), ("REVOKE_VERIFIED_TOKEN_CACHE", verifiedTokenCache),
        ] {
            if let flag {
                variables[name] = flag
                // A flag wins over the variable, and so over its file.
                variables[name + "_FILE"] = nil
            }
        }
        var configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration(variables: variables)
        } catch {
            Self.fail("revoked: bad configuration: \(error)")
        }
        var level = Logger.Level.info
        if let text = variables["REVOKE_LOG_LEVEL"], !text.isEmpty {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                Self.fail("revoked: bad configuration: REVOKE_LOG_LEVEL: must be one of trace, debug, info, notice, warning, error, critical, not \"\(text)\"")
            }
            level = parsed
        }
        let chosenLevel = level
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label)
            handler.logLevel = chosenLevel
            return handler
        }
        let logger = Logger(label: "revoked")
        // A flag's value is in the process list (ps, /proc/<pid>/cmdline) for every local user.
        for (flag, variable, given) in [
            ("--hmac-secret", "REVOKE_HMAC_SECRET", hmacSecret != nil), ("--admin-keys", "REVOKE_ADMIN_KEYS", adminKeys != nil),
            ("--verifier-keys", "REVOKE_VERIFIER_KEYS", verifierKeys != nil),
            ("--redis-sentinel-password", "REVOKE_REDIS_SENTINEL_PASSWORD", redisSentinelPassword != nil),
            ("--redis-url", "REVOKE_REDIS_URL", redisURL?.contains("@") == true),
        ] where given {
            logger.warning("\(flag) puts a secret in the process list, where every local user can read it: set \(variable)_FILE (or \(variable)) instead")
        }
        Self.raiseOpenFileLimit(for: configuration.maximumConnections, logger: logger)
        if configuration.redis == nil && configuration.adminKeys.isEmpty {
            // Embedded mode is for trying Revoke out: make the admin endpoints usable at once.
            let key = APIKey.generatedAdmin()
            configuration.adminKeys = [key]
            // To stderr, which is unbuffered: on stdout a pipe (a supervisor, a container log)
            // would hold the line back until exit.
            FileHandle.standardError.write(
                Data("revoked: no REVOKE_ADMIN_KEYS set; admin key for this run: \(key.secret) (name \(key.name))\n".utf8))
        }
        let app: any ApplicationProtocol
        do {
            app = try await buildApplication(configuration: configuration, logger: logger)
        } catch let error as ServerConfiguration.Error {
            Self.fail("revoked: bad configuration: \(error)")
        }
        try await app.runService()
    }

    /// Raises the soft limit on open files to the hard one, as servers that hold many
    /// connections do; warns when even that cannot hold `REVOKE_MAX_CONNECTIONS`.
    private static func raiseOpenFileLimit(for connections: Int, logger: Logger) {
        #if os(Linux)
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            #if os(Linux)
            limit.rlim_cur = limit.rlim_max
            #else
            limit.rlim_cur = min(limit.rlim_max, rlim_t(OPEN_MAX))
            #endif
            _ = setrlimit(resource, &limit)
            _ = getrlimit(resource, &limit)
        }
        // Redis connections, the listening socket, files: a little room beside the clients.
        let needed = rlim_t(connections + 64)
        if limit.rlim_cur < needed {
            logger.warning(
                "the open-file limit (\(limit.rlim_cur)) is below REVOKE_MAX_CONNECTIONS + 64 (\(needed)): connections past it are refused by the kernel, not answered; raise it (ulimit -n, LimitNOFILE=) or lower REVOKE_MAX_CONNECTIONS")
        }
    }

    private static func fail(_ line: String) -> Never {
        FileHandle.standardError.write(Data((line + "\n").utf8))
        Foundation.exit(2)
    }
}
