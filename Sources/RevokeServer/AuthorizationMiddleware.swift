import HTTPTypes
import Hummingbird
import RevokeHTTP

/// Lets a request through only with an API key of the required role (verifier routes are open
/// when no verifier key is configured), and records the key's name as the request's actor.
struct AuthorizationMiddleware: RouterMiddleware {
    typealias Context = RevokeRequestContext
    let keyring: APIKeyring
    let required: APIKey.Role

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.actor = try keyring.authorize(request.headers[.authorization], required: required)
        return try await next(request, context)
    }

    /// The credentials of `Authorization: Bearer <credentials>` (scheme case-insensitive).
    static func bearer(_ header: String) -> Substring? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let credentials = parts[1].drop { $0 == " " }
        return credentials.isEmpty ? nil : credentials
    }
}

extension APIKeyring {
    /// Whether an `Authorization` header grants the role: the name of its key (the audit's
    /// actor), nil for an open verifier route called without one.
    /// - Throws: 401 for no valid key where one is required, 403 for a verifier key on an
    ///   admin route.
    func authorize(_ authorization: String?, required: APIKey.Role) throws(APIError) -> String? {
        let key = authorization.flatMap(AuthorizationMiddleware.bearer).flatMap { self.key(forSecret: $0) }
        if required == .verifier && !verifierKeysConfigured { return key?.name }
        guard let key else {
            throw APIError(
                .unauthorized, code: "unauthorized", message: "a valid API key is required (Authorization: Bearer <key>)",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        if required == .admin && key.role != .admin {
            throw APIError(.forbidden, code: "forbidden", message: "this API key lacks the admin role")
        }
        return key.name
    }
}
