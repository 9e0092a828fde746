import Foundation

/// The claims Revoke reads from a token: `jti`, `iat`, `exp`, and every string-valued claim
/// (for cutoffs). Reading does not verify the signature; callers that must, verify first.
public struct TokenClaims: Sendable, Equatable {
    /// `jti`, when present as a string.
    public var jti: String?
    /// `iat`, Unix seconds, when present as a number.
    public var issuedAt: Double?
    /// `exp`, Unix seconds, when present as a number.
    public var expiresAt: Double?
    /// Every top-level claim whose value is a string, by name.
    public var strings: [String: String]

    public init(jti: String? = nil, issuedAt: Double? = nil, expiresAt: Double? = nil, strings: [String: String] = [:]) {
        self.jti = jti
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.strings = strings
    }

    /// `exp` rounded up to whole seconds (a token valid until 100.5 is still valid at 100.2),
    /// clamped into `Int64`.
    public var expiresAtSeconds: Int64? {
        guard let expiresAt else { return nil }
        let rounded = expiresAt.rounded(.up)
        if rounded >= 9.2e18 { return Int64.max }
        if rounded <= -9.2e18 { return Int64.min }
        return Int64(rounded)
    }

    /// Reads the payload of a compact JWS (`header.payload.signature`).
    /// - Throws: ``ValidationError`` when the token is not three base64url parts or the
    ///   payload is not a JSON object, or a registered claim (`jti`, `iss`, `sub`, `aud`,
    ///   `exp`, `nbf`, `iat`) has the wrong type.
    public init(compactJWS token: String) throws(ValidationError) {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ValidationError("the token is not a compact JWS (header.payload.signature)")
        }
        guard let payload = Base64URL.decode(parts[1]) else {
            throw ValidationError("the token's payload is not base64url")
        }
        try self.init(payloadJSON: payload)
    }

    /// The `kid` in the protected header of a compact JWS, if it has one.
    /// - Throws: ``ValidationError`` when the header is not base64url JSON, or its `kid` is not
    ///   a string.
    public static func keyID(compactJWS token: String) throws(ValidationError) -> String? {
        guard let header = token.utf8.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false).first,
            let bytes = Base64URL.decode(header)
        else { throw ValidationError("the token's header is not base64url") }
        guard case .object(let fields)? = try? JSONValue(parsing: bytes) else {
            throw ValidationError("the token's header is not a JSON object")
        }
        switch fields["kid"] {
        case nil: return nil
        case .string(let kid)?: return kid
        default: throw ValidationError("the token's kid must be a string")
        }
    }

    /// Reads claims from a JWT payload (a JSON object).
    public init(payloadJSON: Data) throws(ValidationError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: payloadJSON)
        } catch {
            throw ValidationError("the token's payload is not JSON")
        }
        guard case .object(let claims) = value else {
            throw ValidationError("the token's payload is not a JSON object")
        }
        try self.init(claims: claims)
    }

    /// Reads claims from a decoded JSON object.
    public init(claims: [String: JSONValue]) throws(ValidationError) {
        self.init()
        for (name, value) in claims {
            if case .string(let text) = value { strings[name] = text }
        }
        switch claims["jti"] {
        case nil, .null?: break
        case .string(let text)?: jti = text
        default: throw ValidationError("jti must be a string")
        }
        issuedAt = try Self.number(claims["iat"], name: "iat")
        expiresAt = try Self.number(claims["exp"], name: "exp")
        _ = try Self.number(claims["nbf"], name: "nbf")
        // RFC 7519 section 4.1: `iss` and `sub` are strings, `aud` a string or an array of them.
        for name in ["iss", "sub"] {
            switch claims[name] {
            case nil, .string?: break
            default: throw ValidationError("\(name) must be a string")
            }
        }
        switch claims["aud"] {
        case nil, .string?: break
        case .array(let values)? where values.allSatisfy({ if case .string = $0 { true } else { false } }): break
        default: throw ValidationError("aud must be a string or an array of strings")
        }
    }

    private static func number(_ value: JSONValue?, name: String) throws(ValidationError) -> Double? {
        switch value {
        case nil, .null?: return nil
        case .number(let number)? where number.isFinite: return number
        default: throw ValidationError("\(name) must be a number of seconds")
        }
    }
}

/// base64url without padding (RFC 7515 section 2), as JWS uses it.
public enum Base64URL {
    /// Decodes base64url, padded or not; nil for any other character or a bad length.
    public static func decode(_ text: some Collection<UInt8>) -> Data? {
        var standard = [UInt8]()
        standard.reserveCapacity(text.count + 3)
        for byte in text {
            switch byte {
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            case UInt8(ascii: "+"), UInt8(ascii: "/"): return nil
            default: standard.append(byte)
            }
        }
        while let last = standard.last, last == UInt8(ascii: "=") { standard.removeLast() }
        if standard.count % 4 == 1 { return nil }
        while standard.count % 4 != 0 { standard.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(standard))
    }

    /// Encodes bytes as base64url without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
