import Hummingbird
import RevokeClient
import RevokeCore
import RevokeHTTP

/// Refuses requests whose bearer token Revoke says is revoked.
///
/// Put it after the middleware that verifies the token's signature: it reads the claims it
/// needs (`jti`, `iat`, and the claims cutoffs name) and asks a ``RevokeClient``, which answers
/// from its cache when it has one. A request without `Authorization`, or with another scheme's
/// (`Basic`), passes through untouched (authentication is the authenticator's job). The bearer
/// token is read as leniently as any common authenticator reads it (``BearerCredential``: any
/// run of whitespace, the scheme in any case), and an `Authorization` it cannot read as one
/// bearer token (`Bearer a b`, several fields) is refused with 401, never passed on: an
/// authenticator behind it might read it some other way. A revoked token gets 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750); when the client's failure
/// policy answered because the server could not, 503 with `Retry-After`. Error bodies have
/// Revoke's shape, `{"error": "<code>", "message": "<text>"}`.
///
/// ```swift
/// router.add(middleware: RevocationMiddleware(client: revoke))
/// ```
public struct RevocationMiddleware<Context: RequestContext>: RouterMiddleware {
    public typealias Input = Request
    public typealias Output = Response

    /// Finds the query for a request: nil lets the request through unchecked.
    public typealias QueryProvider = @Sendable (Request, Context) throws -> CheckQuery?

    let client: RevokeClient
    let query: QueryProvider

    /// Checks the token of `Authorization: Bearer`.
    public init(client: RevokeClient) {
        self.client = client
        self.query = { request, _ in try CheckQuery(bearerTokenOf: request) }
    }

    /// Checks what `query` finds, for instance claims an authenticator put in the context.
    public init(client: RevokeClient, query: @escaping QueryProvider) {
        self.client = client
        self.query = query
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let query = try query(request, context) else { return try await next(request, context) }
        // The cache answers most checks at once; only a "maybe", a stale cache or no cache waits.
        let verdict: RevokeClient.Verdict
        if let cached = client.cachedVerdict(query) { verdict = cached } else { verdict = await client.check(query) }
        guard verdict.revoked else { return try await next(request, context) }
        if verdict.reason == .unavailable { throw RevocationError.unavailable }
        throw RevocationError.revoked
    }
}

extension CheckQuery {
    /// The query for the compact JWS in a request's `Authorization: Bearer` header; nil
    /// without `Authorization` or with another scheme. Its signature is not verified here.
    /// - Parameter kid: The `kid` of the key that verified a token whose header names none (it
    ///   is verified by the only key of its algorithm; only the verifier knows which, and a
    ///   block on that key must still refuse it). One other than the header's is unreadable.
    /// - Throws: ``RevocationError/unreadable`` when `Authorization` cannot be read as one
    ///   bearer token, or the token's payload cannot be read.
    public init?(bearerTokenOf request: Request, kid: String? = nil) throws {
        switch BearerCredential(request.headers) {
        case .none, .otherScheme: return nil
        case .unreadable: throw RevocationError.unreadable
        case .token(let token):
            do {
                try self.init(compactJWS: String(token), verifiedBy: kid)
            } catch {
                throw RevocationError.unreadable
            }
        }
    }
}

/// Why ``RevocationMiddleware`` refused a request.
public enum RevocationError: Error, HTTPResponseError, Equatable {
    /// The token is revoked.
    case revoked
    /// The bearer token's payload cannot be read.
    case unreadable
    /// Revoke could not answer and the client's policy is to fail closed.
    case unavailable

    public var status: HTTPResponse.Status {
        self == .unavailable ? .serviceUnavailable : .unauthorized
    }

    /// The answer, in the contract's shape: 401 `invalid_token` with `WWW-Authenticate`, or 503
    /// `revocation_unavailable` with `Retry-After`.
    var apiError: APIError {
        switch self {
        case .unavailable:
            return .unavailable(code: "revocation_unavailable", message: "the token's revocation status cannot be checked now")
        case .revoked, .unreadable:
            let message = self == .revoked ? "the token has been revoked" : "the token cannot be read"
            return APIError(
                .unauthorized, code: "invalid_token", message: message,
                headers: [.wwwAuthenticate: #"Bearer error="invalid_token", error_description="\#(message)""#])
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try apiError.response(from: request, context: context)
    }
}
