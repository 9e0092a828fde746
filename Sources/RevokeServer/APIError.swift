import Foundation
import HTTPTypes
import Logging
import Metrics
import Hummingbird
import NIOCore
import Redis
import RevokeCore

/// An error as the API reports it: a status, a stable machine-readable code, and a message
/// for a person, always as `{"error": "<code>", "message": "<text>"}`.
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The contract's error code (`invalid_request`, `store_unavailable`, ...).
    public var code: String
    /// A sentence for a person.
    public var message: String
    /// Extra headers (`Retry-After` on 503).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// 400 `invalid_request`.
    public static func invalidRequest(_ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: message)
    }

    /// 404 `not_found`.
    public static func notFound(_ message: String = "no such resource") -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }

    /// 503 `store_unavailable`, with `Retry-After`: Redis cannot answer, so neither can we.
    public static func storeUnavailable(retryAfterSeconds: Int = 1) -> APIError {
        APIError(
            .serviceUnavailable, code: "store_unavailable", message: "the revocation store is unavailable; retry later",
            headers: [.retryAfter: String(retryAfterSeconds)])
    }

    private struct Body: Encodable {
        var error: String
        var message: String
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // "error" before "message", every time
        let body = try encoder.encode(Body(error: code, message: message))
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every error that leaves a route into the contract's JSON error body: the router's
/// own 404 and 405, and anything unexpected (logged, answered as a 500 without details).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Counts Redis failures.
    let storeErrors: Counter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as ValidationError {
            throw APIError.invalidRequest(error.message)
        } catch let error as RedisError {
            storeErrors.increment()
            context.logger.warning("store unavailable", metadata: ["redis.error": "\(error.code)", "redis.message": "\(error.message)"])
            throw APIError.storeUnavailable()
        } catch let error as HTTPError {
            throw Self.apiError(for: error)
        } catch let error as any HTTPResponseError {
            throw Self.apiError(status: error.status, message: error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            throw APIError(.internalServerError, code: "internal_error", message: "the server failed to answer")
        }
    }

    static func apiError(for error: HTTPError) -> APIError {
        apiError(status: error.status, message: error.body ?? error.status.reasonPhrase)
    }

    static func apiError(status: HTTPResponse.Status, message: String) -> APIError {
        switch status {
        case .notFound: .notFound()
        case .methodNotAllowed: APIError(status, code: "method_not_allowed", message: "method not allowed on this path")
        case .contentTooLarge: APIError(status, code: "payload_too_large", message: "the body is larger than 64 KiB")
        case .unsupportedMediaType:
            APIError(status, code: "unsupported_media_type", message: "the body must be application/json")
        case .unauthorized: APIError(status, code: "unauthorized", message: message)
        case .forbidden: APIError(status, code: "forbidden", message: message)
        case .serviceUnavailable: .storeUnavailable()
        default:
            status.code < 500
                ? APIError(status, code: "invalid_request", message: message)
                : APIError(status, code: "internal_error", message: "the server failed to answer")
        }
    }
}

extension Logger.MetadataValue {
    /// A client-supplied string (a `jti`, a cutoff value, a reason) for a log line: as it is,
    /// unless it holds a control character, which could forge a line of its own; then quoted
    /// and escaped.
    static func client(_ text: String) -> Logger.MetadataValue {
        let plain = text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && !(0x80..<0xA0).contains($0.value) && $0 != "\u{2028}" && $0 != "\u{2029}" }
        return .string(plain ? text : text.debugDescription)
    }
}
