import Foundation
import HTTPTypes
import Hummingbird
import RevokeHTTP

/// Who may call what: the one authorization matrix. `buildApplication` makes these groups once,
/// and every controller adds each of its routes to the group of the role it needs; no controller
/// decides a role itself. docs/openapi.yaml tags each operation with its role, and
/// test_authorization.py calls every operation without a key, with a verifier key and with an
/// admin key to see that the server agrees.
struct RouteGroups {
    /// Anyone: health, readiness, metrics, and the endpoints whose caller proves itself by what
    /// it sends (a token to revoke, a logout token) or authenticates as its kind of caller does
    /// (introspection's OAuth client credentials, forward authentication's `Revoke-Key`).
    let open: RouterGroup<RevokeRequestContext>
    /// A verifier or admin key as `Authorization: Bearer`; open when no verifier key is configured.
    let verifier: RouterGroup<RevokeRequestContext>
    /// An admin key.
    let admin: RouterGroup<RevokeRequestContext>

    init(router: Router<RevokeRequestContext>, keyring: APIKeyring) {
        open = router.group()
        verifier = router.group().add(middleware: AuthorizationMiddleware(keyring: keyring, required: .verifier))
        admin = router.group().add(middleware: AuthorizationMiddleware(keyring: keyring, required: .admin))
    }
}

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
    /// Whether a request authenticated as an OAuth client holds the verifier role (RFC 6749
    /// section 2.3.1): `client_secret_basic` (`Authorization: Basic` of the form-encoded
    /// `client_id:client_secret`), `client_secret_post` (`client_id` and `client_secret` in the
    /// form), or a key as `Authorization: Bearer`. The `client_id` is the key's name, and must be
    /// the name of the key whose secret it presents. Returns that name; nil when verifier
    /// endpoints are open and no valid key was presented.
    /// - Throws: 401 for credentials that are wrong, or none where they are needed; 400 for
    ///   more than one way of authenticating in one request.
    func authorizeClient(_ fields: HTTPFields, form: [String: String]) throws(APIError) -> String? {
        let basic = Self.basicCredentials(fields)
        let posted = form["client_secret"].map { (form["client_id"] ?? "", $0) }
        let bearer = BearerCredential(fields).token
        if [basic != nil, posted != nil, bearer != nil].filter({ $0 }).count > 1 {
            throw APIError.invalidRequest("authenticate one way: Basic, client_secret in the form, or a Bearer key")
        }
        guard let (name, secret) = basic ?? posted else { return try authorize(fields, required: .verifier) }
        let key = key(forSecret: Substring(secret)).flatMap { $0.name.utf8.elementsEqual(name.utf8) ? $0 : nil }
        if key == nil && verifierKeysConfigured {
            throw APIError(
                .unauthorized, code: "unauthorized", message: "the client credentials are not a verifier or admin key's name and secret",
                headers: [.wwwAuthenticate: basic != nil ? #"Basic realm="revoke""# : "Bearer"])
        }
        return key?.name
    }

    /// `client_id` and `client_secret` of `Authorization: Basic`, each form-decoded; nil
    /// without a Basic header, or with one that does not decode (which authenticates nobody).
    private static func basicCredentials(_ fields: HTTPFields) -> (String, String)? {
        let values = fields[values: .authorization]
        guard values.count == 1 else { return nil }
        let parts = values[0].split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = Data(base64Encoded: String(parts[1])).flatMap({ String(data: $0, encoding: .utf8) }),
            let colon = decoded.firstIndex(of: ":")
        else { return nil }
        // Form-encoded (RFC 6749 2.3.1); a client that did not encode is read as it sent.
        let decode = { (part: Substring) in FormURLEncoded.decode(part) ?? String(part) }
        return (decode(decoded[..<colon]), decode(decoded[decoded.index(after: colon)...]))
    }

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
