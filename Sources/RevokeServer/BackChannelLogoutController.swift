import Hummingbird
import Logging
import RevokeCore
import RevokeHTTP
import RevokeStore

/// OpenID Connect Back-Channel Logout 1.0: `POST /v1/backchannel-logout`. The OpenID Provider
/// posts a logout token when a session ends; Revoke verifies it like a token to revoke (issuer
/// keys, the algorithm pinned by the key, `iss` and `aud` when configured), checks it as the
/// specification requires, and cuts off the session (`sid`) or, without one, the user (`sub`)
/// up to the token's `iat`.
///
/// A logout token is applied once: its `iss` and `jti` are remembered until its `exp` (which it
/// must carry), so a replay changes nothing and writes nothing, not even after an administrator
/// lifted the cutoff, and cannot push administrators' entries out of the audit. Its `aud` must
/// name this relying party: without `REVOKE_AUDIENCE` every logout token is refused, since one
/// issued to any other application of the same provider would otherwise be accepted.
struct BackChannelLogoutController: Sendable {
    /// The member of `events` that makes a JWT a logout token.
    static let logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

    let store: RevocationStore
    let verifier: TokenVerifier

    func addRoutes(to open: some RouterMethods<RevokeRequestContext>) {
        open.post("/v1/backchannel-logout") { request, context -> Response in
            var request = request
            let token = try await request.formField("logout_token", context: context)
            guard verifier.checksAudience else {
                throw APIError.invalidRequest(
                    "back-channel logout needs REVOKE_AUDIENCE (the client_id the provider issues logout tokens to); none is configured")
            }
            let verified: TokenVerifier.Verified
            do {
                verified = try await verifier.verifySignature(token)
            } catch let error as TokenVerifier.Failure {
                // Section 2.8: any failure is 400 with invalid_request.
                context.logger.debug("logout token refused", metadata: ["reason": .client(error.message)])
                throw APIError.invalidRequest("the logout token does not verify: \(error.message)")
            }
            let logout = try Self.logout(in: verified, now: store.currentTime, policy: store.policy)
            let issuer = verified.claims.strings["iss"] ?? "-"
            let outcome: CutoffOutcome
            do {
                outcome = try await store.setCutoff(
                    claim: logout.claim, value: logout.value, before: logout.before, reason: "back-channel logout",
                    actor: "backchannel:\(issuer)", message: logout.message(issuer: issuer))
            } catch let error as ValidationError {
                throw APIError.invalidRequest("the logout cannot be applied: \(error.message)")
            }
            let replayed = outcome == .replayed
            context.logger.info(
                replayed ? "back-channel logout replayed: nothing done" : "back-channel logout",
                metadata: ["claim": "\(logout.claim)", "target": .client(logout.value), "iss": .client(issuer), "logout_jti": .client(logout.jti)])
            return Response(status: .ok, headers: [.cacheControl: "no-store"])
        }
    }

    /// What a logout token ends: a cutoff on `sid` (preferred) or `sub`, up to its `iat` (never
    /// later than now).
    struct Logout: Equatable {
        var claim: String
        var value: String
        var before: Int64
        /// The logout token's `jti`, and how long a replay of it could still do something: until
        /// its `exp` (with the clock skew), or until its cutoff could no longer match a live token.
        var jti: String
        var acceptableFor: Int64

        func message(issuer: String) -> RevocationStore.OneTimeMessage {
            .init(issuer: issuer, id: jti, seconds: acceptableFor)
        }
    }

    /// Checks a verified token as section 2.6 requires of a logout token.
    static func logout(in token: TokenVerifier.Verified, now: Int64, policy: RevocationPolicy) throws(APIError) -> Logout {
        let payload = token.payload
        guard let issuedAt = token.claims.issuedAt else { throw .invalidRequest("a logout token needs iat") }
        guard case .string(let jti)? = payload["jti"], !jti.isEmpty else { throw .invalidRequest("a logout token needs jti") }
        guard case .object(let events)? = payload["events"], case .object? = events[logoutEvent] else {
            throw .invalidRequest("a logout token's events must hold \(logoutEvent) with an object")
        }
        guard payload["nonce"] == nil else { throw .invalidRequest("a logout token must not hold a nonce") }
        // Section 2.4 requires exp: without one a logout token could be replayed for ever.
        guard let expiresAt = token.claims.expiresAtSeconds else { throw .invalidRequest("a logout token needs exp") }
        // The policy's own expiry test (clock skew included, no overflow).
        var acceptableFor: Int64
        switch policy.lifetime(expiresAt: expiresAt, now: Double(now)) {
        case .expired: throw .invalidRequest("the logout token has expired")
        case .seconds(let seconds): acceptableFor = seconds
        case .forever: acceptableFor = Int64.max
        }
        // Never later than now; an iat before every Int64 second cuts off as far back as one goes
        // (the store then refuses a cutoff no live token can match).
        let iat = issuedAt.rounded(.down)
        let before = iat >= Double(now) ? now : (iat > -9.2e18 ? Int64(iat) : Int64.min)
        // Remembered while a replay could still do something: until the token expires, or the
        // cutoff it asks for could no longer match a live token, whichever comes first.
        if case .seconds(let seconds) = policy.cutoffLifetime(before: before, now: Double(now)) {
            acceptableFor = min(acceptableFor, seconds)
        } else {
            acceptableFor = min(acceptableFor, policy.maximumTokenLifetime + policy.clockSkew)
        }
        if case .string(let sid)? = payload["sid"], !sid.isEmpty {
            return Logout(claim: "sid", value: sid, before: before, jti: jti, acceptableFor: acceptableFor)
        }
        if case .string(let sub)? = payload["sub"], !sub.isEmpty {
            return Logout(claim: "sub", value: sub, before: before, jti: jti, acceptableFor: acceptableFor)
        }
        throw .invalidRequest("a logout token needs sid or sub")
    }
}
