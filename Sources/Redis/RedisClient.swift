import Logging
import NIOCore
import NIOPosix
import Retry
import ServiceLifecycle
import Synchronization

/// A Redis client that keeps one pipelined connection up for as long as it runs.
///
/// ``run()`` connects, waits for the connection to drop, and reconnects with exponential
/// backoff; it returns on graceful shutdown or cancellation. Meanwhile ``send(_:timeout:)``
/// uses whatever connection is up, and fails at once with ``RedisError/Code/unavailable``
/// while none is (``RedisError/Code/connectionClosed`` in the moment between a connection
/// closing and this client noticing; both are ``RedisError/isUnavailable``), so callers answer
/// "try later" instead of waiting.
///
/// One connection is enough: Redis executes commands on one thread, and automatic
/// pipelining lets any number of concurrent callers share it. Blocking commands
/// (`XREAD BLOCK`, `WAIT`) hold a connection; give them a ``RedisClient`` of their own.
///
/// With ``RedisConfiguration/sentinel``, every (re)connection asks the sentinels for the
/// primary and confirms it with `ROLE` (``SentinelResolver``); while connected, the client
/// follows `+switch-master` and drops its connection when the primary moves, or when Redis
/// answers `READONLY` (the server it reached was demoted), then resolves the primary again.
public final class RedisClient: RedisCommandSender, Service {
    private enum State {
        case disconnected
        case connected(RedisConnection)
        case shutDown
    }

    /// Where Redis is, timeouts and backoff.
    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State.disconnected)
    private let tlsContext: Result<RedisTLSContext, RedisError>?
    private let resolver: SentinelResolver?

    /// Creates a client; nothing connects until ``run()``.
    /// - Parameters:
    ///   - configuration: Where Redis is, timeouts and backoff.
    ///   - eventLoopGroup: Where the connection's I/O runs.
    ///   - logger: Connection events are logged at info, failures at warning.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "revoke.redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.tlsContext = configuration.tls.map { settings in Result { () throws(RedisError) in try RedisTLSContext(settings) } }
        self.resolver = configuration.sentinel.map { SentinelResolver(configuration: configuration, sentinel: $0) }
    }

    /// Opens a connection to the server, or to the primary the sentinels name.
    private func connect() async throws -> (RedisConnection, RedisAddress) {
        let eventLoop = eventLoopGroup.next()
        let tls = try tlsContext?.get()
        if let resolver { return try await resolver.connectToPrimary(eventLoop: eventLoop, tlsContext: tls) }
        let connection = try await RedisConnection.connect(to: configuration, eventLoop: eventLoop, tlsContext: tls)
        return (connection, RedisAddress(host: configuration.host, port: configuration.port))
    }

    /// Keeps a connection up until graceful shutdown or cancellation, then closes it.
    public func run() async throws {
        // Behind Sentinel a promotion takes a few seconds: try often enough to follow it at once.
        let maximumBackoff = resolver == nil ? configuration.maximumReconnectBackoff : min(configuration.maximumReconnectBackoff, .milliseconds(500))
        var backoff = Backoff(initial: configuration.reconnectBackoff, maximum: maximumBackoff)
        var failures = 0
        defer {
            let last = state.withLock { state -> RedisConnection? in
                defer { state = .shutDown }
                if case .connected(let connection) = state { return connection }
                return nil
            }
            last?.close()
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let (connection, address) = try await connect()
                let stillRunning = state.withLock { state -> Bool in
                    if case .shutDown = state { return false }
                    state = .connected(connection)
                    return true
                }
                guard stillRunning else {
                    connection.close()
                    return
                }
                logger.info("connected to Redis", metadata: ["redis.address": "\(configuration)", "redis.server": "\(address)"])
                backoff.reset()
                failures = 0
                await cancelWhenGracefulShutdown {
                    await withTaskCancellationHandler {
                        await self.waitUntilClosedOrMoved(connection, address: address)
                    } onCancel: {
                        connection.close()
                    }
                }
                connection.close()
                state.withLock { state in
                    if case .connected = state { state = .disconnected }
                }
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.warning("lost the connection to Redis", metadata: ["redis.address": "\(configuration)", "redis.server": "\(address)"])
            } catch {
                failures += 1
                // Redis starting a moment after us is normal: the first misses are debug lines.
                // Then one warning, and one in twenty while Redis stays away. A certificate that
                // does not verify is no passing state: it is an error at once.
                let tlsFailure = RedisTLSContext.tlsFailure(in: error) != nil
                if failures <= 3 || failures % 20 == 0 {
                    logger.log(
                        level: tlsFailure && failures == 1 ? .error : failures < 3 ? .debug : .warning,
                        tlsFailure ? "cannot reach Redis: TLS failed" : "cannot reach Redis",
                        metadata: ["redis.address": "\(configuration)", "redis.error": "\(error)", "redis.attempt": "\(failures)"])
                }
            }
            do {
                try await Task.sleep(for: backoff.next())
            } catch {
                return
            }
        }
    }

    /// Returns when `connection` closes; behind Sentinel, also closes it (and returns) when
    /// the sentinels announce another primary.
    private func waitUntilClosedOrMoved(_ connection: RedisConnection, address: RedisAddress) async {
        guard let resolver else { return await connection.waitUntilClosed() }
        let eventLoop = eventLoopGroup.next()
        let tls = try? tlsContext?.get()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await connection.waitUntilClosed() }
            group.addTask {
                if await resolver.watch(primary: address, eventLoop: eventLoop, tlsContext: tls, logger: self.logger) {
                    connection.close()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// The connection commands go to. One that closed a moment ago, before ``run()`` noticed,
    /// is still returned: its queue fails the command at once with `connectionClosed`, without
    /// a second lock here on every command.
    private var connection: RedisConnection {
        get throws(RedisError) {
            let current = state.withLock { state -> RedisConnection? in
                if case .connected(let connection) = state { return connection }
                return nil
            }
            guard let current else { throw RedisError(.unavailable, "Redis is not reachable right now") }
            return current
        }
    }

    /// Whether a connection is up right now.
    public var isConnected: Bool { (try? connection)?.isOpen == true }

    public nonisolated(nonsending) func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RedisValue {
        let connection = try self.connection
        do {
            return try await connection.send(command, timeout: timeout)
        } catch let error as RedisError where error.code == .commandFailed && Self.isReadOnly(error.message) {
            dropDemoted(connection)
            throw error
        }
    }

    public nonisolated(nonsending) func send(batch commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RedisValue] {
        // Nothing to send needs no connection: an empty batch is answered even while Redis is away.
        if commands.isEmpty { return [] }
        let connection = try self.connection
        let replies = try await connection.send(batch: commands, timeout: timeout)
        if resolver != nil { dropIfDemoted(connection, replies: replies) }
        return replies
    }

    public func send(
        batch commands: [RedisCommand], timeout: Duration? = nil, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<[RedisValue], RedisError>) -> Void
    ) {
        if commands.isEmpty { return eventLoop.runOnLoop { completion(.success([])) } }
        let connection: RedisConnection
        do {
            connection = try self.connection
        } catch {
            return eventLoop.runOnLoop { completion(.failure(error)) }
        }
        guard resolver != nil else { return connection.send(batch: commands, timeout: timeout, on: eventLoop, completion: completion) }
        connection.send(batch: commands, timeout: timeout, on: eventLoop) { [self] result in
            if case .success(let replies) = result { dropIfDemoted(connection, replies: replies) }
            completion(result)
        }
    }

    /// Drops the connection when a batch's replies hold a `READONLY`. Only behind Sentinel does
    /// that mean anything to do, so callers scan the replies only there.
    private func dropIfDemoted(_ connection: RedisConnection, replies: [RedisValue]) {
        if replies.contains(where: { if case .error(let message) = $0 { Self.isReadOnly(message) } else { false } }) {
            dropDemoted(connection)
        }
    }

    /// `READONLY`, alone or inside a script's error: the server is a replica.
    private static func isReadOnly(_ message: String) -> Bool {
        message.hasPrefix("READONLY") || message.contains("-READONLY") || message.contains(" READONLY ")
    }

    /// Behind Sentinel, a server that answers `READONLY` was demoted: drop the connection so the
    /// primary is resolved again. (Without Sentinel, the configured server is all there is.)
    private func dropDemoted(_ connection: RedisConnection) {
        guard resolver != nil else { return }
        logger.warning("Redis answered READONLY (it is a replica now); resolving the primary again")
        connection.close()
    }

    /// Waits until a connection is up, for start-up and tests.
    /// - Throws: ``RedisError`` with code ``RedisError/Code/unavailable`` after `timeout`.
    public func waitUntilConnected(timeout: Duration = .seconds(10)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !isConnected {
            guard clock.now < deadline else {
                throw RedisError(.unavailable, "no connection to \(configuration) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
