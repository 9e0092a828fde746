import RevokeCore
import Testing

/// `LoggedChange`, the one reader of the event log's six types (server's keeper and client's
/// cache): every type reads, and an event reads whole or not at all.
@Suite struct LoggedChangeTests {
    private func read(_ type: String, _ json: String) throws(LoggedChange.Unreadable) -> LoggedChange {
        try LoggedChange(type: type, data: Array(json.utf8))
    }

    @Test func everyTypeReads() throws {
        #expect(try read("revocation", #"{"jti":"a","expires_at":1700000000.5,"reason":"x"}"#) == .revocation(jti: "a", expiresAt: 1_700_000_000.5))
        #expect(try read("revocation", #"{"jti":"a","expires_at":null}"#) == .revocation(jti: "a", expiresAt: nil))
        #expect(try read("revocation", #"{"jti":"a"}"#) == .revocation(jti: "a", expiresAt: nil))
        #expect(try read("unrevocation", #"{"jti":"a"}"#) == .unrevocation(jti: "a"))
        #expect(
            try read("cutoff", #"{"claim":"sub","value":"é","before":1700000000,"expires_at":1700086400,"created_at":1700000001,"reason":"r"}"#)
                == .cutoff(claim: "sub", value: "é", before: 1_700_000_000, expiresAt: 1_700_086_400, createdAt: 1_700_000_001, reason: "r"))
        // The record's other fields are informative: absent or unreadable, they are left out.
        #expect(
            try read("cutoff", #"{"claim":"sub","value":"u","before":1700000000.9,"expires_at":"soon","reason":7}"#)
                == .cutoff(claim: "sub", value: "u", before: 1_700_000_000, expiresAt: nil, createdAt: nil, reason: nil))
        #expect(try read("uncutoff", #"{"claim":"sid","value":"s"}"#) == .uncutoff(claim: "sid", value: "s"))
        #expect(try read("keyblock", #"{"kid":"k1"}"#) == .keyBlock(kid: "k1"))
        #expect(try read("unkeyblock", #"{"kid":"k1"}"#) == .keyUnblock(kid: "k1"))
        for change in [LoggedChange.revocation(jti: "a", expiresAt: nil), .unrevocation(jti: "a"), .uncutoff(claim: "c", value: "v"),
            .cutoff(claim: "c", value: "v", before: 1, expiresAt: nil, createdAt: nil, reason: nil), .keyBlock(kid: "k"), .keyUnblock(kid: "k")]
        {
            #expect(try read(change.type, Self.minimal[change.type]!) == change)
        }
    }

    private static let minimal = [
        "revocation": #"{"jti":"a"}"#, "unrevocation": #"{"jti":"a"}"#, "cutoff": #"{"claim":"c","value":"v","before":1}"#,
        "uncutoff": #"{"claim":"c","value":"v"}"#, "keyblock": #"{"kid":"k"}"#, "unkeyblock": #"{"kid":"k"}"#,
    ]

    @Test(arguments: [
        ("revocation", #"{"expires_at":null}"#),  // no jti
        ("revocation", #"{"jti":7}"#),  // not a string
        ("revocation", #"{"jti":"a","expires_at":"tomorrow"}"#),  // an expiry that is not a number
        ("unrevocation", #"{}"#),
        ("cutoff", #"{"claim":"sub","value":"u"}"#),  // no before
        ("cutoff", #"{"claim":"sub","value":"u","before":1e300}"#),  // not a whole number of seconds
        ("cutoff", #"{"claim":"sub","before":1}"#),
        ("uncutoff", #"{"claim":"sub"}"#),
        ("keyblock", #"{"kid":null}"#),
        ("unkeyblock", #"[]"#),  // not an object
        ("revocation", #"{"jti":"a""#),  // not JSON
        ("rename", #"{"jti":"a"}"#),  // a type nobody knows
    ])
    func anythingElseIsUnreadable(type: String, json: String) {
        #expect(throws: LoggedChange.Unreadable.self) { try read(type, json) }
    }
}
