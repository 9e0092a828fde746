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
        } catch {
            throw APIError(answering: error, logger: context.logger, counters: storeErrors)
        }
    }
}

extension APIError {
    /// What the client is told for an error: bad input 400, HTTP's own errors as they are, a
    /// store error 503 or 500 (logged and counted), anything else a 500 without details.
    init(answering error: any Error, logger: Logger, counters: StoreErrorCounters) {
        switch error {
        case let error as APIError: self = error
        case let error as ValidationError: self = .invalidRequest(error.message)
        case let error as StoreError: self = Self(answering: error, logger: logger, counters: counters)
        case let error as HTTPError: self = Self(httpStatus: error.status, message: error.body ?? error.status.reasonPhrase)
        case let error as any HTTPResponseError: self = Self(httpStatus: error.status, message: error.status.reasonPhrase)
        default:
            logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            self = .internalError
        }
    }

    /// 503 for a store that cannot answer now, 500 for one that failed; both logged and counted.
    init(answering error: StoreError, logger: Logger, counters: StoreErrorCounters) {
        counters.errors.increment()
        switch error.kind {
        case .unavailable:
            logger.warning("store unavailable", metadata: ["store.error": "\(error.message)"])
            self = .storeUnavailable()
        case .failed:
            counters.failures.increment()
            logger.error("store failed", metadata: ["store.error": "\(error.message)"])
            self = .internalError
        }
    }

    init(httpStatus status: HTTPResponse.Status, message: String) {
        self = switch status {
        case .notFound: .notFound()
        case .contentTooLarge:
            APIError(status, code: "payload_too_large", message: "the body is larger than \(Limits.maximumBodyBytes / 1024) KiB")
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
