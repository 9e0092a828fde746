import Logging
import NIOCore
import NIOPosix
import NIOSSL
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
    nonisolated(nonsending) func send(_ command: RedisCommand, timeout: Duration?) async throws -> RedisValue

    /// Sends many commands in one write and returns their replies in order. Error replies are
    /// returned as ``RedisValue/error(_:)`` in their place, so one failing command does not
    /// hide the others. An empty batch is answered at once, with no reply and no need of a
    /// connection.
    nonisolated(nonsending) func send(batch commands: [RedisCommand], timeout: Duration?) async throws -> [RedisValue]

    /// Sends many commands in one write, as ``send(batch:timeout:)`` does, and calls
    /// `completion` on `eventLoop` with their replies (or a ``RedisError``) instead of resuming
    /// a task: a channel handler waits for Redis without leaving its event loop, and without a
    /// future to allocate. On the connection's own event loop `completion` is called as the reply
    /// is read; from another loop it is one hop away.
    func send(
        batch commands: [RedisCommand], timeout: Duration?, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<[RedisValue], RedisError>) -> Void)
}

extension RedisCommandSender {
    /// Sends one command with the configured command timeout.
    public nonisolated(nonsending) func send(_ command: RedisCommand) async throws -> RedisValue {
        try await send(command, timeout: nil)
    }

    /// Sends many commands in one write with the configured command timeout.
    public nonisolated(nonsending) func send(batch commands: [RedisCommand]) async throws -> [RedisValue] {
        try await send(batch: commands, timeout: nil)
    }
}

/// One connection to Redis over SwiftNIO, with automatic pipelining.
///
/// Any number of tasks may send at once. Their commands are encoded into one shared buffer
/// under a lock, and a single task on the channel's event loop writes whatever has gathered
/// in one write, so concurrent callers share writes and reads the way `redis-benchmark -P`
/// does. Callers running on the connection's event loop (an `EventLoopTaskExecutor`, or
/// callbacks) would keep that write waiting until all of them had run: there, once as many
/// commands are pending as Redis has yet to answer, they are written at once, and Redis works on
/// them while the loop runs the other callers. Replies are decoded by hiredis' reader and handed
/// back in order. Nothing here ever blocks a thread: callers suspend, the event loop only does non-blocking I/O.
///
/// A command whose reply does not arrive within its own timeout fails alone, with
/// ``RedisError/Code/timeout``: the callers behind it keep waiting for theirs (one slow script
/// or a long `XREAD` is not an outage). Its reply, when it comes, is read and dropped. A reply
/// still missing a command timeout later means Redis stopped answering: the connection closes
/// and every outstanding command fails, so a dead Redis cannot hold a caller past its timeout
/// and the client reconnects.
public final class RedisConnection: RedisCommandSender {
    private let channel: any Channel
    /// The channel's event loop, read once (every command asks whether it runs there).
    private let eventLoop: any EventLoop
    private let queue: CommandQueue
    /// The handler, for callers on its loop to read what Redis still owes (the early write).
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let commandTimeout: TimeAmount

    private init(channel: any Channel, handler: NIOLoopBound<RedisChannelHandler>, queue: CommandQueue, commandTimeout: Duration) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.handler = handler
        self.queue = queue
        self.commandTimeout = TimeAmount(commandTimeout)
    }

    /// Opens a connection and performs its handshake (`AUTH`, `SELECT`, `PING`), over TLS
    /// when the configuration has ``RedisConfiguration/tls``.
    /// - Parameters:
    ///   - configuration: Where Redis is and how long to wait (its ``RedisConfiguration/sentinel``
    ///     is not consulted: this opens exactly `host:port`).
    ///   - eventLoop: The event loop the connection's I/O runs on.
    ///   - tlsContext: The TLS context to use; nil builds one from ``RedisConfiguration/tls``.
    ///   - onPush: Receives what Redis sends unasked (pub/sub messages, after `SUBSCRIBE`); nil
    ///     treats such a reply as a protocol error.
    /// - Throws: ``RedisError`` with code ``RedisError/Code/connectionFailed``.
    public static func connect(
        to configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(),
        tlsContext: RedisTLSContext? = nil,
        onPush: (@Sendable (RedisValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        var tlsContext = tlsContext
        if tlsContext == nil, let tls = configuration.tls { tlsContext = try RedisTLSContext(tls) }
        let queue = CommandQueue()
        let channel: any Channel
        let handler: NIOLoopBound<RedisChannelHandler>
        // SNI and the certificate check use the host name; an IP address is checked against the
        // certificate's IP SANs by the address connected to.
        let serverHostname = RedisTLSContext.isIPAddress(configuration.host) ? nil : configuration.host
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { [tlsContext] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsContext {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tlsContext.context, serverHostname: serverHostname))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            RedisChannelHandler(queue: queue, grace: TimeAmount(configuration.commandTimeout), onPush: onPush))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
            handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self), eventLoop: channel.eventLoop)
            }.get()
        } catch {
            throw RedisError(.connectionFailed, "could not connect to \(configuration)", underlying: error)
        }
        let connection = RedisConnection(channel: channel, handler: handler, queue: queue, commandTimeout: configuration.commandTimeout)
        do {
            try await connection.handshake(configuration)
        } catch {
            connection.close()
            if let failure = RedisTLSContext.tlsFailure(in: error) {
                throw RedisError(.connectionFailed, "TLS with \(configuration) failed: \(failure)", underlying: error)
            }
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

    public nonisolated(nonsending) func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RedisValue {
        let wait = timeout.map(TimeAmount.init) ?? commandTimeout
        // Resumed exactly once: the waiter is in exactly one place at a time (the queue, then
        // the handler's in-flight list), and whoever takes it out resumes it: the enqueue
        // that finds the connection failed, the reply, the timer when its deadline passes (it
        // then stays in the list without its continuation, to consume the late reply), or the
        // failure that empties both.
        let reply = try await withUnsafeThrowingContinuation { continuation in
            enqueue(waiter: ReplyWaiter(.single(continuation), expected: 1, timeout: wait)) { command.encode(into: &$0) }
        }
        if case .error(let message) = reply { throw RedisError(.commandFailed, message) }
        return reply
    }

    public nonisolated(nonsending) func send(batch commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RedisValue] {
        if commands.isEmpty { return [] }
        let wait = timeout.map(TimeAmount.init) ?? commandTimeout
        // Resumed exactly once, as in send(_:timeout:).
        return try await withUnsafeThrowingContinuation { continuation in
            enqueue(waiter: ReplyWaiter(.batch(continuation), expected: commands.count, timeout: wait)) { buffer in
                for command in commands { command.encode(into: &buffer) }
            }
        }
    }

    public func send(
        batch commands: [RedisCommand], timeout: Duration? = nil, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<[RedisValue], RedisError>) -> Void
    ) {
        if commands.isEmpty { return eventLoop.runOnLoop { completion(.success([])) } }
        // The waiter calls its callback on this connection's loop (``enqueue`` sees to that even
        // when the connection had already failed). A callback for another loop is wrapped once
        // here to hop there.
        let callback: @Sendable (Result<[RedisValue], RedisError>) -> Void
        if eventLoop === self.eventLoop {
            callback = completion
        } else {
            callback = { result in eventLoop.execute { completion(result) } }
        }
        let wait = timeout.map(TimeAmount.init) ?? commandTimeout
        // Called exactly once, as a continuation is resumed in send(_:timeout:).
        enqueue(waiter: ReplyWaiter(.callback(callback), expected: commands.count, timeout: wait)) { buffer in
            for command in commands { command.encode(into: &buffer) }
        }
    }

    /// Encodes the commands into the shared buffer; the first caller after a write schedules
    /// the next one on the event loop, where everything gathered by then goes out together.
    private func enqueue(waiter: ReplyWaiter, encode: (inout ByteBuffer) -> Void) {
        let outcome = queue.state.withLock { state -> EnqueueOutcome in
            if let failure = state.failure { return .failed(failure) }
            encode(&state.buffer)
            state.commands += waiter.expected
            state.waiters.append(waiter)
            if state.writeScheduled { return .queued(state.commands) }
            state.writeScheduled = true
            return .scheduleWrite
        }
        switch outcome {
        case .queued(let pending):
            // A caller on the event loop holds it: the write scheduled behind it waits for every
            // caller queued there (the rule: ``RedisConnectionStateMachine/writesEarly(pending:unanswered:)``).
            if eventLoop.inEventLoop && RedisConnectionStateMachine.writesEarly(pending: pending, unanswered: handler.value.unanswered) {
                Self.flush(queue, channel)
            }
        case .failed(let error):
            // A callback runs on the connection's loop, even to hear that it failed at once.
            if case .callback = waiter.caller {
                return eventLoop.runOnLoop {
                    var waiter = waiter
                    waiter.fail(error)
                }
            }
            var waiter = waiter
            waiter.fail(error)
        case .scheduleWrite:
            eventLoop.execute { [queue, channel] in Self.flush(queue, channel) }
        }
    }

    /// Writes whatever is pending (on the event loop), or fails it once the connection failed.
    private static func flush(_ queue: CommandQueue, _ channel: any Channel) {
        switch queue.takePending(startingAt: .now()) {
        case .failure(let failure, let waiters):
            for var waiter in waiters { waiter.fail(failure) }
        case .write(let write):
            channel.writeAndFlush(write, promise: nil)
        case .nothing:
            break
        }
    }

    /// Closes the connection; outstanding commands fail with ``RedisError/Code/connectionClosed``.
    public func close() {
        channel.close(mode: .all, promise: nil)
    }

    /// Calls `body` once the connection has closed, for whatever reason.
    public func whenClosed(_ body: @escaping @Sendable () -> Void) {
        channel.closeFuture.whenComplete { _ in body() }
    }

    /// Returns when the connection has closed, for whatever reason.
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }

    /// Whether the connection is still open.
    public var isOpen: Bool { queue.state.withLock { $0.failure == nil } }

    /// The server's replication role (`ROLE`): `master`, `slave` or `sentinel`.
    public func role() async throws -> String {
        let reply = try await send(RedisCommand("ROLE"))
        guard let role = reply.array?.first?.string else { throw RedisError(.unexpectedReply, "ROLE did not return [role, ...]") }
        return role
    }
}

extension EventLoop {
    /// Runs `body` at once when called on this loop, else as the loop's next task.
    func runOnLoop(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}

private enum EnqueueOutcome {
    case queued(Int)
    case scheduleWrite
    case failed(RedisError)
}

/// A caller waiting for replies: one command, or a batch answered by one continuation or
/// callback, with its deadline. Once its deadline has passed it is *abandoned*: its caller was told, and it
/// only waits to consume its replies.
struct ReplyWaiter: Sendable {
    enum Caller: Sendable {
        case single(UnsafeContinuation<RedisValue, any Error>)
        case batch(UnsafeContinuation<[RedisValue], any Error>)
        case callback(@Sendable (Result<[RedisValue], RedisError>) -> Void)
    }

    /// Nil once abandoned or answered.
    private(set) var caller: Caller?
    /// Replies still to come, and those received before the last (for a batch).
    private(set) var expected: Int
    private(set) var received: [RedisValue] = []
    /// How long it may wait; its deadline counts from when it is written.
    let timeout: TimeAmount
    private(set) var deadline: NIODeadline

    init(_ caller: Caller, expected: Int, timeout: TimeAmount) {
        self.caller = caller
        self.expected = expected
        self.timeout = timeout
        // Set when it is written (``start(at:)``): until then no timer looks at it.
        self.deadline = .distantFuture
        // A batch of one gets its array when answered: a waiter is copied as it moves from the
        // queue to the handler, and an empty array costs those copies nothing.
        switch caller {
        case .batch, .callback: if expected > 1 { received.reserveCapacity(expected) }
        case .single: break
        }
    }

    var isAbandoned: Bool { caller == nil }

    /// Counts its deadline from `now`, when it is written.
    mutating func start(at now: NIODeadline) {
        deadline = now + timeout
    }

    /// A caller's answer, to give it (``resume()``) once the state that answered it is final.
    struct Answer {
        let caller: Caller
        /// The last reply (a single command's).
        let reply: RedisValue
        /// Every reply, in order (a batch's, a callback's).
        let replies: [RedisValue]

        func resume() {
            switch caller {
            case .single(let continuation): continuation.resume(returning: reply)
            case .batch(let continuation): continuation.resume(returning: replies)
            case .callback(let body): body(.success(replies))
            }
        }
    }

    enum Taken {
        /// More replies are to come.
        case waiting
        /// It has all it waited for: its caller's answer, nil when it was abandoned.
        case done(Answer?)
    }

    /// Takes one reply.
    mutating func take(_ reply: RedisValue) -> Taken {
        expected -= 1
        switch caller {
        case .batch?, .callback?: received.append(reply)
        case .single?, nil: break
        }
        guard expected == 0 else { return .waiting }
        return .done(caller.take().map { Answer(caller: $0, reply: reply, replies: received) })
    }

    /// Gives up its caller (returned, to be told it took too long) and waits `grace` from `now`
    /// for its replies.
    mutating func abandon(at now: NIODeadline, grace: TimeAmount) -> Caller? {
        received = []
        deadline = now + grace
        return caller.take()
    }

    /// Fails its caller (if it still has one).
    mutating func fail(_ error: RedisError) {
        caller.take()?.fail(error)
    }
}

extension ReplyWaiter.Caller {
    /// Resumes the caller with `error`.
    func fail(_ error: RedisError) {
        switch self {
        case .single(let continuation): continuation.resume(throwing: error)
        case .batch(let continuation): continuation.resume(throwing: error)
        case .callback(let body): body(.failure(error))
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
        /// The commands the waiters sent.
        var commands = 0
        var writeScheduled = false
        /// Set once the connection has closed; later commands fail at once with it.
        var failure: RedisError?
    }

    let state = Mutex(State())

    enum Taken {
        case write(PendingWrite)
        case failure(RedisError, [ReplyWaiter])
        case nothing
    }

    /// Takes everything gathered so far, leaving the queue empty, with each waiter's deadline
    /// counted from `now` (set in place, so no waiter is copied for it).
    func takePending(startingAt now: NIODeadline) -> Taken {
        state.withLock { state in
            state.writeScheduled = false
            if let failure = state.failure {
                defer {
                    state.waiters = []
                    state.commands = 0
                }
                return .failure(failure, state.waiters)
            }
            if state.waiters.isEmpty { return .nothing }
            var earliest = NIODeadline.distantFuture
            for index in state.waiters.indices {
                state.waiters[index].start(at: now)
                earliest = min(earliest, state.waiters[index].deadline)
            }
            let write = PendingWrite(bytes: state.buffer, waiters: state.waiters, commands: state.commands, earliestDeadline: earliest)
            state.commands = 0
            state.buffer = ByteBuffer()
            state.buffer.reserveCapacity(write.bytes.readableBytes)
            state.waiters = []
            state.waiters.reserveCapacity(write.waiters.count)
            return .write(write)
        }
    }

    /// Marks the queue closed and returns the commands that were still waiting to be written.
    func close(with error: RedisError) -> [ReplyWaiter] {
        state.withLock { state in
            if state.failure == nil { state.failure = error }
            let waiters = state.waiters
            state.waiters = []
            state.commands = 0
            state.buffer.clear()
            return waiters
        }
    }
}

/// One write's worth of commands and the callers waiting for their replies.
struct PendingWrite: Sendable {
    var bytes: ByteBuffer
    /// Their deadlines already counted from the write.
    var waiters: [ReplyWaiter]
    /// The commands in `bytes`.
    var commands: Int
    var earliestDeadline: NIODeadline
}

/// Lives in the channel pipeline and performs what ``RedisConnectionStateMachine`` decides:
/// writes pending commands, decodes replies with hiredis and answers their callers in order,
/// keeps the one timer, and closes the channel.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = PendingWrite
    typealias OutboundOut = ByteBuffer

    private let queue: CommandQueue
    private let reader: HiredisReader
    private let onPush: (@Sendable (RedisValue) -> Void)?
    private var machine: RedisConnectionStateMachine
    /// Set for ``RedisConnectionStateMachine/timerDeadline``.
    private var timer: Scheduled<Void>?

    /// Commands written whose replies have not arrived (read on this loop by callers deciding
    /// whether to write early).
    var unanswered: Int { machine.unanswered }

    init(queue: CommandQueue, grace: TimeAmount, onPush: (@Sendable (RedisValue) -> Void)? = nil) throws {
        self.queue = queue
        self.machine = RedisConnectionStateMachine(grace: grace)
        self.onPush = onPush
        self.reader = try HiredisReader()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch machine.write(unwrapOutboundIn(data)) {
        case .write(let bytes, let deadline):
            if let deadline { setTimer(for: deadline, context: context) }
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .fail(let waiters, let error):
            for var waiter in waiters { waiter.fail(error) }
            promise?.fail(error)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        // Every reply this read completes is decoded before any is handed out (see
        // ``RedisConnectionStateMachine/repliesArrived(_:)``).
        var failure: RedisError?
        var arrived: [RedisValue] = []
        do {
            try bytes.withUnsafeReadableBytes { raw in try reader.feed(raw) }
            while let reply = try reader.next() { arrived.append(reply) }
        } catch let error as RedisError {
            failure = error
        } catch {
            failure = RedisError(.protocolError, "could not read a reply", underlying: error)
        }
        machine.repliesArrived(arrived.count)
        // A caller answered here may close the connection: the rest then have no one to go to.
        replies: for reply in arrived where machine.isOpen {
            switch machine.reply(reply, takesPushes: onPush != nil) {
            case .answer(let answer): answer.resume()
            case .none: break
            case .push(let value): onPush?(value)
            case .close(let error):
                failure = error
                break replies
            }
        }
        if let failure { fail(context: context, with: failure) }
    }

    private func setTimer(for deadline: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        let timedOut = RedisError(.timeout, "Redis did not answer in time")
        switch machine.timerFired(now: .now()) {
        case .timeOut(let callers, let next):
            // Set before the callers hear: one that sends again at once may need it sooner.
            if let next { setTimer(for: next, context: context) }
            for caller in callers { caller.fail(timedOut) }
        case .close(let callers, let error):
            for caller in callers { caller.fail(timedOut) }
            fail(context: context, with: error)
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
        timer?.cancel()
        timer = nil
        let written = machine.closed(error)
        let unwritten = queue.close(with: error)
        for var waiter in written { waiter.fail(error) }
        for var waiter in unwritten { waiter.fail(error) }
    }
}
