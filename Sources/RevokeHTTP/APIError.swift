import HTTPTypes
import Hummingbird
import NIOCore
import RevokeCore

/// An error as Revoke answers it over HTTP: a status, the contract's machine-readable code,
/// a sentence for a person, and the headers that go with it. The body is always
/// `{"error": "<code>", "message": "<text>"}`, written here and nowhere else, whether it ends
/// a request or stands in for one entry of a batch (``body``).
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The contract's error code (`invalid_request`, `store_unavailable`, ...).
    public var code: String
    /// A sentence for a person.
    public var message: String
    /// Extra headers (`Retry-After` on 503, `Allow` on 405, `WWW-Authenticate` on 401).
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

    /// 405 `method_not_allowed`, with the methods the path serves in `Allow`.
    public static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> APIError {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        return APIError(
            .methodNotAllowed, code: "method_not_allowed", message: "\(method.rawValue) is not allowed here; use \(allow)",
            headers: [.allow: allow])
    }

    /// 500 `internal_error`: the server failed; the details go to the log, never to the client.
    public static let internalError = APIError(.internalServerError, code: "internal_error", message: "the server failed to answer")

    /// 503 with `Retry-After`: something this answer depends on cannot answer now; retrying
    /// later is the right thing to do.
    /// - Parameters:
    ///   - code: The contract's code (`store_unavailable`, `overloaded`, ...).
    ///   - message: A sentence for a person.
    ///   - retryAfterSeconds: When to try again.
    public static func unavailable(code: String, message: String, retryAfterSeconds: Int = 1) -> APIError {
        APIError(.serviceUnavailable, code: code, message: message, headers: [.retryAfter: String(retryAfterSeconds)])
    }

    /// 503 `store_unavailable`, with `Retry-After`: Redis cannot answer, so neither can we.
    public static func storeUnavailable(_ message: String = "the revocation store is unavailable; retry later") -> APIError {
        unavailable(code: "store_unavailable", message: message)
    }

    /// `{"error": "<code>", "message": "<text>"}`.
    public var body: JSONValue {
        .object(["error": .string(code), "message": .string(message)])
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = MediaType.jsonAnswer
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }
}
