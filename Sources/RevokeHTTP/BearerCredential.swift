import HTTPTypes

/// What a request's `Authorization` says, read as leniently as the most lenient common
/// authenticator reads it (Django REST framework and Starlette backends take `header.split()`:
/// any run of whitespace, the scheme in any case), so that no token an authenticator behind a
/// middleware accepts is one the middleware did not see.
///
/// - No `Authorization` field, or an empty one: ``none``.
/// - One field whose scheme is not `Bearer` (`Basic ...`) and that holds no `Bearer` after its
///   credential: ``otherScheme``, another authenticator's business.
/// - One field `Bearer` then one credential (visible ASCII without a comma: a JWT's token68
///   characters, and whatever an API key holds), with any run of whitespace around them:
///   ``token``.
/// - Anything else that carries a credential — `Bearer` with nothing, `Bearer a b`, a credential
///   with other characters, several `Authorization` fields — is ``unreadable``: a reader that
///   cannot tell what the authenticator behind it will accept must refuse it, never pass it on.
public enum BearerCredential: Equatable, Sendable {
    case none
    case otherScheme
    case token(Substring)
    case unreadable

    /// Reads the `Authorization` fields of a request.
    public init(_ fields: HTTPFields) {
        let values = fields[values: .authorization]
        switch values.count {
        case 0: self = .none
        case 1: self.init(values[0])
        default: self = .unreadable
        }
    }

    /// Reads one `Authorization` value.
    public init(_ value: some StringProtocol) {
        let value = Substring(value)
        if let bearer = Self.asciiBearer(value) {
            self = bearer
            return
        }
        let scalars = value.unicodeScalars
        // Whitespace as Python's str.split() sees it in a Latin-1 decoded header, which is the
        // widest reading any common authenticator applies.
        let isSpace: (Unicode.Scalar) -> Bool = { scalar in
            switch scalar.value {
            case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: true
            default: scalar.properties.isWhitespace
            }
        }
        var rest = scalars.drop(while: isSpace)
        while let last = rest.last, isSpace(last) { rest = rest.dropLast() }
        if rest.isEmpty {
            self = .none
            return
        }
        let scheme = String(Substring(rest.prefix { !isSpace($0) }))
        guard scheme.lowercased() == "bearer" else {
            // `Bearer<something>` glued together is no scheme anyone should guess at, and
            // `Basic x, Bearer y` (two fields joined by a proxy) holds a bearer token after all.
            let words = Substring(rest).split(whereSeparator: { $0 == "," || $0.unicodeScalars.allSatisfy(isSpace) }).dropFirst(2)
            let hidesBearer = words.contains { $0.lowercased().hasPrefix("bearer") }
            self = scheme.lowercased().hasPrefix("bearer") || hidesBearer ? .unreadable : .otherScheme
            return
        }
        let credential = rest.dropFirst(scheme.unicodeScalars.count).drop(while: isSpace)
        guard !credential.isEmpty, credential.allSatisfy(Self.isCredentialCharacter) else {
            self = .unreadable
            return
        }
        self = .token(Substring(credential))
    }

    /// The same reading, byte by byte, of a value that is ASCII and names the `Bearer` scheme
    /// (nearly every one a verifier or gateway forwards): nil for anything else, which the
    /// reading by Unicode scalars above takes.
    private static func asciiBearer(_ value: Substring) -> BearerCredential? {
        let bytes = value.utf8
        // Python's str.split() whitespace among ASCII: HT, LF, VT, FF, CR, FS, GS, RS, US, space.
        let isSpace = { (byte: UInt8) in (0x09...0x0D).contains(byte) || (0x1C...0x20).contains(byte) }
        guard var start = bytes.firstIndex(where: { !isSpace($0) }) else { return nil }
        var end = bytes.endIndex
        while end > start, isSpace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        guard bytes[start..<end].allSatisfy({ $0 < 0x80 }) else { return nil }
        let schemeEnd = bytes[start..<end].firstIndex(where: isSpace) ?? end
        guard bytes[start..<schemeEnd].elementsEqual("bearer".utf8, by: { ($0 | 0x20) == $1 }) else { return nil }
        start = bytes[schemeEnd..<end].firstIndex(where: { !isSpace($0) }) ?? end
        let credential = bytes[start..<end]
        guard !credential.isEmpty, credential.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ",") }) else { return .unreadable }
        return .token(Substring(credential))
    }

    /// The bearer token, when there is exactly one.
    public var token: Substring? {
        if case .token(let token) = self { return token }
        return nil
    }

    /// Visible ASCII but the comma, which joins fields: a JWT is token68, an API key printable
    /// ASCII (`REVOKE_ADMIN_KEYS` refuses anything else).
    private static func isCredentialCharacter(_ scalar: Unicode.Scalar) -> Bool {
        (0x21...0x7E).contains(scalar.value) && scalar != ","
    }
}
