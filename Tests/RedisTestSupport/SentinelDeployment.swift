import Foundation
import Redis
import RedisSupervisor
import Synchronization

/// A primary, its replicas and three sentinels, each a `redis-server` of this process's on a
/// free loopback port, all with one generated password, the sentinels watching the primary
/// under ``masterName`` with a short `down-after-milliseconds`.
public final class SentinelDeployment: Sendable {
    public let masterName = "revoke-primary"
    public let directory: String
    public let password: String
    public let sentinels: [RedisServerProcess]
    /// The data nodes by port: the first primary and its replicas (and whoever restarts them).
    private let nodes: Mutex<[Int: RedisServerProcess]>
    /// With TLS: the certificates, and each server's TLS port by its clear-text port. Nodes
    /// replicate and sentinels watch them over TLS; clear text stays for the harness.
    public let tls: TestCertificates?
    private let tlsPorts: [Int: Int]

    private init(
        directory: String, password: String, sentinels: [RedisServerProcess], nodes: [Int: RedisServerProcess],
        tls: TestCertificates?, tlsPorts: [Int: Int]
    ) {
        self.directory = directory
        self.password = password
        self.sentinels = sentinels
        self.nodes = Mutex(nodes)
        self.tls = tls
        self.tlsPorts = tlsPorts
    }

    /// `redis-sentinel://` (`rediss-sentinel://` with TLS, to the sentinels' TLS ports) for
    /// `revoked` (the sentinels' password goes in `REVOKE_REDIS_SENTINEL_PASSWORD`: it is the same).
    public var url: String {
        let scheme = tls == nil ? "redis-sentinel" : "rediss-sentinel"
        return "\(scheme)://:\(password)@" + sentinels.map { "127.0.0.1:\(tlsPorts[$0.port] ?? $0.port)" }.joined(separator: ",")
            + "/\(masterName)"
    }

    /// A Redis configuration of the same deployment.
    public func configuration(commandTimeout: Duration = .seconds(1)) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.tls?.caFile = tls?.caFile
        configuration.sentinel?.password = password
        configuration.commandTimeout = commandTimeout
        configuration.connectTimeout = .seconds(1)
        configuration.reconnectBackoff = .milliseconds(20)
        configuration.maximumReconnectBackoff = .milliseconds(200)
        return configuration
    }

    /// A configuration that reaches one data node directly.
    public func configuration(port: Int) -> RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, password: password, commandTimeout: .seconds(2))
    }

    /// Starts the primary, `replicas` replicas and three sentinels, and waits until every
    /// sentinel sees the replicas and the other two sentinels. With `tls`, every server also
    /// serves TLS, replicas replicate and sentinels watch over it, and ``url`` is
    /// `rediss-sentinel://`.
    public static func start(replicas: Int = 1, downAfterMilliseconds: Int = 1000, tls: Bool = false) async throws -> SentinelDeployment {
        let directory = FileManager.default.temporaryDirectory.appending(path: "revoke-sentinel-\(UUID().uuidString)").path
        let password = RedisServerProcess.randomPassword()
        let certificates = tls ? try await TestCertificates.make(in: directory) : nil
        var tlsPorts: [Int: Int] = [:]
        /// Starts a server on ports chosen now (a clear-text port; with TLS a TLS port too, whose
        /// directives `options` adds). A port can be taken before the server binds it (another
        /// test's connection): the server is started again on new ports, as
        /// `RedisServerProcess.start` does when it chooses the port itself.
        func startOnFreePorts(
            _ options: (_ port: Int, _ tlsDirectives: [String]) -> RedisServerProcess.Options
        ) async throws -> RedisServerProcess {
            var lastError: (any Error)?
            for _ in 0..<3 {
                let plain = try RedisServerProcess.freeLoopbackPort()
                let tlsPort = certificates == nil ? nil : try RedisServerProcess.freeLoopbackPort()
                do {
                    let server = try await RedisServerProcess.start(options(plain, tlsPort.map { certificates!.serverDirectives(port: $0) } ?? []))
                    if let tlsPort { tlsPorts[plain] = tlsPort }
                    return server
                } catch {
                    lastError = error
                }
            }
            throw lastError!
        }
        let dataDirectives = ["masterauth \(password)", "repl-diskless-sync yes", "repl-diskless-sync-delay 0"]
        var started: [RedisServerProcess] = []
        do {
            let primary = try await startOnFreePorts { port, tlsDirectives in
                .init(
                    directory: directory + "/node-0", port: port, appendOnly: true, password: password,
                    extraConfiguration: dataDirectives + tlsDirectives)
            }
            started.append(primary)
            // Replicas and sentinels reach the primary where clients do: its TLS port with TLS.
            let primaryPort = tlsPorts[primary.port] ?? primary.port
            for index in 1...max(replicas, 1) where replicas > 0 {
                started.append(
                    try await startOnFreePorts { port, tlsDirectives in
                        .init(
                            directory: directory + "/node-\(index)", port: port, appendOnly: true, password: password,
                            extraConfiguration: dataDirectives + tlsDirectives + ["replicaof 127.0.0.1 \(primaryPort)"])
                    })
            }
            var sentinels: [RedisServerProcess] = []
            for index in 0..<3 {
                let sentinel = try await startOnFreePorts { port, tlsDirectives in
                    .init(
                        directory: directory + "/sentinel-\(index)", port: port, appendOnly: false, password: password,
                        sentinel: true,
                        extraConfiguration: tlsDirectives + [
                            "sentinel resolve-hostnames no",
                            "sentinel monitor revoke-primary 127.0.0.1 \(primaryPort) 2",
                            "sentinel auth-pass revoke-primary \(password)",
                            "sentinel sentinel-pass \(password)",
                            "sentinel down-after-milliseconds revoke-primary \(downAfterMilliseconds)",
                            "sentinel failover-timeout revoke-primary 10000",
                            "sentinel parallel-syncs revoke-primary 1",
                        ])
                }
                sentinels.append(sentinel)
                started.append(sentinel)
            }
            let deployment = SentinelDeployment(
                directory: directory, password: password, sentinels: sentinels,
                nodes: Dictionary(uniqueKeysWithValues: started.filter { !$0.options.sentinel }.map { ($0.port, $0) }),
                tls: certificates, tlsPorts: tlsPorts)
            try await deployment.waitUntilSettled(replicas: replicas)
            return deployment
        } catch {
            for process in started { await process.kill() }
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Asks `sentinel` one command.
    public func ask(_ sentinel: RedisServerProcess, _ command: RedisCommand) async throws -> RedisValue {
        let connection = try await RedisConnection.connect(to: configuration(port: sentinel.port))
        defer { connection.close() }
        return try await connection.send(command)
    }

    /// The primary's clear-text port according to the first sentinel that answers.
    public func primaryPort() async throws -> Int {
        for sentinel in sentinels where !sentinel.hasExited {
            guard let reply = try? await ask(sentinel, RedisCommand("SENTINEL", "get-master-addr-by-name", masterName)),
                let port = reply.array?.last?.integer.map(Int.init)
            else { continue }
            return tlsPorts.first { $0.value == port }?.key ?? port
        }
        throw DeploymentError(description: "no sentinel answered")
    }

    /// Waits until every sentinel knows the other two and `replicas` replicas (a failover needs
    /// their votes and a replica to promote). The limit turns "never" into an error, not a hang.
    public func waitUntilSettled(replicas: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            var settled = true
            for sentinel in sentinels {
                let others = try? await ask(sentinel, RedisCommand("SENTINEL", "sentinels", masterName)).array?.count
                let known = try? await ask(sentinel, RedisCommand("SENTINEL", "replicas", masterName)).array?.count
                if others != 2 || (known ?? 0) < replicas { settled = false }
            }
            if settled { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DeploymentError(description: "the sentinels did not find each other and the replicas in 60 s")
    }

    /// The data node listening on `port`.
    public func node(port: Int) -> RedisServerProcess? { nodes.withLock { $0[port] } }

    /// Every data node's port.
    public var nodePorts: [Int] { nodes.withLock { Array($0.keys).sorted() } }

    /// Starts a node that was killed or stopped again, with its own options (the sentinels
    /// then make it a replica of the current primary). It comes back with its data: every node
    /// keeps an append-only file (`appendfsync always`), as `docker-compose.ha.yml` does. A node
    /// that came back empty could be promoted by a second failover (a sentinel that misses the
    /// new primary for `down-after` on a starved machine) and every node would then copy its
    /// empty dataset: acknowledged writes lost, which no `WAIT` prevents.
    @discardableResult
    public func restart(port: Int) async throws -> RedisServerProcess {
        guard let old = node(port: port) else { throw DeploymentError(description: "no node on \(port)") }
        let new = try await old.restart()
        nodes.withLock { $0[port] = new }
        return new
    }

    /// Stops every process and removes the folder.
    public func stop() async {
        for sentinel in sentinels { await sentinel.kill() }
        for node in nodes.withLock({ Array($0.values) }) { await node.kill() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public struct DeploymentError: Error, CustomStringConvertible {
        public var description: String
    }
}

/// Runs `body` with a ``SentinelDeployment`` and stops it afterwards, whatever `body` did.
public func withSentinelDeployment<Result>(
    replicas: Int = 1, tls: Bool = false, _ body: (SentinelDeployment) async throws -> Result
) async throws -> Result {
    let deployment = try await SentinelDeployment.start(replicas: replicas, tls: tls)
    do {
        let result = try await body(deployment)
        await deployment.stop()
        return result
    } catch {
        await deployment.stop()
        throw error
    }
}
