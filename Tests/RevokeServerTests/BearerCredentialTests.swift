import RevokeHTTP
import RevokeTestSupport
import Testing

/// `BearerCredential` reads an `Authorization` value as Python's `str.split()` would (the most
/// lenient common authenticator): checked against that rule, written here on its own, over
/// random values made of the characters that matter (ASCII and Unicode whitespace, commas, the
/// scheme's letters in both cases, credential characters), ASCII-only ones included, which are
/// read byte by byte.
@Suite struct BearerCredentialTests {
    /// Whitespace as Python's str.split() sees it.
    private static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: true
        default: scalar.properties.isWhitespace
        }
    }

    private static func expected(_ value: String) -> BearerCredential {
        let words = value.unicodeScalars.split(whereSeparator: isSpace).map { String(String.UnicodeScalarView($0)) }
        guard let scheme = words.first else { return .none }
        if scheme.lowercased() == "bearer" {
            guard words.count == 2, words[1].unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) && $0 != "," }) else {
                return .unreadable
            }
            return .token(Substring(words[1]))
        }
        let pieces = value.unicodeScalars.split(whereSeparator: { $0 == "," || isSpace($0) }).dropFirst(2)
        let hidesBearer = pieces.contains { String(String.UnicodeScalarView($0)).lowercased().hasPrefix("bearer") }
        return scheme.lowercased().hasPrefix("bearer") || hidesBearer ? .unreadable : .otherScheme
    }

    @Test func readsAsStrSplitDoes() {
        var generator = SeededGenerator(seed: 20_261_207)
        let pieces = ["Bearer", "bearer", "BEARER", "Basic", "b", " ", "  ", "\t", "\u{0B}", "\u{1F}", "\u{A0}", "\u{2003}", "\u{85}", ",", ":",
                      "eyJhbGciOiJIUzI1NiJ9.e30.sig", "x", "-_~+/=", "é"]
        var asciiOnly = 0
        for _ in 0..<20_000 {
            let value = (0..<Int.random(in: 0...5, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            if value.utf8.allSatisfy({ $0 < 0x80 }) { asciiOnly += 1 }
            #expect(BearerCredential(value) == Self.expected(value), "\(value.debugDescription)")
        }
        #expect(asciiOnly > 5_000)
        #expect(BearerCredential(" Bearer\tabc ") == .token("abc"))
        #expect(BearerCredential("Bearer\u{A0}abc") == .token("abc"))
    }
}

/// SplitMix64, so that a failure names a value that comes back on the next run.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
