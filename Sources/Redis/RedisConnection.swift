import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Sends commands to Redis and awaits their replies.
///
/// Both ``RedisConnection`` and ``RedisClient`` conform; scripts and streams are written once,
/// over this protocol.
public protocol RedisCommandSender: Sendable {
    /// Sends one command and returns its reply.
    /// - Parameters:
    ///   - command: The command.
    ///   - timeout: How long to wait for the reply; nil for the configured command timeout.
    /// - Throws: ``RedisError``; an error reply is thrown as ``RedisError/Code/commandFailed``.
    func send(_ command: RedisCommand, timeout: Duration?) async throws -> RedisValue

    /// Sends many commands in one write and returns their replies in order. Error replies are
    /// returned as ``RedisValue/error(_:)`` in their place, so one failing command does not
    /// hide the others.
    func send(batch commands: [RedisCommand], timeout: Duration?) async throws -> [RedisValue]
}

extension RedisCommandSender {
    /// Sends one command with the configured command timeout.
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        try await send(command, timeout: nil)
    }

    /// Sends many commands in one write with the configured command timeout.
    public func send(batch commands: [RedisCommand]) async throws -> [RedisValue] {
        try await send(batch: commands, timeout: nil)
    }
}

/// One connection to Redis over SwiftNIO, with automatic pipelining.
///
/// Any number of tasks may send at once. Their commands are encoded into one shared buffer
/// under a lock, and a single task on the channel's event loop writes whatever has gathered
/// in one write, so concurrent callers share writes and reads the way `redis-benchmark -P`
/// does. Replies are decoded by hiredis' reader and handed back in order. Nothing here ever
/// blocks a thread: callers suspend, the event loop only does non-blocking I/O.
///
/// If a reply does not arrive within its timeout the connection is closed and every
/// outstanding command fails with ``RedisError/Code/timeout``: a Redis that stopped
/// answering cannot hold a caller longer than that.
public final class RedisConnection: RedisCommandSender {
    private let channel: any Channel
    private let queue: CommandQueue
    private let commandTimeout: TimeAmount

    private init(channel: any Channel, queue: CommandQueue, commandTimeout: Duration) {
        self.channel = channel
        self.queue = queue
        self.commandTimeout = TimeAmount(commandTimeout)
    }

    /// Opens a connection and performs its handshake (`AUTH`, `SELECT`, `PING`).
    /// - Parameters:
    ///   - configuration: Where Redis is and how long to wait.
    ///   - eventLoop: The event loop the connection's I/O runs on.
    /// - Throws: ``RedisError`` with code ``RedisError/Code/connectionFailed``.
    public static func connect(
        to configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    ) async throws -> RedisConnection {
        let queue = CommandQueue()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(queue: queue))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RedisError(.connectionFailed, "could not connect to \(configuration)", underlying: error)
        }
        let connection = RedisConnection(channel: channel, queue: queue, commandTimeout: configuration.commandTimeout)
        do {
            try await connection.handshake(configuration)
        } catch {
            connection.close()
            if let error = error as? RedisError, error.code == .connectionFailed { throw error }
            throw RedisError(.connectionFailed, "handshake with \(configuration) failed", underlying: error)
        }
        return connection
    }

    private func handshake(_ configuration: RedisConfiguration) async throws {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(RedisCommand("AUTH", username, password))
            } else {
                commands.append(RedisCommand("AUTH", password))
            }
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", String(configuration.database)))
        }
        commands.append(RedisCommand("PING"))
        let replies = try await send(batch: commands, timeout: configuration.connectTimeout)
        for (command, reply) in zip(commands, replies) {
            if case .error(let message) = reply {
                // The reply to AUTH never contains the password; the command is named, not shown.
                throw RedisError(.connectionFailed, "\(command.name) was refused: \(message)")
            }
        }
    }

    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RedisValue {
        let deadline = NIODeadline.now() + (timeout.map(TimeAmount.init) ?? commandTimeout)
        let reply = try await withUnsafeThrowingContinuation { continuation in
            enqueue([command], waiter: .single(continuation, deadline: deadline))
        }
        if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
        return reply
    }

    public func send(batch commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RedisValue] {
        if commands.isEmpty { return [] }
        let deadline = NIODeadline.now() + (timeout.map(TimeAmount.init) ?? commandTimeout)
        return try await withUnsafeThrowingContinuation { continuation in
            enqueue(commands, waiter: .batch(continuation, expected: commands.count, received: [], deadline: deadline))
        }
    }

    /// Encodes the commands into the shared buffer; the first caller after a write schedules
    /// the next one on the event loop, where everything gathered by then goes out together.
    private func enqueue(_ commands: [RedisCommand], waiter: ReplyWaiter) {
        let outcome = queue.state.withLock { state -> EnqueueOutcome in
            if let failure = state.failure { return .failed(failure) }
            for command in commands { command.encode(into: &state.buffer) }
            state.waiters.append(waiter)
            if state.writeScheduled { return .queued }
            state.writeScheduled = true
            return .scheduleWrite
        }
        switch outcome {
        case .queued:
            break
        case .failed(let error):
            waiter.fail(error)
        case .scheduleWrite:
            let channel = self.channel
            let queue = self.queue
            channel.eventLoop.execute {
                let (bytes, waiters, failure) = queue.takePending()
                if let failure {
                    for waiter in waiters { waiter.fail(failure) }
                    return
                }
                channel.writeAndFlush(PendingWrite(bytes: bytes, waiters: waiters), promise: nil)
            }
        }
    }

    /// Closes the connection; outstanding commands fail with ``RedisError/Code/connectionClosed``.
    public func close() {
        channel.close(mode: .all, promise: nil)
    }

    /// Returns when the connection has closed, for whatever reason.
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }

    /// Whether the connection is still open.
    public var isOpen: Bool { queue.state.withLock { $0.failure == nil } }
}

private enum EnqueueOutcome {
    case queued, scheduleWrite
    case failed(RedisError)
}

/// A caller waiting for replies: one command, or a batch answered by one continuation.
enum ReplyWaiter: Sendable {
    case single(UnsafeContinuation<RedisValue, any Error>, deadline: NIODeadline)
    case batch(UnsafeContinuation<[RedisValue], any Error>, expected: Int, received: [RedisValue], deadline: NIODeadline)

    var deadline: NIODeadline {
        switch self {
        case .single(_, let deadline), .batch(_, _, _, let deadline): deadline
        }
    }

    func fail(_ error: RedisError) {
        switch self {
        case .single(let continuation, _): continuation.resume(throwing: error)
        case .batch(let continuation, _, _, _): continuation.resume(throwing: error)
        }
    }
}

/// What callers have encoded but the event loop has not written yet.
///
/// Shared between callers on any thread and the channel handler on its event loop; every
/// access goes through the mutex.
final class CommandQueue: Sendable {
    struct State {
        var buffer = ByteBuffer()
        var waiters: [ReplyWaiter] = []
        var writeScheduled = false
        /// Set once the connection has closed; later commands fail at once with it.
        var failure: RedisError?
    }

    let state = Mutex(State())

    /// Takes everything gathered so far, leaving the queue empty.
    func takePending() -> (ByteBuffer, [ReplyWaiter], RedisError?) {
        state.withLock { state in
            let taken = (state.buffer, state.waiters, state.failure)
            state.buffer = ByteBuffer()
            state.buffer.reserveCapacity(taken.0.readableBytes)
            state.waiters = []
            state.waiters.reserveCapacity(taken.1.count)
            state.writeScheduled = false
            return taken
        }
    }

    /// Marks the queue closed and returns the commands that were still waiting to be written.
    func close(with error: RedisError) -> [ReplyWaiter] {
        state.withLock { state in
            if state.failure == nil { state.failure = error }
            let waiters = state.waiters
            state.waiters = []
            state.buffer.clear()
            return waiters
        }
    }
}

/// One write's worth of commands and the callers waiting for their replies.
struct PendingWrite: Sendable {
    var bytes: ByteBuffer
    var waiters: [ReplyWaiter]
}

/// Lives in the channel pipeline: writes pending commands, decodes replies with hiredis and
/// resumes their callers in order, and enforces the command timeout.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = PendingWrite
    typealias OutboundOut = ByteBuffer

    private let queue: CommandQueue
    private let reader: HiredisReader
    private var inFlight = CircularBuffer<ReplyWaiter>(initialCapacity: 64)
    private var timer: Scheduled<Void>?
    private var failed = false

    init(queue: CommandQueue) throws {
        self.queue = queue
        self.reader = try HiredisReader()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let pending = unwrapOutboundIn(data)
        if failed {
            let error = RedisError(.connectionClosed, "the connection to Redis is closed")
            for waiter in pending.waiters { waiter.fail(error) }
            promise?.fail(error)
            return
        }
        inFlight.append(contentsOf: pending.waiters)
        context.write(wrapOutboundOut(pending.bytes), promise: promise)
        armTimer(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try bytes.withUnsafeReadableBytes { raw in try reader.feed(raw) }
            while let reply = try reader.next() {
                try deliver(reply)
            }
        } catch let error as RedisError {
            fail(context: context, with: error)
        } catch {
            fail(context: context, with: RedisError(.protocolError, "could not read a reply", underlying: error))
        }
    }

    private func deliver(_ reply: RedisValue) throws(RedisError) {
        guard let head = inFlight.popFirst() else {
            throw RedisError(.protocolError, "Redis sent a reply nobody was waiting for")
        }
        switch head {
        case .single(let continuation, _):
            continuation.resume(returning: reply)
        case .batch(let continuation, let expected, var received, let deadline):
            if received.isEmpty { received.reserveCapacity(expected) }
            received.append(reply)
            if received.count == expected {
                continuation.resume(returning: received)
            } else {
                inFlight.prepend(.batch(continuation, expected: expected, received: received, deadline: deadline))
            }
        }
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, let first = inFlight.first else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: first.deadline) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            guard let head = handler.inFlight.first else { return }
            if head.deadline <= .now() {
                handler.fail(context: context, with: RedisError(.timeout, "Redis did not answer in time"))
            } else {
                handler.armTimer(context: context)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "the connection to Redis closed"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "the connection to Redis closed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, with: RedisError(.connectionClosed, "the connection to Redis failed", underlying: error))
    }

    private func fail(context: ChannelHandlerContext, with error: RedisError) {
        failAll(error)
        context.close(promise: nil)
    }

    /// Fails every caller still waiting, written or not, and refuses new commands.
    private func failAll(_ error: RedisError) {
        failed = true
        timer?.cancel()
        timer = nil
        let unwritten = queue.close(with: error)
        let written = inFlight
        inFlight.removeAll()
        for waiter in written { waiter.fail(error) }
        for waiter in unwritten { waiter.fail(error) }
    }
}
