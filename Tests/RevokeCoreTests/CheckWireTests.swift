import RevokeCore
import Testing

/// The check's wire form, read and written by both sides with the same code: what one writes,
/// the other reads back unchanged; a revocation for a reason the reader does not know stays a
/// revocation.
@Suite struct CheckWireTests {
    @Test func aQueryReadsBackAsItWasWritten() throws {
        let queries = [
            CheckQuery(),
            CheckQuery(jti: "j-1"),
            CheckQuery(jti: "j-2", issuedAt: 1_700_000_000.5, claims: ["sub": "alice", "sid": "s-9"], kid: "k-1"),
        ]
        for query in queries {
            guard case .object(let object) = query.json else {
                Issue.record("not an object")
                continue
            }
            #expect(try CheckQuery(json: object, cutoffClaims: .default) == query)
        }
        // Claims no cutoff may name are dropped on reading, not refused.
        let read = try CheckQuery(json: ["claims": .object(["sub": .string("a"), "email": .string("a@x")])], cutoffClaims: .default)
        #expect(read.claims == ["sub": "a"])
        #expect(throws: ValidationError.self) { try CheckQuery(json: ["jti": .number(5)], cutoffClaims: .default) }
    }

    @Test func aVerdictReadsBackAsItWasWritten() throws {
        for verdict in [CheckVerdict.allowed, .revokedByJTI, .revokedByCutoff(claim: "sub"), .revokedByKey(kid: "leaked")] {
            guard case .object(let object) = verdict.json else {
                Issue.record("not an object")
                continue
            }
            #expect(try CheckVerdict(json: object) == verdict)
        }
        #expect(try CheckVerdict(json: ["revoked": .bool(true), "reason": .string("something-new")]) == .revokedByJTI)
        #expect(throws: ValidationError.self) { try CheckVerdict(json: ["reason": .string("jti")]) }
    }
}
