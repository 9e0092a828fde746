import RevokeCore
import Testing

@Suite struct RevocationPolicyTests {
    let policy = RevocationPolicy()

    @Test func ttlIsTheRemainingLifetimeRoundedUp() {
        #expect(policy.lifetime(expiresAt: 1_000, now: 400) == .seconds(600))
        #expect(policy.lifetime(expiresAt: 1_000, now: 999.2) == .seconds(1))
        #expect(policy.lifetime(expiresAt: 1_000, now: 400.5) == .seconds(600))
    }

    @Test func anExpiredTokenNeedsNoRecord() {
        #expect(policy.lifetime(expiresAt: 1_000, now: 1_000) == .expired)
        #expect(policy.lifetime(expiresAt: 1_000, now: 5_000) == .expired)
    }

    @Test func aTokenWithoutExpiryIsKeptForever() {
        #expect(policy.lifetime(expiresAt: nil, now: 1_000) == .forever)
    }

    @Test func clockSkewWidensTheTTLAndTheExpiryTest() {
        let skewed = RevocationPolicy(clockSkew: 30)
        #expect(skewed.lifetime(expiresAt: 1_000, now: 400) == .seconds(630))
        // Past exp but within the skew: verifiers may still accept it, so it is still stored.
        #expect(skewed.lifetime(expiresAt: 1_000, now: 1_010) == .seconds(20))
        #expect(skewed.lifetime(expiresAt: 1_000, now: 1_030) == .expired)
    }

    @Test func absurdExpiriesDoNotOverflow() {
        #expect(RevocationPolicy(clockSkew: 60).lifetime(expiresAt: .max, now: 0) == .forever)
        #expect(policy.lifetime(expiresAt: .max, now: 0) == .forever)
        #expect(policy.lifetime(expiresAt: .min, now: 0) == .expired)
    }

    @Test func aCutoffLivesUntilBeforePlusTheLongestLifetime() {
        let policy = RevocationPolicy(clockSkew: 5, maximumTokenLifetime: 3_600)
        #expect(policy.cutoffExpiry(before: 10_000) == 13_600)
        #expect(policy.cutoffLifetime(before: 10_000, now: 10_000) == .seconds(3_605))
        #expect(policy.cutoffLifetime(before: 10_000, now: 20_000) == .expired)
    }
}

@Suite struct CutoffTests {
    let record = CutoffRecord(claim: "sub", value: "alice", before: 1_000, expiresAt: 4_600, createdAt: 1_000, reason: nil)

    @Test func revokesTokensIssuedAtOrBeforeTheCutoff() {
        #expect(record.revokes(issuedAt: 999))
        #expect(record.revokes(issuedAt: 1_000))
        #expect(!record.revokes(issuedAt: 1_000.5))
        #expect(!record.revokes(issuedAt: 1_001))
    }

    @Test func aTokenWithoutIatIsRevoked() {
        #expect(record.revokes(issuedAt: nil))
    }

    @Test func theVerdictNamesTheJTIFirstThenTheFirstMatchingClaim() {
        let query = CheckQuery(jti: "j", issuedAt: 500, claims: ["sub": "alice", "sid": "s-1"])
        #expect(CheckVerdict(query: query, jtiRevoked: true, cutoffs: []) == .revokedByJTI)
        #expect(
            CheckVerdict(query: query, jtiRevoked: false, cutoffs: [("sub", nil), ("sid", 900)])
                == .revokedByCutoff(claim: "sid"))
        #expect(
            CheckVerdict(query: query, jtiRevoked: false, cutoffs: [("sub", 1_000), ("sid", 900)])
                == .revokedByCutoff(claim: "sub"))
        let later = CheckQuery(jti: "j", issuedAt: 2_000, claims: ["sub": "alice"])
        #expect(CheckVerdict(query: later, jtiRevoked: false, cutoffs: [("sub", 1_000)]) == .allowed)
        #expect(CheckVerdict(query: later, jtiRevoked: false, cutoffs: [("sub", nil)]) == .allowed)
    }

    @Test func parsesTheAllowedClaims() throws {
        #expect(try CutoffClaims(parsing: "sub, sid,client_id,tenant.id").names == ["sub", "sid", "client_id", "tenant.id"])
        #expect(CutoffClaims.default.allows("client_id"))
        #expect(!CutoffClaims.default.allows("email"))
        for bad in ["", "sub,", "sub,sub", "sub,e mail", "s*"] {
            #expect(throws: ValidationError.self, "\(bad)") { try CutoffClaims(parsing: bad) }
        }
    }
}

@Suite struct IdentifierTests {
    @Test func acceptsOneTo256BytesOfUTF8() throws {
        try validateIdentifier("a", field: "jti")
        try validateIdentifier(String(repeating: "é", count: 128), field: "jti")  // 256 bytes
        try validateIdentifier("\r\n*3\r\n$3\r\nDEL", field: "jti")
        #expect(throws: ValidationError("jti must not be empty")) { try validateIdentifier("", field: "jti") }
        #expect(throws: ValidationError.self) { try validateIdentifier(String(repeating: "é", count: 128) + "x", field: "jti") }
    }
}
