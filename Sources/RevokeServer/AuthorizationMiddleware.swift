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
        context.actor = try keyring.authorize(request.headers, required: required)
        return try await next(request, context)
    }
}

extension APIKeyring {
    /// Whether a request's `Authorization` grants the role: the name of its key (the audit's
    /// actor), nil for an open verifier route called without one. The key is read as
    /// ``BearerCredential`` reads it; several `Authorization` fields carry no key.
    /// - Throws: 401 for no valid key where one is required, 403 for a verifier key on an
    ///   admin route.
    func authorize(_ fields: HTTPFields, required: APIKey.Role) throws(APIError) -> String? {
        let key = BearerCredential(fields).token.flatMap { self.key(forSecret: $0) }
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
