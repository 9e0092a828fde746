/// The check on the wire, read and written here for both sides: the server reads a query and
/// writes a verdict (`POST /v1/check`, the batch, the direct path), the client writes a query and
/// reads a verdict.
extension CheckQuery {
    /// `{"jti", "iat", "claims", "kid"}`, the fields it has, as the client sends it.
    public var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let jti { object["jti"] = .string(jti) }
        if let issuedAt { object["iat"] = .number(issuedAt) }
        if !claims.isEmpty { object["claims"] = .object(claims.mapValues(JSONValue.string)) }
        if let kid { object["kid"] = .string(kid) }
        return .object(object)
    }

    /// Reads either form: `{"token": "<jwt>", "kid": ...}` (claims and the header's `kid` read,
    /// signature not re-verified; `kid`, for a token whose header names none, is the key that
    /// verified it; one that differs from the header's is refused) or `{"jti": ..., "iat": ...,
    /// "claims": {...}, "kid": ...}`, every field optional.
    public init(json object: [String: JSONValue], cutoffClaims: CutoffClaims) throws(ValidationError) {
        self = try Self.read(object, cutoffClaims: cutoffClaims)
    }

    private static func read(_ object: [String: JSONValue], cutoffClaims: CutoffClaims) throws(ValidationError) -> CheckQuery {
        let kid = try Self.kidField(object["kid"])
        if let token = object["token"] {
            guard case .string(let text) = token, !text.isEmpty else { throw ValidationError("token must be a non-empty string") }
            for field in ["jti", "iat", "claims"] where object[field] != nil && object[field] != .null {
                throw ValidationError("send token (and the kid that verified it) or jti, iat and claims, not both")
            }
            let claims = try TokenClaims(compactJWS: text)
            if let jti = claims.jti { try validateIdentifier(jti, field: "jti") }
            let checked = try CheckQuery.kid(header: try TokenClaims.keyID(compactJWS: text), verifiedBy: kid)
            if let checked { try validateIdentifier(checked, field: "kid") }
            return CheckQuery(claims, cutoffClaims: cutoffClaims, kid: checked)
        }
        var query = CheckQuery()
        switch object["jti"] {
        case nil, .null?: break
        case .string(let jti)?:
            try validateIdentifier(jti, field: "jti")
            query.jti = jti
        default: throw ValidationError("jti must be a string")
        }
        query.kid = kid
        switch object["iat"] {
        case nil, .null?: break
        case .number(let iat)?: query.issuedAt = iat
        default: throw ValidationError("iat must be a number of seconds")
        }
        switch object["claims"] {
        case nil, .null?: break
        case .object(let claims)?:
            for (name, value) in claims {
                guard case .string(let text) = value else { throw ValidationError("claims.\(name) must be a string") }
                if cutoffClaims.allows(name) { query.claims[name] = text }
            }
        default: throw ValidationError("claims must be an object of strings")
        }
        return query
    }

    /// A `kid` field: absent or null, else a valid identifier.
    private static func kidField(_ value: JSONValue?) throws(ValidationError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let kid)?:
            try validateIdentifier(kid, field: "kid")
            return kid
        default: throw ValidationError("kid must be a string")
        }
    }
}

extension CheckVerdict {
    /// `{"revoked": false}`, `{"revoked": true, "reason": "jti"}`,
    /// `{"revoked": true, "reason": "key", "kid": "..."}` or
    /// `{"revoked": true, "reason": "cutoff", "claim": "sub"}`.
    public var json: JSONValue {
        switch self {
        case .allowed: .object(["revoked": .bool(false)])
        case .revokedByJTI: .object(["revoked": .bool(true), "reason": .string("jti")])
        case .revokedByKey(let kid): .object(["revoked": .bool(true), "reason": .string("key"), "kid": .string(kid)])
        case .revokedByCutoff(let claim): .object(["revoked": .bool(true), "reason": .string("cutoff"), "claim": .string(claim)])
        }
    }

    /// Reads a verdict as ``json`` writes it. A revocation whose reason this reader does not know
    /// is still a revocation (read as by `jti`): a newer server never makes an older client say
    /// "not revoked".
    public init(json object: [String: JSONValue]) throws(ValidationError) {
        guard case .bool(let revoked)? = object["revoked"] else { throw ValidationError("the answer has no revoked field") }
        switch (revoked, object["reason"], object["claim"], object["kid"]) {
        case (false, _, _, _): self = .allowed
        case (true, .string("cutoff")?, .string(let claim)?, _): self = .revokedByCutoff(claim: claim)
        case (true, .string("key")?, _, .string(let kid)?): self = .revokedByKey(kid: kid)
        default: self = .revokedByJTI
        }
    }
}
