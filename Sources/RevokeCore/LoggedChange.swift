/// One change of the event log (contract section 5), read from its type and JSON data: the one
/// reader of the six event types, for the server's snapshot keeper and the client's cache alike.
/// An event either reads whole or is ``Unreadable``: a reader never applies part of one, and
/// never skips one it cannot read (it loads everything again instead).
public enum LoggedChange: Sendable, Equatable {
    /// A `jti` revoked; `expiresAt` is the token's `exp` (Unix seconds), nil when it has none.
    case revocation(jti: String, expiresAt: Double?)
    /// A revocation taken back.
    case unrevocation(jti: String)
    /// A cutoff set or moved forward, with the record's other fields when the event carries
    /// them readably (they are informative: nil leaves the reader to derive them).
    case cutoff(claim: String, value: String, before: Int64, expiresAt: Int64?, createdAt: Int64?, reason: String?)
    /// A cutoff removed.
    case uncutoff(claim: String, value: String)
    /// A signing key blocked.
    case keyBlock(kid: String)
    /// A signing key unblocked.
    case keyUnblock(kid: String)

    /// Its type as the log names it (`revocation`, `keyblock`, ...).
    public var type: String {
        switch self {
        case .revocation: "revocation"
        case .unrevocation: "unrevocation"
        case .cutoff: "cutoff"
        case .uncutoff: "uncutoff"
        case .keyBlock: "keyblock"
        case .keyUnblock: "unkeyblock"
        }
    }

    /// An event of an unknown type, or whose data is not a JSON object with the fields its type
    /// needs, of the types it needs.
    public struct Unreadable: Error, CustomStringConvertible {
        public var type: String
        public init(type: String) {
            self.type = type
        }
        public var description: String { "an event of type \(type.debugDescription) could not be read" }
    }

    /// Reads an event from its type and its data (JSON, UTF-8).
    /// - Throws: ``Unreadable``.
    public init(type: String, data: some Sequence<UInt8>) throws(Unreadable) {
        guard case .object(let object)? = try? JSONValue(parsing: data) else { throw Unreadable(type: type) }
        try self.init(type: type, object: object)
    }

    /// Reads an event from its type and its data, already parsed.
    /// - Throws: ``Unreadable``.
    public init(type: String, object data: [String: JSONValue]) throws(Unreadable) {
        let unreadable = Unreadable(type: type)
        func string(_ key: String) throws(Unreadable) -> String {
            guard case .string(let text)? = data[key] else { throw unreadable }
            return text
        }
        /// A whole number of seconds, nil when absent or not one.
        func seconds(_ key: String) -> Int64? {
            guard case .number(let number)? = data[key] else { return nil }
            return Int64(exactly: number.rounded(.down))
        }
        switch type {
        case "revocation":
            let jti = try string("jti")
            switch data["expires_at"] {
            case .null?, nil: self = .revocation(jti: jti, expiresAt: nil)
            case .number(let expiresAt)?: self = .revocation(jti: jti, expiresAt: expiresAt)
            default: throw unreadable
            }
        case "unrevocation":
            self = .unrevocation(jti: try string("jti"))
        case "cutoff":
            let claim = try string("claim"), value = try string("value")
            guard let before = seconds("before") else { throw unreadable }
            var reason: String?
            if case .string(let text)? = data["reason"] { reason = text }
            self = .cutoff(
                claim: claim, value: value, before: before, expiresAt: seconds("expires_at"), createdAt: seconds("created_at"), reason: reason)
        case "uncutoff":
            self = .uncutoff(claim: try string("claim"), value: try string("value"))
        case "keyblock":
            self = .keyBlock(kid: try string("kid"))
        case "unkeyblock":
            self = .keyUnblock(kid: try string("kid"))
        default:
            throw unreadable
        }
    }
}
