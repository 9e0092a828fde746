import Logging
import NIOCore
import Synchronization

/// Finds the primary through Redis Sentinel, as Sentinel's client guidelines describe:
/// the sentinels are asked in turn (`SENTINEL get-master-addr-by-name`), the one that answered
/// is asked first next time, and the address it names is used only once `ROLE` there says
/// `master`: during a failover a sentinel may still name the old primary, now a replica, and
/// nothing is ever written to a replica.
///
/// While connected, ``watch(primary:eventLoop:tlsContext:logger:)`` follows one sentinel's
/// `+switch-master` announcements; ``RedisClient`` closes its connection when the primary
/// moves, and on a lost connection or a `READONLY` reply, and resolves again.
final class SentinelResolver: Sendable {
    let configuration: RedisConfiguration
    let sentinel: RedisSentinelConfiguration
    /// The sentinels in the order they are asked: the last one that answered first.
    private let order: Mutex<[RedisAddress]>

    init(configuration: RedisConfiguration, sentinel: RedisSentinelConfiguration) {
        self.configuration = configuration
        self.sentinel = sentinel
        self.order = Mutex(sentinel.sentinels)
    }

    /// How to reach one sentinel: its own password, no database, a short connect timeout (a
    /// dead sentinel must not delay asking the next).
    private func configuration(forSentinel address: RedisAddress) -> RedisConfiguration {
        var sentinelConfiguration = configuration.aimed(at: address)
        sentinelConfiguration.username = nil
        sentinelConfiguration.password = sentinel.password
        sentinelConfiguration.database = 0
        sentinelConfiguration.connectTimeout = min(configuration.connectTimeout, .seconds(1))
        return sentinelConfiguration
    }

    private var addressQuery: RedisCommand { RedisCommand("SENTINEL", "get-master-addr-by-name", sentinel.masterName) }

    /// The primary's address in a `get-master-addr-by-name` reply; nil when the sentinel does
    /// not know the name.
    private func primary(in reply: RedisValue) throws(RedisError) -> RedisAddress? {
        if reply.isNull { return nil }
        guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].string, !host.isEmpty,
            let port = parts[1].integer.flatMap({ Int(exactly: $0) }), (1...65535).contains(port)
        else { throw RedisError(.unexpectedReply, "SENTINEL get-master-addr-by-name answered \(reply)") }
        return RedisAddress(host: host, port: port)
    }

    /// Asks the sentinels in turn for the primary's address.
    /// - Throws: ``RedisError/Code/connectionFailed`` when none names one, with each one's answer.
    func primaryAddress(eventLoop: any EventLoop, tlsContext: RedisTLSContext?) async throws -> RedisAddress {
        var failures: [String] = []
        for address in order.withLock({ $0 }) {
            do {
                let connection = try await RedisConnection.connect(
                    to: configuration(forSentinel: address), eventLoop: eventLoop, tlsContext: tlsContext)
                defer { connection.close() }
                guard let primary = try primary(in: try await connection.send(addressQuery)) else {
                    failures.append("\(address) does not monitor \"\(sentinel.masterName)\"")
                    continue
                }
                order.withLock { order in
                    if let index = order.firstIndex(of: address), index > 0 { order.insert(order.remove(at: index), at: 0) }
                }
                return primary
            } catch {
                failures.append("\(address): \(error)")
            }
        }
        throw RedisError(
            .connectionFailed, "no sentinel named a primary for \"\(sentinel.masterName)\": \(failures.joined(separator: "; "))")
    }

    /// Connects to the primary the sentinels name, once `ROLE` there confirms it.
    func connectToPrimary(eventLoop: any EventLoop, tlsContext: RedisTLSContext?) async throws -> (RedisConnection, RedisAddress) {
        let address = try await primaryAddress(eventLoop: eventLoop, tlsContext: tlsContext)
        let connection = try await RedisConnection.connect(to: configuration.aimed(at: address), eventLoop: eventLoop, tlsContext: tlsContext)
        do {
            let role = try await connection.role()
            guard role == "master" else {
                throw RedisError(
                    .connectionFailed,
                    "\(address), named primary of \"\(sentinel.masterName)\" by the sentinels, answers ROLE \(role); a failover is under way")
            }
        } catch {
            connection.close()
            throw error
        }
        return (connection, address)
    }

    /// Follows the sentinels until one says the primary is no longer `primary`: returns true
    /// then (on `+switch-master`, or when a sentinel, on (re)subscribing, names another), false
    /// when cancelled. A sentinel that goes away is replaced by the next.
    func watch(primary: RedisAddress, eventLoop: any EventLoop, tlsContext: RedisTLSContext?, logger: Logger) async -> Bool {
        let name = sentinel.masterName
        while !Task.isCancelled {
            for address in order.withLock({ $0 }) {
                if Task.isCancelled { return false }
                let (events, continuation) = AsyncStream<RedisAddress>.makeStream()
                // `+switch-master` carries "<name> <old-ip> <old-port> <new-ip> <new-port>".
                let onPush: @Sendable (RedisValue) -> Void = { message in
                    guard case .array(let parts) = message, parts.count == 3, parts[0].string == "message",
                        let text = parts[2].string
                    else { return }
                    let fields = text.split(separator: " ")
                    guard fields.count == 5, fields[0] == name, let port = Int(fields[4]) else { return }
                    continuation.yield(RedisAddress(host: String(fields[3]), port: port))
                }
                do {
                    let connection = try await RedisConnection.connect(
                        to: configuration(forSentinel: address), eventLoop: eventLoop, tlsContext: tlsContext, onPush: onPush)
                    connection.whenClosed { continuation.finish() }
                    // Both in one write: a switch after the query is announced on the subscription.
                    let replies = try await connection.send(batch: [addressQuery, RedisCommand("SUBSCRIBE", "+switch-master")])
                    if case .error(let message) = replies[1] { throw RedisError(.commandFailed, message) }
                    if let named = try self.primary(in: replies[0]), named != primary {
                        connection.close()
                        logger.warning(
                            "a sentinel names another primary; reconnecting",
                            metadata: ["redis.sentinel": "\(address)", "redis.primary": "\(named)", "redis.was": "\(primary)"])
                        return true
                    }
                    let switched = await withTaskCancellationHandler {
                        for await announced in events where announced != primary { return Optional(announced) }
                        return nil
                    } onCancel: {
                        connection.close()
                    }
                    connection.close()
                    if let switched {
                        logger.warning(
                            "Sentinel announced a new primary (+switch-master); reconnecting",
                            metadata: ["redis.sentinel": "\(address)", "redis.primary": "\(switched)", "redis.was": "\(primary)"])
                        return true
                    }
                } catch {
                    continuation.finish()
                    logger.debug("cannot follow a sentinel", metadata: ["redis.sentinel": "\(address)", "redis.error": "\(error)"])
                }
            }
            do { try await Task.sleep(for: .milliseconds(500)) } catch { return false }
        }
        return false
    }
}
