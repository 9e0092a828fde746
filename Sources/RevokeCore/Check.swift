/// What a verifier asks: is a token with these claims revoked?
public struct CheckQuery: Sendable, Equatable {
    /// The token's `jti`, if it has one.
    public var jti: String?
    /// The token's `iat`, if it has one.
    public var issuedAt: Double?
    /// Claim values that cutoffs may match (`sub`, `sid`, `client_id`, ...).
    public var claims: [String: String]
    /// The `kid` of the key that signed the token (its header's), if it names one.
    public var kid: String?

    public init(jti: String? = nil, issuedAt: Double? = nil, claims: [String: String] = [:], kid: String? = nil) {
        self.jti = jti
        self.issuedAt = issuedAt
        self.claims = claims
        self.kid = kid
    }

    /// The query for a compact JWS as a client holds it, by the claims in its payload, all its
    /// string claims kept (the server knows which ones cutoffs may name). The signature is not
    /// verified here.
    /// - Throws: ``ValidationError`` when the payload cannot be read (see ``TokenClaims``).
    public init(compactJWS token: String) throws(ValidationError) {
        let claims = try TokenClaims(compactJWS: token)
        self.init(jti: claims.jti, issuedAt: claims.issuedAt, claims: claims.strings, kid: try TokenClaims.keyID(compactJWS: token))
    }

    /// The query for a compact JWS verified by the key `kid` names: the header's `kid` when it
    /// has one, else `kid` (a token without `kid` is verified by the only key of its algorithm,
    /// which only the verifier knows).
    /// - Throws: ``ValidationError`` when the payload cannot be read, or `kid` is not the
    ///   header's (no verifier picks another key than the one the header names).
    public init(compactJWS token: String, verifiedBy kid: String?) throws(ValidationError) {
        try self.init(compactJWS: token)
        self.kid = try Self.kid(header: self.kid, verifiedBy: kid)
    }

    /// The `kid` a check of a token uses: its header's, else the one of the key that verified
    /// it (given by the verifier; compared byte for byte).
    /// - Throws: ``ValidationError`` when both are there and differ: no verifier picks another
    ///   key than the one the header names, and another kid must never hide a block on it.
    public static func kid(header: String?, verifiedBy kid: String?) throws(ValidationError) -> String? {
        guard let header, let kid else { return header ?? kid }
        guard header.utf8.elementsEqual(kid.utf8) else {
            throw ValidationError("the token's header names another kid than the key that verified it")
        }
        return header
    }

    /// The query for a token's claims, keeping only the claims cutoffs may name.
    public init(_ token: TokenClaims, cutoffClaims: CutoffClaims, kid: String? = nil) {
        self.init(
            jti: token.jti, issuedAt: token.issuedAt,
            claims: token.strings.filter { cutoffClaims.allows($0.key) }, kid: kid)
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
    /// The key that signed it is blocked: every token it signed is revoked, whatever its `iat`.
    case revokedByKey(kid: String)

    /// Decides, given what the store found: whether the `jti` is revoked, and the `before` of
    /// the cutoff stored for each of the query's claims (the key holds the value, so only
    /// `before` is left to compare).
    /// - Parameters:
    ///   - query: The check.
    ///   - jtiRevoked: Whether `N:jti:<jti>` exists.
    ///   - keyBlocked: Whether `N:kid:<kid>` exists for the query's `kid`: it comes first, since
    ///     it says the most (every token of that key is dead).
    ///   - cutoffs: For each claim of the query that a cutoff may name, in the configured order
    ///     (so the reported claim is deterministic), the stored cutoff's `before`, or nil.
    public init(query: CheckQuery, jtiRevoked: Bool, keyBlocked: Bool = false, cutoffs: [(claim: String, before: Int64?)]) {
        if keyBlocked, let kid = query.kid {
            self = .revokedByKey(kid: kid)
            return
        }
        if jtiRevoked {
            self = .revokedByJTI
            return
        }
        for (claim, before) in cutoffs {
            if let before, CutoffRecord.revokes(issuedAt: query.issuedAt, before: before) {
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
        Self.revokes(issuedAt: issuedAt, before: before)
    }

    /// Whether a token issued at `issuedAt` falls under a cutoff with this `before`.
    public static func revokes(issuedAt: Double?, before: Int64) -> Bool {
        guard let issuedAt else { return true }
        return issuedAt <= Double(before)
    }
}
