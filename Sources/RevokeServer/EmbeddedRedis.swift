import Logging
import Redis
import RedisSupervisor
import Retry
import ServiceLifecycle

/// The `redis-server` that `revoked` starts and owns when no `REVOKE_REDIS_URL` is given:
/// loopback only, a password generated at each start, append-only file on, data in one
/// directory. If it dies it is started again on the same port with the same password, so
/// the Redis client simply reconnects; on shutdown it is stopped after everything that uses it.
public final class EmbeddedRedis: Service {
    /// How the server is started: directory, port and password are fixed up front so the
    /// client's configuration is known before the first start.
    public let options: RedisServerProcess.Options
    private let logger: Logger

    /// - Parameters:
    ///   - directory: The data directory (`./.revoke-data` by default).
    ///   - logger: Starts, exits and restarts are logged.
    public init(directory: String, logger: Logger) throws {
        self.options = RedisServerProcess.Options(
            directory: directory, port: try RedisServerProcess.freeLoopbackPort(), appendOnly: true,
            password: RedisServerProcess.randomPassword())
        self.logger = logger
    }

    /// The configuration that reaches this server.
    public var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: options.port!, password: options.password)
    }

    public func run() async throws {
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let server: RedisServerProcess
            do {
                server = try await RedisServerProcess.start(options)
            } catch {
                logger.error("could not start the embedded redis-server", metadata: ["error": "\(error)"])
                try await Task.sleep(for: backoff.next())
                continue
            }
            logger.info(
                "embedded redis-server started",
                metadata: ["redis.pid": "\(server.pid)", "redis.port": "\(server.port)", "redis.dir": "\(options.directory)"])
            backoff.reset()
            let exitedByItself = await withGracefulShutdownHandler {
                _ = await withTaskCancellationHandler {
                    await server.waitUntilExit()
                } onCancel: {
                    Task { await server.stop() }
                }
                return !Task.isCancelled && !Task.isShuttingDownGracefully
            } onGracefulShutdown: {
                Task { await server.stop() }
            }
            if !exitedByItself {
                await server.stop()
                logger.info("embedded redis-server stopped")
                return
            }
            logger.error("embedded redis-server exited; starting it again", metadata: ["redis.log": "\(server.logTail(lines: 2))"])
        }
    }
}
