import HTTPTypes
import Hummingbird
import Logging
import Metrics
import RevokeCore
import RevokeHTTP
import RevokeStore

/// Turns every error that leaves a route into the contract's JSON error body: bad input 400,
/// the router's own 404 and Hummingbird's 413, a store that cannot answer 503 with
/// `Retry-After`, a store that failed 500 (its cause logged and counted), and anything else
/// unexpected a 500 without details.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Store errors, and the failures among them.
    let storeErrors: StoreErrorCounters

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as ValidationError {
            throw APIError.invalidRequest(error.message)
        } catch let error as StoreError {
            throw Self.apiError(for: error, logger: context.logger, counters: storeErrors)
        } catch let error as HTTPError {
            throw Self.apiError(status: error.status, message: error.body ?? error.status.reasonPhrase)
        } catch let error as any HTTPResponseError {
            throw Self.apiError(status: error.status, message: error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            throw APIError.internalError
        }
    }

    /// 503 for a store that cannot answer now, 500 for one that failed; both logged and counted.
    static func apiError(for error: StoreError, logger: Logger, counters: StoreErrorCounters) -> APIError {
        counters.errors.increment()
        switch error.kind {
        case .unavailable:
            logger.warning("store unavailable", metadata: ["store.error": "\(error.message)"])
            return .storeUnavailable()
        case .failed:
            counters.failures.increment()
            logger.error("store failed", metadata: ["store.error": "\(error.message)"])
            return .internalError
        }
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
        default: status.code < 500 ? .invalidRequest(message) : .internalError
        }
    }
}

/// `revoke_store_errors_total` (every store error: an outage or a failure) and
/// `revoke_store_failures_total` (the failures: Redis answered, the store could not use it).
struct StoreErrorCounters: Sendable {
    let errors: Counter
    let failures: Counter
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
