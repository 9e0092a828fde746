import RevokeCore

/// A revoked `jti`, as `GET /v1/revocations/{jti}` shows it.
public struct RevocationRecord: Sendable, Hashable, Codable {
    public var jti: String
    /// Always true: a record exists only while the token is revoked.
    public var revoked: Bool = true
    /// The token's `exp`, or nil for a token that never expires.
    public var expiresAt: Int64?
    /// When it was revoked (Unix seconds).
    public var revokedAt: Int64
    /// Why, when an incident responder said.
    public var reason: String?

    public init(jti: String, expiresAt: Int64?, revokedAt: Int64, reason: String?) {
        self.jti = jti
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case jti, revoked, reason
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jti, forKey: .jti)
        try container.encode(revoked, forKey: .revoked)
        try container.encode(expiresAt, forKey: .expiresAt)  // null, not absent, for "never"
        try container.encode(revokedAt, forKey: .revokedAt)
        try container.encode(reason, forKey: .reason)
    }
}

/// A blocked signing key: every token whose header names this `kid` is revoked.
public struct KeyBlockRecord: Sendable, Hashable, Codable {
    public var kid: String
    /// When it was blocked (Unix seconds).
    public var createdAt: Int64
    /// Why, as the responder gave it.
    public var reason: String?

    public init(kid: String, createdAt: Int64, reason: String?) {
        self.kid = kid
        self.createdAt = createdAt
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case kid, reason
        case createdAt = "created_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kid, forKey: .kid)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(reason, forKey: .reason)
    }
}

/// What blocking a key did.
public enum KeyBlockOutcome: Sendable, Equatable {
    /// Blocked now.
    case created(KeyBlockRecord)
    /// It was blocked already; the record as it was.
    case existing(KeyBlockRecord)
}

/// One admin action in the audit trail.
public struct AuditEntry: Sendable, Hashable, Codable {
    /// When (Unix seconds).
    public var at: Int64
    /// The API key's name.
    public var actor: String
    /// `revoke`, `unrevoke`, `cutoff`, `uncutoff`, `keyblock` or `unkeyblock`.
    public var action: String
    /// What it acted on: the `jti`, or `<claim>:<value>`.
    public var target: String
    /// Why, when the responder said.
    public var reason: String?

    public init(at: Int64, actor: String, action: String, target: String, reason: String?) {
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.reason = reason
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(at, forKey: .at)
        try container.encode(actor, forKey: .actor)
        try container.encode(action, forKey: .action)
        try container.encode(target, forKey: .target)
        try container.encode(reason, forKey: .reason)
    }
}

/// What revoking a token did.
public enum RevokeOutcome: Sendable, Equatable {
    /// Stored (or stored again).
    case revoked(RevocationRecord)
    /// The token had already expired: nothing to store.
    case alreadyExpired
}

/// What setting a cutoff did.
public enum CutoffOutcome: Sendable, Equatable {
    /// Created, or moved forward.
    case stored(CutoffRecord)
    /// An existing cutoff already reaches as far; returned unchanged.
    case unchanged(CutoffRecord)
    /// The one-time message that asked for it was applied before: nothing was done.
    case replayed
}
