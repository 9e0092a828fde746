import Foundation
import RevokeCore
import Testing

@Suite struct TokenClaimsTests {
    private func token(_ payload: String, header: String = #"{"alg":"HS256","typ":"JWT"}"#) -> String {
        Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8)) + ".c2ln"
    }

    @Test func readsTheClaimsCutoffsAndTTLsNeed() throws {
        let claims = try TokenClaims(
            compactJWS: token(#"{"jti":"a-1","iat":1700000000,"exp":1700000600.25,"sub":"alice","sid":"s-1","n":5,"admin":true}"#))
        #expect(claims.jti == "a-1")
        #expect(claims.issuedAt == 1_700_000_000)
        #expect(claims.expiresAt == 1_700_000_600.25)
        #expect(claims.expiresAtSeconds == 1_700_000_601)
        #expect(claims.strings == ["jti": "a-1", "sub": "alice", "sid": "s-1"])
        let query = CheckQuery(claims, cutoffClaims: .default)
        #expect(query.claims == ["sub": "alice", "sid": "s-1"])
    }

    @Test func acceptsAnAudienceArrayOfStrings() throws {
        let claims = try TokenClaims(compactJWS: token(#"{"aud":["a","b"],"iss":"i","sub":"s","nbf":1}"#))
        #expect(claims.strings == ["iss": "i", "sub": "s"])
    }

    @Test func missingClaimsAreNil() throws {
        let claims = try TokenClaims(compactJWS: token("{}"))
        #expect(claims.jti == nil && claims.issuedAt == nil && claims.expiresAt == nil)
    }

    @Test(arguments: [
        "", "abc", "a.b", "a.b.c.d", ".e30.", "e30..sig", "e30.!!!.sig", "e30.e30x.sig",
    ])
    func refusesWhatIsNotACompactJWS(_ text: String) {
        #expect(throws: ValidationError.self) { try TokenClaims(compactJWS: text) }
    }

    @Test(arguments: [
        "[1,2]", "\"text\"", "{", #"{"jti":5}"#, #"{"exp":"soon"}"#, #"{"iat":true}"#, #"{"exp":[1]}"#,
        #"{"nbf":"later"}"#, #"{"sub":{"id":1}}"#, #"{"iss":7}"#, #"{"aud":["a",1]}"#, #"{"aud":{}}"#,
    ])
    func refusesPayloadsWithTheWrongShape(_ payload: String) {
        #expect(throws: ValidationError.self) { try TokenClaims(compactJWS: token(payload)) }
    }

    @Test func base64URLRoundTrips() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 251) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(Array(encoded.utf8)) == Data(bytes))
        }
        #expect(Base64URL.decode(Array("a+b/".utf8)) == nil)
    }
}
