import Hummingbird
import Metrics
import RevokeCore
import RevokeHTTP
import RevokeStore

/// `POST /v1/check` and `POST /v1/check/batch` (role verifier).
struct CheckController: Sendable {
    let store: RevocationStore
    let checks: Counter

    func addRoutes(verifier group: some RouterMethods<RevokeRequestContext>) {
        group.post("/v1/check") { request, context -> Response in
            var request = request
            let query = try Self.query(from: try await request.jsonObject(context: context), cutoffClaims: store.cutoffClaims)
            let verdict = try await store.check(query)
            checks.increment()
            return jsonResponse(verdict.json)
        }
        group.post("/v1/check/batch") { request, context -> Response in
            var request = request
            let body = try await request.jsonObject(context: context)
            guard case .array(let entries)? = body["checks"] else {
                throw APIError.invalidRequest("checks must be an array of checks")
            }
            guard entries.count <= Limits.maximumChecksPerBatch else {
                throw APIError.invalidRequest("at most \(Limits.maximumChecksPerBatch) checks per batch, not \(entries.count)")
            }
            // Bad entries answer with an error in their place; the others share one round trip.
            var parsed: [Result<CheckQuery, ValidationError>] = []
            for entry in entries {
                guard case .object(let object) = entry else {
                    parsed.append(.failure(ValidationError("a check must be a JSON object")))
                    continue
                }
                parsed.append(Result { () throws(ValidationError) in try Self.query(from: object, cutoffClaims: store.cutoffClaims) })
            }
            let queries = parsed.compactMap { try? $0.get() }
            let verdicts = try await store.check(queries)
            // The store answers every query in order; anything else is a failure of ours, not
            // a reason to pair a verdict with the wrong check.
            guard verdicts.count == queries.count else {
                throw StoreError(.failed, "\(verdicts.count) verdicts for \(queries.count) checks")
            }
            checks.increment(by: queries.count)
            var next = verdicts.makeIterator()
            let results: [JSONValue] = parsed.map { result in
                switch result {
                case .success: next.next().map(\.json) ?? APIError.internalError.body
                case .failure(let error): APIError.invalidRequest(error.message).body
                }
            }
            return jsonResponse(.object(["results": .array(results)]))
        }
    }

    /// Reads either form: `{"token": "<jwt>", "kid": ...}` (claims and the header's `kid` read,
    /// signature not re-verified; `kid`, for a token whose header names none, is the key that
    /// verified it; one that differs from the header's is refused) or `{"jti": ..., "iat": ...,
    /// "claims": {...}, "kid": ...}`, every field optional.
    static func query(from object: [String: JSONValue], cutoffClaims: CutoffClaims) throws(ValidationError) -> CheckQuery {
        let kid = try Self.kid(object["kid"])
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
    private static func kid(_ value: JSONValue?) throws(ValidationError) -> String? {
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
    /// `{"revoked": false}`, `{"revoked": true, "reason": "jti"}` or
    /// `{"revoked": true, "reason": "cutoff", "claim": "sub"}`.
    var json: JSONValue {
        switch self {
        case .allowed: .object(["revoked": .bool(false)])
        case .revokedByJTI: .object(["revoked": .bool(true), "reason": .string("jti")])
        case .revokedByKey(let kid): .object(["revoked": .bool(true), "reason": .string("key"), "kid": .string(kid)])
        case .revokedByCutoff(let claim): .object(["revoked": .bool(true), "reason": .string("cutoff"), "claim": .string(claim)])
        }
    }
}
