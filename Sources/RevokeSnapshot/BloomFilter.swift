import Atomics

/// A blocked Bloom filter of `jti`s: every key sets and tests its bits inside one 64-byte block,
/// one cache line, so a lookup costs one memory access however large the filter.
///
/// The block is `mulhi(XXH64(jti), blocks)`; the bit positions inside it come from a SplitMix64
/// remix of the same hash, by enhanced double hashing. Both are part of the snapshot format.
///
/// Thread safety: lookups and insertions may run concurrently from any threads. The words are
/// read and set with relaxed atomic operations (a plain load on x86-64 and arm64): a lookup sees
/// a key inserted concurrently either entirely or not yet, and never anything that was not set.
public final class BloomFilter: @unchecked Sendable {
    /// 64-byte blocks of 8 words.
    public static let wordsPerBlock = 8
    /// Bits per block.
    public static let bitsPerBlock = 512

    /// Number of 64-byte blocks.
    public let blocks: Int
    /// Bits set per key.
    public let hashes: Int
    private let words: UnsafeMutablePointer<UInt64.AtomicRepresentation>

    /// An empty filter of `blocks` blocks (at least 1) with `hashes` bits per key (1 to 16).
    public init(blocks: Int, hashes: Int) {
        precondition(blocks >= 1 && (1...16).contains(hashes))
        self.blocks = blocks
        self.hashes = hashes
        let raw = UnsafeMutableRawPointer.allocate(byteCount: blocks * 64, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: blocks * 64)
        words = raw.bindMemory(to: UInt64.AtomicRepresentation.self, capacity: blocks * Self.wordsPerBlock)
    }

    deinit {
        UnsafeMutableRawPointer(words).deallocate()
    }

    /// A filter sized for `capacity` keys at `falsePositiveRate` (see ``size(capacity:falsePositiveRate:)``).
    public convenience init(capacity: Int, falsePositiveRate: Double) {
        let size = Self.size(capacity: capacity, falsePositiveRate: falsePositiveRate)
        self.init(blocks: size.blocks, hashes: size.hashes)
    }

    /// The memory the filter's bits take, in bytes.
    public var byteCount: Int { blocks * 64 }

    // MARK: - Keys

    @inline(__always)
    private func positions(_ hash: UInt64) -> (block: Int, first: UInt32, step: UInt32) {
        let block = Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(blocks)).high)
        var mixed = hash &+ 0x9E37_79B9_7F4A_7C15
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        return (block, UInt32(truncatingIfNeeded: mixed), UInt32(truncatingIfNeeded: mixed >> 32) | 1)
    }

    /// Adds a key by its hash (``XXH64/hash(_:seed:)`` of its UTF-8 bytes).
    public func insert(hash: UInt64) {
        let (block, first, step) = positions(hash)
        let base = words + block * Self.wordsPerBlock
        var position = first
        for _ in 0..<hashes {
            let bit = Int(position & 511)
            UnsafeAtomic<UInt64>(at: base + (bit >> 6)).loadThenBitwiseOr(with: 1 << UInt64(bit & 63), ordering: .relaxed)
            position = position &+ step
        }
    }

    /// Whether the key with this hash may have been added: `false` is certain.
    @inline(__always)
    public func mightContain(hash: UInt64) -> Bool {
        let (block, first, step) = positions(hash)
        let base = words + block * Self.wordsPerBlock
        var position = first
        for _ in 0..<hashes {
            let bit = Int(position & 511)
            if UnsafeAtomic<UInt64>(at: base + (bit >> 6)).load(ordering: .relaxed) & (1 << UInt64(bit & 63)) == 0 { return false }
            position = position &+ step
        }
        return true
    }

    /// Adds a `jti`.
    public func insert(_ jti: String) { insert(hash: XXH64.hash(jti)) }

    /// Whether a `jti` may have been added: `false` is certain.
    public func mightContain(_ jti: String) -> Bool { mightContain(hash: XXH64.hash(jti)) }

    // MARK: - Bytes

    /// Copies the bits out, little-endian words, block after block.
    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        #if _endian(little)
        return try body(UnsafeRawBufferPointer(start: UnsafeRawPointer(words), count: byteCount))
        #else
        var copy = [UInt8]()
        copy.reserveCapacity(byteCount)
        for index in 0..<(blocks * Self.wordsPerBlock) {
            withUnsafeBytes(of: UnsafeAtomic<UInt64>(at: words + index).load(ordering: .relaxed).littleEndian) { copy += $0 }
        }
        return try copy.withUnsafeBytes(body)
        #endif
    }

    /// A filter whose bits are `bytes` (as ``withBytes(_:)`` gives them).
    public convenience init(blocks: Int, hashes: Int, bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == blocks * 64)
        self.init(blocks: blocks, hashes: hashes)
        for index in 0..<(blocks * Self.wordsPerBlock) {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
            UnsafeAtomic<UInt64>(at: words + index).store(word, ordering: .relaxed)
        }
    }

    // MARK: - Sizing

    /// The smallest filter (in whole blocks, and the number of hashes for it) whose expected
    /// false-positive rate with `capacity` keys is at most `falsePositiveRate`.
    ///
    /// Keys fall into blocks unevenly (a Poisson number per block), and a fuller block answers
    /// "maybe" more often, so a blocked filter needs a few more bits per key than a classic one;
    /// the rate is computed with that spread, not with the classic formula.
    public static func size(capacity: Int, falsePositiveRate: Double) -> (blocks: Int, hashes: Int) {
        let keys = Double(max(capacity, 1))
        let target = min(max(falsePositiveRate, 1e-9), 0.5)
        // Start from the classic size and grow by 1% until the blocked rate reaches the target.
        var blocks = max(1, Int((keys * -log(target) / (0.480_453 * Double(bitsPerBlock))).rounded(.down)))
        while true {
            var best = (rate: 1.0, hashes: 1)
            for hashes in 1...16 {
                let rate = expectedFalsePositiveRate(keys: keys, blocks: Double(blocks), hashes: hashes)
                if rate < best.rate { best = (rate, hashes) }
            }
            if best.rate <= target { return (blocks, best.hashes) }
            blocks += max(1, blocks / 100)
        }
    }

    /// The expected rate of "maybe" for absent keys: the average over the Poisson-distributed
    /// number of keys in a block of the classic rate for that block.
    public static func expectedFalsePositiveRate(keys: Double, blocks: Double, hashes: Int) -> Double {
        let mean = keys / blocks
        let bits = Double(bitsPerBlock)
        let k = Double(hashes)
        let upper = Int(mean + 12 * mean.squareRoot() + 12)
        var probability = exp(-mean)  // P(0 keys)
        var rate = 0.0
        for count in 0...upper {
            if count > 0 { probability *= mean / Double(count) }
            let filled = 1 - pow(1 - 1 / bits, k * Double(count))
            rate += probability * pow(filled, k)
        }
        return rate
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
