import Hummingbird
import RevokeCore
import RevokeHTTP
import RevokeStore

/// OAuth 2.0 Token Introspection (RFC 7662): `POST /oauth2/introspect` (role verifier: a verifier
/// or admin key as `Authorization: Bearer`, or as OAuth client credentials, `client_secret_basic`
/// or `client_secret_post`, the key's name the `client_id` and its secret the secret). A token
/// is active only when its signature verifies with the issuer keys, it is within `nbf` and
/// `exp` (with `REVOKE_CLOCK_SKEW`), `iss` and `aud` match when configured, and no revocation,
/// cutoff or key block applies; the answer then carries its registered claims. Anything else is
/// exactly `{"active": false}`, which says nothing about why.
struct IntrospectionController: Sendable {
    let store: RevocationStore
    let verifier: TokenVerifier

    func addRoutes(to open: some RouterMethods<RevokeRequestContext>, keyring: APIKeyring) {
        open.post("/oauth2/introspect") { request, context -> Response in
            var request = request
            let form = try await request.form(context: context)
            // A resource server authenticates as an OAuth client (RFC 7662 section 2.1), or
            // with its key as a bearer token.
            _ = try keyring.authorizeClient(request.headers, form: form)
            let token = try Request.field("token", of: form)
            var response = jsonResponse(try await introspect(token))
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }

    static let inactive = JSONValue.object(["active": .bool(false)])

    func introspect(_ token: String) async throws -> JSONValue {
        guard let verified = try? await verifier.verifySignature(token),
            verified.refusal(at: store.currentTime, policy: store.policy) == nil
        else { return Self.inactive }
        let payload = verified.payload
        let query = CheckQuery(verified.claims, cutoffClaims: store.cutoffClaims, kid: verified.kid)
        guard try await store.check(query) == .allowed else { return Self.inactive }
        var answer: [String: JSONValue] = ["active": .bool(true)]
        for name in ["jti", "sub", "iss", "aud", "exp", "iat", "nbf"] {
            if let value = payload[name], value != .null { answer[name] = value }
        }
        return .object(answer)
    }
}
