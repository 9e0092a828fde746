/// Everything revoked at one moment, as `GET /v1/snapshot` serves it: every live revoked `jti`
/// in a ``BloomFilter``, every live cutoff and every blocked key exactly, and the event-log
/// position it reflects.
///
/// The binary format (version 2; version 1 had no key blocks) is documented in `docs/snapshot.md`.
public struct Snapshot: Sendable {
    /// A cutoff: tokens whose `claim` equals `value` and whose `iat` is at or before `before`.
    public struct Cutoff: Sendable, Hashable {
        public var claim: String
        public var value: String
        public var before: Int64
        public var expiresAt: Int64

        public init(claim: String, value: String, before: Int64, expiresAt: Int64) {
            self.claim = claim
            self.value = value
            self.before = before
            self.expiresAt = expiresAt
        }
    }

    /// Why bytes are not a snapshot this code can read.
    public struct FormatError: Error, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The format version this code writes (it reads this one and the one before).
    public static let version: UInt8 = 2
    /// The versions this code reads.
    public static let readableVersions: ClosedRange<UInt8> = 1...2
    /// The hash of the filter: 1 is XXH64 with seed 0 over the `jti`'s UTF-8 bytes.
    public static let hashXXH64: UInt8 = 1
    static let magic: [UInt8] = Array("RVKS".utf8)

    /// Unix seconds when it was built.
    public var createdAt: Int64
    /// The event-log position it reflects: replaying events after it brings it up to date.
    public var cursor: String
    /// How many `jti`s went into the filter.
    public var revocations: Int
    /// The `jti`s.
    public var filter: BloomFilter
    /// The cutoffs.
    public var cutoffs: [Cutoff]
    /// The `kid`s of the blocked signing keys.
    public var keyBlocks: [String]

    public init(createdAt: Int64, cursor: String, revocations: Int, filter: BloomFilter, cutoffs: [Cutoff], keyBlocks: [String] = []) {
        self.createdAt = createdAt
        self.cursor = cursor
        self.revocations = revocations
        self.filter = filter
        self.cutoffs = cutoffs
        self.keyBlocks = keyBlocks
    }

    // MARK: - Writing

    /// The snapshot in the binary format.
    public func encoded() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(64 + filter.byteCount + cutoffs.count * 64)
        output += Self.magic
        output += [Self.version, Self.hashXXH64, UInt8(filter.hashes), 0]
        append(createdAt, to: &output)
        append(UInt64(revocations), to: &output)
        append(UInt64(filter.blocks), to: &output)
        append(UInt32(cutoffs.count), to: &output)
        appendString(cursor, to: &output)
        for cutoff in cutoffs {
            appendString(cutoff.claim, to: &output)
            appendString(cutoff.value, to: &output)
            append(cutoff.before, to: &output)
            append(cutoff.expiresAt, to: &output)
        }
        append(UInt32(keyBlocks.count), to: &output)
        for kid in keyBlocks { appendString(kid, to: &output) }
        // The filter starts on a 64-byte boundary of the file, so a reader may map it in place.
        output += [UInt8](repeating: 0, count: (64 - (output.count + 4) % 64) % 64)
        append(UInt32(0x424C_4F4D), to: &output)  // "MOLB": the filter follows
        filter.withBytes { output += $0 }
        let checksum = output.withUnsafeBytes { XXH64.hash($0, seed: 0x5245_564B) }
        append(checksum, to: &output)
        return output
    }

    private func append<T: FixedWidthInteger>(_ value: T, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { output += $0 }
    }

    private func appendString(_ text: String, to output: inout [UInt8]) {
        append(UInt32(text.utf8.count), to: &output)
        output += text.utf8
    }

    // MARK: - Reading

    /// Reads a snapshot, refusing (never crashing on) bytes that are truncated, corrupted, of
    /// another version or another hash, or whose sizes do not add up.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard bytes.count >= 8 + 8 else { throw FormatError("truncated: \(bytes.count) bytes") }
        guard Array(bytes[0..<4]) == Self.magic else { throw FormatError("not a Revoke snapshot (bad magic)") }
        let version = bytes[4]
        guard Self.readableVersions.contains(version) else {
            throw FormatError("snapshot version \(version); this client reads versions \(Self.readableVersions.lowerBound) to \(Self.readableVersions.upperBound)")
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 8)])
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self))
        guard XXH64.hash(body, seed: 0x5245_564B) == stored else { throw FormatError("corrupted (checksum mismatch)") }
        guard bytes[5] == Self.hashXXH64 else { throw FormatError("unknown hash \(bytes[5])") }
        let hashes = Int(bytes[6])
        guard (1...16).contains(hashes) else { throw FormatError("bad number of hashes \(hashes)") }

        var reader = Reader(bytes: body, offset: 8)
        createdAt = try reader.integer(Int64.self)
        let revocations = try reader.integer(UInt64.self)
        let blocks = try reader.integer(UInt64.self)
        let cutoffCount = try reader.integer(UInt32.self)
        cursor = try reader.string()
        guard cutoffCount <= UInt32(body.count / 24) else { throw FormatError("bad cutoff count \(cutoffCount)") }
        var cutoffs: [Cutoff] = []
        cutoffs.reserveCapacity(Int(cutoffCount))
        for _ in 0..<cutoffCount {
            let claim = try reader.string()
            let value = try reader.string()
            let before = try reader.integer(Int64.self)
            let expiresAt = try reader.integer(Int64.self)
            cutoffs.append(Cutoff(claim: claim, value: value, before: before, expiresAt: expiresAt))
        }
        self.cutoffs = cutoffs
        var keyBlocks: [String] = []
        if version >= 2 {
            let count = try reader.integer(UInt32.self)
            guard count <= UInt32(body.count / 4) else { throw FormatError("bad key block count \(count)") }
            keyBlocks.reserveCapacity(Int(count))
            for _ in 0..<count { keyBlocks.append(try reader.string()) }
        }
        self.keyBlocks = keyBlocks
        reader.offset += (64 - (reader.offset + 4) % 64) % 64
        guard try reader.integer(UInt32.self) == 0x424C_4F4D else { throw FormatError("the filter marker is missing") }
        guard blocks >= 1, blocks <= UInt64(body.count / 64), reader.offset + Int(blocks) * 64 == body.count else {
            throw FormatError("the filter's size does not match the data")
        }
        guard revocations <= UInt64(Int.max) else { throw FormatError("bad revocation count") }
        self.revocations = Int(revocations)
        filter = BloomFilter(
            blocks: Int(blocks), hashes: hashes, bytes: UnsafeRawBufferPointer(rebasing: body[reader.offset...]))
    }

    /// Reads a snapshot from any contiguous bytes.
    public init(decoding bytes: [UInt8]) throws(FormatError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(FormatError) in try Snapshot(decoding: buffer) }
        }
        self = try result.get()
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset: Int

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(FormatError) -> T {
            let size = MemoryLayout<T>.size
            guard bytes.count - offset >= size else { throw FormatError("truncated at byte \(offset)") }
            defer { offset += size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        mutating func string() throws(FormatError) -> String {
            let length = Int(try integer(UInt32.self))
            guard bytes.count - offset >= length else { throw FormatError("truncated at byte \(offset)") }
            defer { offset += length }
            guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]), as: UTF8.self) else {
                throw FormatError("a string at byte \(offset) is not UTF-8")
            }
            return text
        }
    }
}
