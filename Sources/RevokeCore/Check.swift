/// What a verifier asks: is a token with these claims revoked?
public struct CheckQuery: Sendable, Equatable {
    /// The token's `jti`, if it has one.
    public var jti: String?
    /// The token's `iat`, if it has one.
    public var issuedAt: Double?
    /// Claim values that cutoffs may match (`sub`, `sid`, `client_id`, ...).
    public var claims: [String: String]

    public init(jti: String? = nil, issuedAt: Double? = nil, claims: [String: String] = [:]) {
        self.jti = jti
        self.issuedAt = issuedAt
        self.claims = claims
    }

    /// The query for a token's claims, keeping only the claims cutoffs may name.
    public init(_ token: TokenClaims, cutoffClaims: CutoffClaims) {
        self.init(
            jti: token.jti, issuedAt: token.issuedAt,
            claims: token.strings.filter { cutoffClaims.allows($0.key) })
    }
}

/// The answer to a check.
public enum CheckVerdict: Sendable, Equatable {
    /// Not revoked.
    case allowed
    /// The `jti` itself is revoked.
    case revokedByJTI
    /// A cutoff on this claim matches.
    case revokedByCutoff(claim: String)

    /// Decides, given the revocation state the store found: whether the `jti` is revoked, and
    /// the cutoff found for each claim of the query (by claim name).
    /// - Parameters:
    ///   - query: The check.
    ///   - jtiRevoked: Whether `N:jti:<jti>` exists.
    ///   - cutoffs: The cutoff record found for each claim, if any, in the order the claims are
    ///     configured, so that the reported claim is deterministic.
    public init(query: CheckQuery, jtiRevoked: Bool, cutoffs: [(claim: String, record: CutoffRecord?)]) {
        if jtiRevoked {
            self = .revokedByJTI
            return
        }
        for (claim, record) in cutoffs {
            if let record, query.claims[claim] == record.value, record.revokes(issuedAt: query.issuedAt) {
                self = .revokedByCutoff(claim: claim)
                return
            }
        }
        self = .allowed
    }
}

extension CutoffRecord {
    /// Whether a token issued at `issuedAt` (Unix seconds, possibly fractional) falls under the
    /// cutoff; a token with no `iat` is revoked.
    public func revokes(issuedAt: Double?) -> Bool {
        guard let issuedAt else { return true }
        return issuedAt <= Double(before)
    }
}
