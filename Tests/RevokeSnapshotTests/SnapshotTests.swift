import Foundation
import RevokeSnapshot
import Testing

@Suite struct SnapshotTests {
    @Test func xxh64MatchesTheReferenceVectors() {
        // From the xxHash reference implementation (XXH64, seed 0 unless stated).
        #expect(XXH64.hash("") == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash("a") == 0xD24E_C4F1_A98C_6E5B)
        #expect(XXH64.hash("abc") == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash("Nobody inspects the spammish repetition") == 0xFBCE_A83C_8A37_8BF1)
    }

    func sample(revocations: Int = 300) -> (Snapshot, [String]) {
        let filter = BloomFilter(capacity: revocations, falsePositiveRate: 0.01)
        let jtis = (0..<revocations).map { "jti-\($0)" }
        for jti in jtis { filter.insert(jti) }
        let cutoffs = [
            Snapshot.Cutoff(claim: "sub", value: "alice", before: 1_700_000_000, expiresAt: 1_702_592_000),
            Snapshot.Cutoff(claim: "sid", value: "s-\u{1F511}", before: 1_700_000_100, expiresAt: 1_702_592_100),
        ]
        return (Snapshot(createdAt: 1_700_000_200, cursor: "1700000200000-3", revocations: revocations, filter: filter, cutoffs: cutoffs), jtis)
    }

    @Test func roundTrips() throws {
        let (snapshot, jtis) = sample()
        let decoded = try Snapshot(decoding: snapshot.encoded())
        #expect(decoded.cursor == "1700000200000-3")
        #expect(decoded.createdAt == 1_700_000_200)
        #expect(decoded.revocations == 300)
        #expect(decoded.cutoffs == snapshot.cutoffs)
        #expect(decoded.filter.blocks == snapshot.filter.blocks && decoded.filter.hashes == snapshot.filter.hashes)
        for jti in jtis { #expect(decoded.filter.mightContain(jti)) }
    }

    @Test func refusesTruncatedCorruptedAndForeignSnapshots() throws {
        let (snapshot, _) = sample(revocations: 50)
        let bytes = snapshot.encoded()
        // Every truncation.
        for length in 0..<bytes.count {
            #expect(throws: Snapshot.FormatError.self) { try Snapshot(decoding: Array(bytes[..<length])) }
        }
        // Every single flipped bit of the header and cutoffs, and a sample of the filter's.
        for index in Array(0..<200) + Array(stride(from: 200, to: bytes.count, by: 97)) {
            var corrupted = bytes
            corrupted[index] ^= 0x10
            #expect(throws: Snapshot.FormatError.self) { try Snapshot(decoding: corrupted) }
        }
        var otherVersion = bytes
        otherVersion[4] = 3
        #expect(throws: Snapshot.FormatError("snapshot version 3; this client reads versions 1 to 2")) { try Snapshot(decoding: otherVersion) }
        #expect(throws: Snapshot.FormatError.self) { try Snapshot(decoding: Array("not a snapshot at all, just text".utf8)) }
        #expect(throws: Snapshot.FormatError.self) { try Snapshot(decoding: [UInt8](repeating: 0, count: 4096)) }
    }

    @Test func refusesSizesThatDoNotAddUpEvenWithAValidChecksum() throws {
        let (snapshot, _) = sample(revocations: 50)
        var bytes = snapshot.encoded()
        // Claim 2^40 blocks (offset 24: after magic, version, hash, hashes, reserved, created_at,
        // revocations), then fix the checksum so only the sizes are wrong.
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { bytes.replaceSubrange(24..<32, with: $0) }
        let body = Array(bytes[..<(bytes.count - 8)])
        let checksum = body.withUnsafeBytes { XXH64.hash($0, seed: 0x5245_564B) }
        withUnsafeBytes(of: checksum.littleEndian) { bytes.replaceSubrange((bytes.count - 8)..., with: $0) }
        #expect(throws: Snapshot.FormatError("the filter's size does not match the data")) { try Snapshot(decoding: bytes) }
    }

    /// The measured rate of "maybe" for absent keys, with 1,000,000 keys in a filter sized
    /// for them at 1%, matches the configured rate.
    @Test func falsePositiveRateMatchesTheConfiguredRate() {
        let count = 1_000_000
        let filter = BloomFilter(capacity: count, falsePositiveRate: 0.01)
        for index in 0..<count { filter.insert("revoked-\(index)-jti") }
        var positives = 0
        for index in 0..<count where filter.mightContain("absent-\(index)-jti") { positives += 1 }
        let rate = Double(positives) / Double(count)
        #expect(rate > 0.007 && rate < 0.0115, "measured \(rate)")
        // 1% at 1,000,000 keys stays under 1.5 MB.
        #expect(filter.byteCount <= 1_500_000, "\(filter.byteCount) bytes")
        for index in stride(from: 0, to: count, by: 1000) { #expect(filter.mightContain("revoked-\(index)-jti")) }
    }

    @Test(arguments: [0.1, 0.01, 0.001])
    func sizingReachesTheTarget(_ rate: Double) {
        let size = BloomFilter.size(capacity: 100_000, falsePositiveRate: rate)
        let expected = BloomFilter.expectedFalsePositiveRate(keys: 100_000, blocks: Double(size.blocks), hashes: size.hashes)
        #expect(expected <= rate && expected > rate * 0.9)
    }
}

@Suite struct SnapshotVersionTests {
    /// Version 2 carries key blocks; version 1 (no key blocks) still reads; others are refused.
    @Test func keyBlocksRoundTripAndVersionOneStillReads() throws {
        let filter = BloomFilter(capacity: 100, falsePositiveRate: 0.01)
        filter.insert("a")
        let snapshot = Snapshot(createdAt: 1, cursor: "5-0", revocations: 1, filter: filter, cutoffs: [], keyBlocks: ["k1", "ключ"])
        var bytes = snapshot.encoded()
        #expect(bytes[4] == 2)
        #expect(try Snapshot(decoding: bytes).keyBlocks == ["k1", "ключ"])
        // The seed corpus holds a version 1 snapshot.
        let seed = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Fuzz/corpus/snapshot/small")
        let old = try Snapshot(decoding: Array(try Data(contentsOf: seed)))
        #expect(old.keyBlocks.isEmpty && old.revocations > 0)
        bytes[4] = 3
        #expect(throws: Snapshot.FormatError.self) { try Snapshot(decoding: bytes) }
    }
}
