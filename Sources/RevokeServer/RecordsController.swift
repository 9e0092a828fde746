import Hummingbird
import Logging
import Metrics
import RevokeCore
import RevokeHTTP
import RevokeStore

/// Revocations, cutoffs and key blocks: read with the verifier role, changed with the admin role;
/// the audit.
struct RecordsController: Sendable {
    let store: RevocationStore
    let revocations: Counter
    let cutoffs: Counter
    let keyBlocks: Counter

    func addRoutes(verifier read: some RouterMethods<RevokeRequestContext>, admin: some RouterMethods<RevokeRequestContext>) {

        Self.addRecordRoutes(
            read: read, admin: admin, path: "/v1/revocations", parameter: "jti", action: "unrevoke",
            missing: { "\($0.debugDescription) is not revoked" }, find: store.revocation(jti:), remove: store.unrevoke(jti:reason:actor:))
        admin.post("/v1/revocations") { request, context -> Response in
            var request = request
            let body = try await request.jsonObject(context: context)
            guard case .string(let jti)? = body["jti"] else { throw APIError.invalidRequest("jti must be a string") }
            try validateIdentifier(jti, field: "jti")
            let expiresAt: Int64?
            switch body["expires_at"] {
            case nil: throw APIError.invalidRequest("expires_at is required (a Unix time, or null for never)")
            case .null?: expiresAt = nil
            case .number(let value)? where value.isFinite && value.rounded(.up) < 9.2e18 && value.rounded(.up) > -9.2e18:
                expiresAt = Int64(value.rounded(.up))
            default: throw APIError.invalidRequest("expires_at must be a Unix time in seconds, or null")
            }
            let reason = try Self.reason(body)
            switch try await store.revoke(jti: jti, expiresAt: expiresAt, reason: reason, actor: context.actor) {
            case .revoked(let record):
                revocations.increment()
                Self.logAction("revoke", target: jti, reason: reason, context: context)
                return try jsonResponse(record, status: .created)
            case .alreadyExpired: return try jsonResponse(NotStored(), status: .ok)
            }
        }

        read.get("/v1/cutoffs/:claim/:value") { request, context -> Response in
            let claim = try request.pathParameter("claim", context: context)
            let value = try request.pathParameter("value", context: context)
            try store.validateCutoffTarget(claim: claim, value: value)
            guard let record = try await store.cutoff(claim: claim, value: value) else { throw APIError.notFound("no cutoff for \(claim) \(value.debugDescription)") }
            return try jsonResponse(record)
        }
        admin.delete("/v1/cutoffs/:claim/:value") { request, context -> Response in
            let claim = try request.pathParameter("claim", context: context)
            let value = try request.pathParameter("value", context: context)
            // The claim is part of the key: an unknown one (say `sub:x`) must not reach another's.
            try store.validateCutoffTarget(claim: claim, value: value)
            let reason = try Self.reason(request.uri.queryParameters.get("reason").map(JSONValue.string))
            guard try await store.deleteCutoff(claim: claim, value: value, reason: reason, actor: context.actor) else {
                throw APIError.notFound("no cutoff for \(claim) \(value.debugDescription)")
            }
            Self.logAction("uncutoff", target: "\(claim):\(value)", reason: reason, context: context)
            return Response(status: .noContent)
        }
        admin.post("/v1/cutoffs") { request, context -> Response in
            var request = request
            let body = try await request.jsonObject(context: context)
            guard case .string(let claim)? = body["claim"] else { throw APIError.invalidRequest("claim must be a string") }
            guard case .string(let value)? = body["value"] else { throw APIError.invalidRequest("value must be a string") }
            let before: Int64?
            switch body["before"] {
            case nil, .null?: before = nil
            case .number(let number)? where number.isFinite && abs(number) < 9.2e18: before = Int64(number.rounded(.down))
            default: throw APIError.invalidRequest("before must be a Unix time in seconds")
            }
            let reason = try Self.reason(body)
            switch try await store.setCutoff(claim: claim, value: value, before: before, reason: reason, actor: context.actor) {
            case .stored(let record):
                cutoffs.increment()
                Self.logAction("cutoff", target: "\(claim):\(value)", reason: reason, context: context)
                return try jsonResponse(record, status: .created)
            case .unchanged(let record): return try jsonResponse(record, status: .ok)
            case .replayed: throw APIError.internalError  // only a one-time message is replayed; this write carries none
            }
        }

        Self.addRecordRoutes(
            read: read, admin: admin, path: "/v1/key-blocks", parameter: "kid", action: "unkeyblock",
            missing: { "the key \($0.debugDescription) is not blocked" }, find: store.keyBlock(kid:), remove: store.unblockKey(kid:reason:actor:))
        admin.post("/v1/key-blocks") { request, context -> Response in
            var request = request
            let body = try await request.jsonObject(context: context)
            guard case .string(let kid)? = body["kid"] else { throw APIError.invalidRequest("kid must be a string") }
            try validateIdentifier(kid, field: "kid")
            let reason = try Self.reason(body)
            switch try await store.blockKey(kid: kid, reason: reason, actor: context.actor) {
            case .created(let record):
                keyBlocks.increment()
                Self.logAction("keyblock", target: kid, reason: reason, context: context)
                return try jsonResponse(record, status: .created)
            case .existing(let record): return try jsonResponse(record, status: .ok)
            }
        }

        admin.get("/v1/audit") { request, _ -> Response in
            var limit = Limits.defaultAuditEntries
            if let text = request.uri.queryParameters.get("limit") {
                guard let number = Int(text), (1...Limits.maximumAuditEntries).contains(number) else {
                    throw APIError.invalidRequest("limit must be a whole number from 1 to \(Limits.maximumAuditEntries)")
                }
                limit = number
            }
            return try jsonResponse(["entries": try await store.audit(limit: limit)])
        }

    }

    /// `GET path/:parameter` (verifier: the record, or 404) and `DELETE path/:parameter` (admin:
    /// 204, or 404; `?reason=` goes to the audit) of a record named by one path parameter.
    private static func addRecordRoutes<Record: Encodable & Sendable>(
        read: some RouterMethods<RevokeRequestContext>, admin: some RouterMethods<RevokeRequestContext>, path: String, parameter: String,
        action: String, missing: @escaping @Sendable (String) -> String,
        find: @escaping @Sendable (String) async throws -> Record?,
        remove: @escaping @Sendable (String, String?, String?) async throws -> Bool
    ) {
        read.get("\(path)/:\(parameter)") { request, context -> Response in
            let name = try request.pathParameter(parameter, context: context)
            guard let record = try await find(name) else { throw APIError.notFound(missing(name)) }
            return try jsonResponse(record)
        }
        admin.delete("\(path)/:\(parameter)") { request, context -> Response in
            let name = try request.pathParameter(parameter, context: context)
            let reason = try Self.reason(request.uri.queryParameters.get("reason").map(JSONValue.string))
            guard try await remove(name, reason, context.actor) else { throw APIError.notFound(missing(name)) }
            Self.logAction(action, target: name, reason: reason, context: context)
            return Response(status: .noContent)
        }
    }

    /// Admin actions are logged at `info` (the audit list in Redis is the record; the log lets
    /// an operator follow an incident as it happens).
    private static func logAction(_ action: String, target: String, reason: String?, context: RevokeRequestContext) {
        context.logger.info(
            "admin action",
            metadata: ["action": "\(action)", "target": .client(target), "actor": .client(context.actor ?? "-"), "reason": .client(reason ?? "")])
    }

    private static func reason(_ body: [String: JSONValue]) throws -> String? {
        try reason(body["reason"])
    }

    /// A reason from a body or a query: a string of at most ``Limits/maximumReasonBytes``, or nothing.
    private static func reason(_ value: JSONValue?) throws -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?:
            guard text.utf8.count <= Limits.maximumReasonBytes else {
                throw APIError.invalidRequest("reason is longer than \(Limits.maximumReasonBytes) bytes")
            }
            return text.isEmpty ? nil : text
        default: throw APIError.invalidRequest("reason must be a string")
        }
    }
}

/// `{"revoked": false, "reason": "expired"}`: the token had already expired.
struct NotStored: Encodable {
    var revoked = false
    var reason = "expired"
}
