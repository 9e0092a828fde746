import HummingbirdCore
import RevokeCore
import Logging
import NIOCore
import EventLoopExecutor
import NIOHTTPTypes
import RevokeHTTP
import Synchronization
import HTTPTypes

/// HTTP/1.1 as Hummingbird serves it, with the contract's limits on connections: one with no
/// request in progress is closed after the idle timeout (`REVOKE_IDLE_TIMEOUT`, Hummingbird's
/// own); one whose request head has not arrived within `headTimeout` of its first byte is
/// closed; one whose request body has not arrived within `bodyTimeout` of its head is answered
/// 408 and closed (a client that sends a byte a minute must not hold a connection for ever:
/// Hummingbird's idle timer starts again at every byte); and past `connections`' limit a new
/// connection is answered 503 `overloaded` and closed, never reaching the router.
/// Checks are answered on the connection's event loop (``CheckChannelHandler``).
struct LimitedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: TimeAmount
    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    let connections: ConnectionCount
    let checks: DirectChecks

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let admitted = connections.admit()
        channel.closeFuture.whenComplete { _ in connections.release() }
        let watch = HeadWatch(headTimeout: headTimeout, bodyTimeout: bodyTimeout)
        let http1 = HTTP1Channel(
            responder: responder, configuration: .init(additionalChannelHandlers: [HeadWatch.Parts(watch)], idleTimeout: idleTimeout))
        return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            guard admitted else {
                // Nothing of it reaches HTTP: the answer is written, the rest read and dropped.
                try pipeline.addHandler(Refusal(), position: .first)
                return value
            }
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

/// The open connections of the server, and its limit (`REVOKE_MAX_CONNECTIONS`).
final class ConnectionCount: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a new connection; false when it is one too many (it still counts until it closes).
    func admit() -> Bool {
        open.add(1, ordering: .relaxed).newValue <= limit
    }

    func release() {
        open.subtract(1, ordering: .relaxed)
    }
}

/// Answers a connection past the limit with 503 `overloaded` and `Retry-After`, then closes it:
/// its output at once (the answer is the last thing it gets), the whole of it once the client
/// closes its end or after a second, whichever comes first. What the client sends is dropped.
final class Refusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    static let answer: ByteBuffer = {
        let body = APIError.unavailable(
            code: "overloaded", message: "this instance has as many connections open as it allows (REVOKE_MAX_CONNECTIONS); retry later"
        ).body.serialized()
        return ByteBuffer(
            string: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\n"
                + "Connection: close\r\nContent-Length: \(body.count)\r\n\r\n" + String(decoding: body, as: UTF8.self))
    }()

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context: context)
        context.fireChannelActive()
    }

    private var refused = false

    private func refuse(context: ChannelHandlerContext) {
        guard !refused else { return }
        refused = true
        let channel = context.channel
        context.writeAndFlush(NIOAny(Self.answer)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Watches one connection for a request that started and does not finish: a head's first
/// byte (seen by ``Bytes``, before the HTTP decoder) starts the head's clock, the decoded head
/// (seen by ``Parts``, after it) stops it and starts the body's, and the request's end stops
/// that.
///
/// One timer per connection, not one per request: a request only notes when its head or body
/// began (a read of the monotonic clock). The timer is armed for the earliest clock running
/// (moved only when a clock starts that ends sooner), and looks when it fires: a head unfinished past its deadline closes the connection; a
/// body unfinished past its deadline is answered 408 `request_timeout` (when no answer to it
/// has begun) and closes it; a clock started later arms it again for its own deadline; none
/// lets it lapse.
///
/// `@unchecked Sendable`: it is made for one connection and only its two handlers touch it,
/// both on that connection's event loop (the configuration's `@Sendable` closure merely hands
/// it over).
final class HeadWatch: @unchecked Sendable {
    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    /// Heads decoded and responses finished: equal while the connection waits for a head.
    private var heads = 0
    private var responses = 0
    /// When the head being awaited began (its first byte); nil while none has begun.
    private var headBegan: NIODeadline?
    /// When the body being awaited began (its head decoded); nil while none is awaited.
    private var bodyBegan: NIODeadline?
    /// Whether an answer to the request whose body is awaited has begun (a 413, a 415).
    private var answering = false
    private var timer: Scheduled<Void>?
    /// When ``timer`` fires.
    private var timerDeadline: NIODeadline?
    /// ``Parts``' context, where a 408 is written.
    fileprivate var parts: ChannelHandlerContext?

    init(headTimeout: TimeAmount, bodyTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
    }

    private var awaitingHead: Bool { heads == responses && bodyBegan == nil }

    fileprivate func sawBytes(context: ChannelHandlerContext) {
        guard awaitingHead, headBegan == nil else { return }
        let began = NIODeadline.now()
        headBegan = began
        arm(at: began + headTimeout, channel: context.channel)
    }

    /// The earliest deadline of the clocks running, if any.
    private var nextDeadline: NIODeadline? {
        let head = awaitingHead ? headBegan.map { $0 + headTimeout } : nil
        let body = bodyBegan.map { $0 + bodyTimeout }
        switch (head, body) {
        case (let head?, let body?): return min(head, body)
        case (let head?, nil): return head
        case (nil, let body?): return body
        case (nil, nil): return nil
        }
    }

    /// Arms the timer for `deadline`, unless it is armed for one as early already.
    private func arm(at deadline: NIODeadline, channel: any Channel) {
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = channel.eventLoop.scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.timerDeadline = nil
            let now = NIODeadline.now()
            if let began = self.bodyBegan, began + self.bodyTimeout <= now {
                self.bodyTimedOut(channel: channel)
            } else if self.awaitingHead, let began = self.headBegan, began + self.headTimeout <= now {
                channel.close(promise: nil)
            } else if let due = self.nextDeadline {
                self.arm(at: due, channel: channel)
            }
        }
    }

    /// 408 with the contract's error body where nothing has answered the request yet; then
    /// the connection closes, since the rest of its body would be read as a request.
    private func bodyTimedOut(channel: any Channel) {
        bodyBegan = nil
        // Only when every earlier request is answered and this one's answer has not begun (a
        // pipelined request's body may stall while an earlier response is still being written).
        guard responses == heads - 1, !answering, let context = parts else {
            channel.close(promise: nil)
            return
        }
        let body = ByteBuffer(
            bytes: APIError(
                .requestTimeout, code: "request_timeout",
                message: "the request body did not arrive within \(bodyTimeout.nanoseconds / 1_000_000_000) s (REVOKE_BODY_TIMEOUT)"
            ).body.serialized())
        let head = HTTPResponse(
            status: .requestTimeout,
            headerFields: [
                .contentType: MediaType.jsonAnswer, .connection: "close", .contentLength: String(body.readableBytes),
            ])
        context.write(NIOAny(HTTPResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPResponsePart.body(body)), promise: nil)
        context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    fileprivate func sawHead(channel: any Channel) {
        heads += 1
        headBegan = nil
        answering = false
        let began = NIODeadline.now()
        bodyBegan = began
        arm(at: began + bodyTimeout, channel: channel)
    }

    fileprivate func sawEnd() {
        bodyBegan = nil
    }

    fileprivate func beganResponse() {
        answering = true
    }

    fileprivate func finishedResponse() {
        responses += 1
    }

    fileprivate func closed() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        parts = nil
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

        func handlerAdded(context: ChannelHandlerContext) {
            watch.parts = context
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            watch.parts = nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: watch.sawHead(channel: context.channel)
            case .end: watch.sawEnd()
            case .body: break
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            switch unwrapOutboundIn(data) {
            case .head(let head) where head.status.kind != .informational: watch.beganResponse()
            case .end: watch.finishedResponse()
            default: break
            }
            context.write(data, promise: promise)
        }
    }
}
