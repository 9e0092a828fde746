/// xxHash64 (XXH64, by Yann Collet), the hash of the snapshot's Bloom filter. It is part of the
/// snapshot format (version 1): every client and server must compute it identically, so it is
/// never Swift's `Hasher`, which is seeded per process.
public enum XXH64 {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// The hash of `bytes` with `seed`.
    @inlinable
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        hashImplementation(bytes, seed: seed)
    }

    /// The hash of a string's UTF-8 bytes.
    @inlinable
    public static func hash(_ text: String, seed: UInt64 = 0) -> UInt64 {
        // In place when the string's UTF-8 is contiguous (native strings are): no copy, so no
        // retain and release of its storage. `withUTF8` would need a mutable copy.
        if let hash = text.utf8.withContiguousStorageIfAvailable({ hashImplementation(UnsafeRawBufferPointer($0), seed: seed) }) {
            return hash
        }
        var text = text
        return text.withUTF8 { hashImplementation(UnsafeRawBufferPointer($0), seed: seed) }
    }

    @usableFromInline
    static func hashImplementation(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let count = bytes.count
        var offset = 0
        var hash: UInt64
        func read64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        func read32(_ at: Int) -> UInt64 { UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
            var accumulator = accumulator &+ input &* prime2
            accumulator = (accumulator << 31) | (accumulator >> 33)
            return accumulator &* prime1
        }
        func merge(_ hash: UInt64, _ accumulator: UInt64) -> UInt64 {
            (hash ^ round(0, accumulator)) &* prime1 &+ prime4
        }
        if count >= 32 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            while offset + 32 <= count {
                v1 = round(v1, read64(offset))
                v2 = round(v2, read64(offset + 8))
                v3 = round(v3, read64(offset + 16))
                v4 = round(v4, read64(offset + 24))
                offset += 32
            }
            hash = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57)) &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
            hash = merge(hash, v1)
            hash = merge(hash, v2)
            hash = merge(hash, v3)
            hash = merge(hash, v4)
        } else {
            hash = seed &+ prime5
        }
        hash = hash &+ UInt64(count)
        while offset + 8 <= count {
            hash ^= round(0, read64(offset))
            hash = ((hash << 27) | (hash >> 37)) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= count {
            hash ^= read32(offset) &* prime1
            hash = ((hash << 23) | (hash >> 41)) &* prime2 &+ prime3
            offset += 4
        }
        while offset < count {
            hash ^= UInt64(bytes[offset]) &* prime5
            hash = ((hash << 11) | (hash >> 53)) &* prime1
            offset += 1
        }
        hash ^= hash >> 33
        hash = hash &* prime2
        hash ^= hash >> 29
        hash = hash &* prime3
        hash ^= hash >> 32
        return hash
    }
}
