import HummingbirdCore
import RevokeCore
import Logging
import NIOCore
import Redis
import NIOHTTPTypes

/// HTTP/1.1 as Hummingbird serves it, with the contract's limits on connections: one with no
/// request in progress is closed after the idle timeout (`REVOKE_IDLE_TIMEOUT`, Hummingbird's
/// own), and one whose request head has not arrived within `headTimeout` of its first byte is
/// closed (a client that sends a byte a minute must not hold a connection for ever). Checks
/// are answered on the connection's event loop (``CheckChannelHandler``).
struct LimitedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: TimeAmount
    let headTimeout: TimeAmount
    let checks: DirectChecks

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let watch = HeadWatch(timeout: headTimeout)
        let http1 = HTTP1Channel(
            responder: responder, configuration: .init(additionalChannelHandlers: [HeadWatch.Parts(watch)], idleTimeout: idleTimeout))
        return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(HeadWatch.Bytes(watch), position: .first)
            // After the connection's state, which must see the checks' requests and responses too.
            try pipeline.addHandler(CheckChannelHandler(checks), position: .after(try pipeline.handler(type: HTTPConnectionStateHandler.self)))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
        }
    }
}

/// Watches one connection for a request head that started and does not finish: its first
/// byte (seen by ``Bytes``, before the HTTP decoder) starts the clock, the decoded head (seen by
/// ``Parts``, after it) stops it.
///
/// One timer per connection, not one per request: a request only notes when its head began (a
/// read of the monotonic clock). The timer, armed by the first head that begins with none
/// armed, looks when it fires: a head still unfinished since its deadline closes the
/// connection, one begun later arms it again for its own deadline, none lets it lapse.
///
/// `@unchecked Sendable`: it is made for one connection and only its two handlers touch it,
/// both on that connection's event loop (the configuration's `@Sendable` closure merely hands
/// it over).
final class HeadWatch: @unchecked Sendable {
    let timeout: TimeAmount
    /// Heads decoded and responses finished: equal while the connection waits for a head.
    private var heads = 0
    private var responses = 0
    /// When the head being awaited began (its first byte); nil while none has begun.
    private var headBegan: NIODeadline?
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    private var awaitingHead: Bool { heads == responses }

    fileprivate func sawBytes(context: ChannelHandlerContext) {
        guard awaitingHead, headBegan == nil else { return }
        let began = NIODeadline.now()
        headBegan = began
        if timer == nil { arm(at: began + timeout, channel: context.channel) }
    }

    private func arm(at deadline: NIODeadline, channel: any Channel) {
        timer = channel.eventLoop.scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.timer = nil
            guard self.awaitingHead, let began = self.headBegan else { return }
            let due = began + self.timeout
            if due <= .now() {
                channel.close(promise: nil)
            } else {
                self.arm(at: due, channel: channel)
            }
        }
    }

    fileprivate func sawHead() {
        heads += 1
        headBegan = nil
    }

    fileprivate func finishedResponse() {
        responses += 1
    }

    fileprivate func closed() {
        timer?.cancel()
        timer = nil
    }

    /// Before the HTTP decoder: bytes.
    final class Bytes: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let watch: HeadWatch

        init(_ watch: HeadWatch) {
            self.watch = watch
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            watch.sawBytes(context: context)
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            watch.closed()
            context.fireChannelInactive()
        }
    }

    /// After the HTTP decoder: request heads in, response ends out.
    final class Parts: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        let watch: HeadWatch

        init(_ watch: HeadWatch) {
            self.watch = watch
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) { watch.sawHead() }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { watch.finishedResponse() }
            context.write(data, promise: promise)
        }
    }
}
