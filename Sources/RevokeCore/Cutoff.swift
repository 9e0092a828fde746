/// A cutoff: every token whose claim `claim` equals `value` and whose `iat` is at or before
/// `before` is revoked ("revoke by user", "revoke a session", "revoke a client app").
public struct CutoffRecord: Sendable, Hashable, Codable {
    /// The claim compared (`sub`, `sid`, `client_id`, or another configured one).
    public var claim: String
    /// The value it must equal, byte for byte.
    public var value: String
    /// Tokens issued at or before this time (Unix seconds) are revoked.
    public var before: Int64
    /// When the record may be forgotten: `before` plus the longest token lifetime.
    public var expiresAt: Int64
    /// When the cutoff was first created (Unix seconds).
    public var createdAt: Int64
    /// Why, as the responder gave it.
    public var reason: String?

    public init(claim: String, value: String, before: Int64, expiresAt: Int64, createdAt: Int64, reason: String?) {
        self.claim = claim
        self.value = value
        self.before = before
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case claim, value, before, reason
        case expiresAt = "expires_at"
        case createdAt = "created_at"
    }
}

/// The claims a cutoff may name (`REVOKE_CUTOFF_CLAIMS`).
public struct CutoffClaims: Sendable, Equatable {
    /// The allowed claim names, in the configured order.
    public let names: [String]

    /// The contract's default: `sub`, `sid`, `client_id`.
    public static let `default` = CutoffClaims(validated: ["sub", "sid", "client_id"])

    private init(validated names: [String]) {
        self.names = names
    }

    /// Parses a comma-separated list of claim names.
    /// - Throws: ``ValidationError`` for an empty list, an empty or repeated name, or a name
    ///   with characters other than letters, digits, `_`, `-` and `.`.
    public init(parsing list: String) throws(ValidationError) {
        var names: [String] = []
        for part in list.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingWhitespace()
            guard !name.isEmpty else { throw ValidationError("a claim name is empty") }
            guard name.utf8.allSatisfy({ Self.allowed($0) }) else {
                throw ValidationError("\"\(name)\" is not a claim name (letters, digits, _ - . only)")
            }
            guard !names.contains(name) else { throw ValidationError("\"\(name)\" is listed twice") }
            names.append(name)
        }
        self.init(validated: names)
    }

    /// Whether a cutoff may name this claim.
    public func allows(_ claim: String) -> Bool { names.contains(claim) }

    /// Where a claim stands in the configured order (checks match claims in it); claims not
    /// configured come last.
    public func order(_ claim: String) -> Int { names.firstIndex(of: claim) ?? names.count }

    private static func allowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        var text = self
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
