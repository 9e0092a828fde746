import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes
import RevokeCore
import RevokeHTTP
import RevokeStore

/// What a connection needs to answer `POST /v1/check` and `/v1/forward-auth` itself
/// (``CheckChannelHandler``).
struct DirectChecks: Sendable {
    let controller: CheckController
    let forwardAuth: ForwardAuth
    let keyring: APIKeyring
    let metrics: ServerMetrics
    let logger: Logger
    /// The `Server` header, as Hummingbird writes it on every other response.
    let serverName: String
}

/// Answers `POST /v1/check` and `/v1/forward-auth` (any method, any path under it), the
/// verifiers' and the gateways' hot paths, on the connection's event loop: from the decoded
/// request to the Redis round trip (a callback on this loop) to the response, without a task
/// (a forwarded token not verified before is verified in one). Every other request goes on to
/// Hummingbird, as does one of these that arrives while Hummingbird still answers one before
/// it. What a check means (key, media type, body, query, store, errors, metrics) is the same
/// code either way: ``APIKeyring/authorize(_:required:)``,
/// ``CheckQuery/init(json:cutoffClaims:)``, ``RevocationStore/check(_:on:completion:)``,
/// ``APIError/init(answering:logger:counters:)`` and ``ServerMetrics/request(method:route:status:duration:)``;
/// what a forwarded request means is ``ForwardAuth/answer(_:on:completion:)``.
///
/// It sits after Hummingbird's connection-state handler, so the idle timeout, the head timeout
/// and graceful shutdown see its requests as their own. Responses leave in request order: while
/// it answers a check, whatever arrives behind it (pipelined requests, errors, events) is held
/// (reading stops while anything is held); once its response is written the held parts are
/// taken in order.
final class CheckChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A request this handler answers.
    private struct Check {
        enum Kind {
            case check
            /// Its header fields, its method (`HEAD` is answered without a body), and its
            /// metrics route.
            case forwardAuth(HTTPFields, method: HTTPRequest.Method, route: String)
        }

        let kind: Kind
        let started: ContinuousClock.Instant
        /// The body so far: the first part itself (most bodies are one), later parts appended.
        var body: ByteBuffer?
        /// The answer already decided before the body ends (key, media type, size).
        var refusal: APIError?
        /// `Connection: close`: the connection closes once the response is written.
        let close: Bool

        /// Whether its body is read (a check's is; a forwarded request's is not).
        var readsBody: Bool {
            if case .check = kind { true } else { false }
        }

        /// Its method and its route, as metrics name them.
        var route: (HTTPRequest.Method, String) {
            switch kind {
            case .check: (.post, "/v1/check")
            case .forwardAuth(_, let method, let route): (method, route)
            }
        }
    }

    private enum Own {
        case reading(Check)
        case answering
    }

    private enum Held {
        case part(HTTPRequestPart)
        case error(any Error)
        case event(Any)
    }

    private let checks: DirectChecks
    private var own: Own?
    /// What arrived while a check was answered, in order.
    private var held = CircularBuffer<Held>()
    /// Requests handed on to Hummingbird whose response has not ended.
    private var handedOn = 0
    /// A read asked for while a check was answered.
    private var readDeferred = false
    private var date = HTTPDate()

    init(_ checks: DirectChecks) {
        self.checks = checks
    }

    private var answering: Bool {
        if case .answering? = own { true } else { false }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if answering || !held.isEmpty {
            held.append(.part(part))
        } else {
            take(part, context: context)
        }
    }

    /// Takes one part in order; true when it went on to Hummingbird.
    @discardableResult
    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) -> Bool {
        switch (own, part) {
        case (.reading(let check)?, .body) where !check.readsBody:
            // A forwarded request's body is not read.
            return false
        case (.reading(var check)?, .body(var bytes)):
            own = nil
            if check.refusal == nil {
                if (check.body?.readableBytes ?? 0) + bytes.readableBytes > Limits.maximumBodyBytes {
                    check.refusal = APIError(httpStatus: .contentTooLarge, message: "")
                    check.body = nil
                } else if check.body == nil {
                    check.body = bytes
                } else {
                    check.body!.writeBuffer(&bytes)
                }
            }
            own = .reading(check)
            return false
        case (.reading(let check)?, .end):
            own = .answering
            answer(check, context: context)
            return false
        case (nil, .head(let head)) where handedOn == 0 && Self.isCheck(head):
            own = .reading(begin(head))
            return false
        case (nil, .head(let head)) where handedOn == 0 && ForwardAuth.serves(path: head.path ?? ""):
            let path = head.path ?? ""
            let route = path.utf8.count > ForwardAuth.route.utf8.count && path.utf8.dropFirst(ForwardAuth.route.utf8.count).first == UInt8(ascii: "/")
                ? ForwardAuth.route + "/**" : ForwardAuth.route
            own = .reading(
                Check(
                    kind: .forwardAuth(head.headerFields, method: head.method, route: route), started: .now, body: nil, refusal: nil,
                    close: head.headerFields[.connection] == "close"))
            return false
        case (nil, .head):
            handedOn += 1
            context.fireChannelRead(wrapInboundOut(part))
            return true
        case (nil, _):
            context.fireChannelRead(wrapInboundOut(part))
            return true
        case (.reading?, .head), (.answering?, _):
            // Cannot happen: the decoder ends every request before the next head, and nothing is
            // taken while a check is answered. A connection that gets here is not trusted further.
            context.close(promise: nil)
            return false
        }
    }

    /// `POST /v1/check`, with or without a query string.
    private static func isCheck(_ head: HTTPRequest) -> Bool {
        guard head.method == .post, let path = head.path?.utf8 else { return false }
        let route = "/v1/check".utf8
        guard path.starts(with: route) else { return false }
        let rest = path.dropFirst(route.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "?")
    }

    /// The key and the media type, decided from the head as the route's middleware and
    /// handler decide them.
    private func begin(_ head: HTTPRequest) -> Check {
        var check = Check(kind: .check, started: .now, body: nil, refusal: nil, close: head.headerFields[.connection] == "close")
        do {
            _ = try checks.keyring.authorize(head.headerFields, required: .verifier)
            try Request.requireMediaType(MediaType.json, contentType: head.headerFields[.contentType])
        } catch {
            check.refusal = error
        }
        return check
    }

    private func answer(_ check: Check, context: ChannelHandlerContext) {
        if case .forwardAuth(let fields, _, _) = check.kind {
            let handler = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            checks.forwardAuth.answer(fields, on: context.eventLoop) { answer in
                let (handler, context) = handler.value
                handler.respond(to: check, status: answer.status, headers: answer.headers, body: answer.body, context: context)
            }
            return
        }
        if let refusal = check.refusal { return respond(to: check, with: .failure(refusal), context: context) }
        let query: CheckQuery
        do {
            query = try CheckQuery(json: try Request.jsonObject(from: check.body ?? ByteBuffer()), cutoffClaims: checks.controller.store.cutoffClaims)
        } catch {
            return respond(to: check, with: .failure(error), context: context)
        }
        let handler = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        checks.controller.store.check(query, on: context.eventLoop) { result in
            let (handler, context) = handler.value
            handler.respond(to: check, with: result.mapError { $0 }, context: context)
        }
    }

    private func respond(to check: Check, with result: Result<CheckVerdict, any Error>, context: ChannelHandlerContext) {
        switch result {
        case .success(let verdict):
            checks.controller.checks.increment()
            respond(to: check, status: .ok, headers: [:], body: verdict.json, context: context)
        case .failure(let error):
            let error = APIError(answering: error, logger: checks.logger, counters: checks.metrics.storeErrors)
            respond(to: check, status: error.status, headers: error.headers, body: error.body, context: context)
        }
    }

    private func respond(to check: Check, status: HTTPResponse.Status, headers: HTTPFields, body: JSONValue?, context: ChannelHandlerContext) {
        let bytes = body?.serialized() ?? []
        var head = HTTPResponse(status: status)
        head.headerFields.reserveCapacity(4 + headers.count)
        if body != nil { head.headerFields[.contentType] = MediaType.jsonAnswer }
        head.headerFields[.contentLength] = String(bytes.count)
        head.headerFields.append(contentsOf: headers)
        head.headerFields[.date] = date.now()
        head.headerFields[.server] = checks.serverName
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let (method, route) = check.route
        if method != .head && !bytes.isEmpty {
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: bytes))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        checks.metrics.request(method: method.rawValue, route: route, status: Int(status.code), duration: .now - check.started)
        own = nil
        if check.close {
            held.removeAll()
            context.close(promise: nil)
            return
        }
        takeHeld(context: context)
    }

    /// Takes what was held while a check was answered, until it is all taken or another check
    /// is being answered; then, with nothing held, reads again if a read was asked for meanwhile.
    private func takeHeld(context: ChannelHandlerContext) {
        var handedOnParts = false
        while !answering, let next = held.popFirst() {
            switch next {
            case .part(let part): handedOnParts = take(part, context: context) || handedOnParts
            case .error(let error): context.fireErrorCaught(error)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            }
        }
        // Hummingbird's inbound stream delivers what it was given at the end of a read.
        if handedOnParts { context.fireChannelReadComplete() }
        if held.isEmpty && readDeferred {
            readDeferred = false
            context.read()
        }
    }

    /// Reading stops once something is held behind a check (a client pipelining faster than
    /// its checks are answered), not merely while one is answered: a client that waits for each
    /// answer must not make the event loop drop and restore its interest in the socket
    /// (two `epoll_ctl`s) on every check.
    func read(context: ChannelHandlerContext) {
        if held.isEmpty {
            context.read()
        } else {
            readDeferred = true
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // (Hummingbird's 400 for a request that never decoded ends a response nothing counted.)
        if case .end = unwrapOutboundIn(data) { handedOn = max(0, handedOn - 1) }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch own {
        case .reading?:
            // The check's own request is broken: Hummingbird answers it (400) and closes.
            own = nil
            context.fireErrorCaught(error)
        case .answering?:
            held.append(.error(error))
        case nil where !held.isEmpty:
            held.append(.error(error))
        case nil:
            context.fireErrorCaught(error)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if answering || !held.isEmpty {
            held.append(.event(event))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        held.removeAll()
        context.fireChannelInactive()
    }
}

/// The `Date` header's value (IMF-fixdate), formatted once per second.
struct HTTPDate {
    private var second = Int.min
    private var text = ""

    mutating func now() -> String {
        let now = time(nil)
        if now != second {
            second = now
            text = Self.format(now)
        }
        return text
    }

    static func format(_ seconds: Int) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

