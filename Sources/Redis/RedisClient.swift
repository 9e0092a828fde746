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
/// while none is, so callers answer "try later" instead of waiting.
///
/// One connection is enough: Redis executes commands on one thread, and automatic
/// pipelining lets any number of concurrent callers share it. Blocking commands
/// (`XREAD BLOCK`) hold a connection; give them a ``RedisClient`` of their own.
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
    }

    /// Keeps a connection up until graceful shutdown or cancellation, then closes it.
    public func run() async throws {
        var backoff = Backoff(initial: configuration.reconnectBackoff, maximum: configuration.maximumReconnectBackoff)
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
                let connection = try await RedisConnection.connect(
                    to: configuration, eventLoop: eventLoopGroup.next())
                let stillRunning = state.withLock { state -> Bool in
                    if case .shutDown = state { return false }
                    state = .connected(connection)
                    return true
                }
                guard stillRunning else {
                    connection.close()
                    return
                }
                logger.info("connected to Redis", metadata: ["redis.address": "\(configuration)"])
                backoff.reset()
                failures = 0
                await cancelWhenGracefulShutdown {
                    await withTaskCancellationHandler {
                        await connection.waitUntilClosed()
                    } onCancel: {
                        connection.close()
                    }
                }
                connection.close()
                state.withLock { state in
                    if case .connected = state { state = .disconnected }
                }
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.warning("lost the connection to Redis", metadata: ["redis.address": "\(configuration)"])
            } catch {
                failures += 1
                // Redis starting a moment after us is normal: the first misses are debug lines.
                // Then one warning, and one in twenty while Redis stays away.
                if failures <= 3 || failures % 20 == 0 {
                    logger.log(
                        level: failures < 3 ? .debug : .warning,
                        "cannot reach Redis",
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

    private var connection: RedisConnection {
        get throws {
            let current = state.withLock { state -> RedisConnection? in
                if case .connected(let connection) = state { return connection }
                return nil
            }
            guard let current, current.isOpen else {
                throw RedisError(.unavailable, "Redis is not reachable right now")
            }
            return current
        }
    }

    /// Whether a connection is up right now.
    public var isConnected: Bool { (try? connection) != nil }

    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RedisValue {
        try await connection.send(command, timeout: timeout)
    }

    public func send(batch commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RedisValue] {
        try await connection.send(batch: commands, timeout: timeout)
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
