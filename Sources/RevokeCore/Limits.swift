/// The contract's limits on what clients may send.
public enum Limits {
    /// Longest `jti` (and cutoff value), in UTF-8 bytes.
    public static let maximumIdentifierBytes = 256
    /// Largest request body, in bytes.
    public static let maximumBodyBytes = 64 * 1024
    /// Most tokens in one `POST /v1/revoke`.
    public static let maximumTokensPerRevoke = 16
    /// Most checks in one `POST /v1/check/batch`.
    public static let maximumChecksPerBatch = 1000
    /// Longest `reason` of an admin action, in UTF-8 bytes (in a body or a `?reason=` query).
    public static let maximumReasonBytes = 1024
    /// Audit entries `GET /v1/audit` returns without `limit`, and the most it returns with one.
    public static let defaultAuditEntries = 100
    public static let maximumAuditEntries = 1000
    /// Seconds a request head may take to arrive once its first byte has, by default
    /// (`REVOKE_HEAD_TIMEOUT`); then the connection is closed.
    public static let requestHeadSeconds: Int64 = 10
}

/// Why client input was refused; the server reports it as 400 `invalid_request`.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A sentence for a person, naming the field.
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Checks that a `jti` or cutoff value is 1 to 256 bytes of UTF-8 (Swift strings always are
/// valid UTF-8; the length is what can be wrong). The value is never trimmed or folded.
/// - Parameters:
///   - value: The identifier.
///   - field: Its name, for the message.
public func validateIdentifier(_ value: String, field: String) throws(ValidationError) {
    let length = value.utf8.count
    if length == 0 { throw ValidationError("\(field) must not be empty") }
    if length > Limits.maximumIdentifierBytes {
        throw ValidationError("\(field) is \(length) bytes; at most \(Limits.maximumIdentifierBytes) are allowed")
    }
}
