import RevokeCore
import RevokeSnapshot
import RevokeStore

/// Everything a snapshot holds, at one position of the event log: the revoked `jti`s (their
/// hashes, until Redis expires them), the Bloom filter built from them, every cutoff and every
/// blocked key. Loaded once from Redis, then changed by each event in log order.
///
/// The filter only gains bits between rebuilds: a `jti` that expires or is unrevoked stays in it
/// (a "maybe" the server answers) until ``rebuilt(now:)`` builds a new one from the hashes still
/// live. An unrevoked `jti` is never taken out by its hash (two `jti`s may share one, and the
/// other must stay refused): it leaves when it expires, or at the next load from Redis
/// (``needsLoad``). ``HeldRevocations`` holds each hash once, so the count is exact.
struct SnapshotState: Sendable {
    /// A cutoff's claim and value, by their UTF-8 bytes (as Redis keys them: Swift's `String`
    /// equality would take "é" composed and decomposed for one value, and they are two users).
    struct CutoffKey: Hashable, Sendable {
        var claim: [UInt8]
        var value: [UInt8]
    }

    /// Why an event cannot be applied: the state must be loaded again, never skip it.
    struct UnreadableEvent: Error, CustomStringConvertible {
        var type: String
        var id: String
        var description: String { "the event \(id) of type \(type.debugDescription) could not be read" }
    }

    /// The revoked `jti`s' hashes, until Redis expires them.
    private(set) var held = HeldRevocations()
    /// Hashes held (expired ones included, until a rebuild drops them).
    var entries: Int { held.count }
    /// The hashes of unrevoked `jti`s still held (not counted as live).
    var unrevoked: Set<UInt64> { held.unrevoked }
    private(set) var cutoffs: [CutoffKey: CutoffRecord] = [:]
    private(set) var keyBlocks: Set<[UInt8]> = []
    /// The last event applied (or where the load read the log).
    var cursor: EventCursor

    /// Every hash held went into this filter.
    private(set) var filter: BloomFilter
    /// The number of hashes the filter was sized for, and how many went into it.
    private(set) var capacity: Int
    private(set) var inFilter = 0

    let falsePositiveRate: Double
    let policy: RevocationPolicy

    init(cursor: EventCursor, falsePositiveRate: Double, policy: RevocationPolicy) {
        self.cursor = cursor
        self.falsePositiveRate = falsePositiveRate
        self.policy = policy
        self.capacity = Self.capacity(for: 0)
        self.filter = BloomFilter(capacity: capacity, falsePositiveRate: falsePositiveRate)
    }

    /// Room for a quarter more than `live`, which clients add from the events until their next
    /// snapshot, and which this state takes before it needs a larger filter.
    static func capacity(for live: Int) -> Int { live + live / 4 + 1024 }

    // MARK: - Changes

    /// Holds a revoked `jti`'s hash until `expiresAt` (Unix seconds; nil: forever), and adds it
    /// to the filter.
    mutating func revoke(hash: UInt64, expiresAt: Int64?) {
        guard held.revoke(hash, until: expiresAt) else { return }
        filter.insert(hash: hash)
        inFilter += 1
    }

    /// Holds a revoked `jti`'s hash without adding it to the filter: for a load, whose filter
    /// ``rebuilt(now:)`` builds once everything is held.
    mutating func hold(hash: UInt64, expiresAt: Int64?) {
        held.revoke(hash, until: expiresAt)
    }

    mutating func setCutoff(_ record: CutoffRecord) {
        cutoffs[CutoffKey(claim: Array(record.claim.utf8), value: Array(record.value.utf8))] = record
    }

    mutating func blockKey(_ kid: String) {
        keyBlocks.insert(Array(kid.utf8))
    }

    /// Applies one event of the log (after ``cursor``) and moves the cursor to it.
    /// - Throws: ``UnreadableEvent`` for an event it cannot read or does not know.
    mutating func apply(_ event: StoreEvent) throws(UnreadableEvent) {
        guard let id = EventCursor(event.id), let change = try? LoggedChange(type: event.type, data: event.data) else {
            throw UnreadableEvent(type: event.type, id: event.id)
        }
        switch change {
        case .revocation(let jti, let expiresAt):
            revoke(hash: XXH64.hash(jti), expiresAt: expiresAt.flatMap(redisExpiry(of:)))
        case .unrevocation(let jti):
            held.unrevoke(XXH64.hash(jti))
        case .cutoff(let claim, let value, let before, let expiresAt, let createdAt, let reason):
            setCutoff(
                CutoffRecord(
                    claim: claim, value: value, before: before, expiresAt: expiresAt ?? policy.cutoffExpiry(before: before),
                    createdAt: createdAt ?? before, reason: reason))
        case .uncutoff(let claim, let value):
            cutoffs[CutoffKey(claim: Array(claim.utf8), value: Array(value.utf8))] = nil
        case .keyBlock(let kid):
            keyBlocks.insert(Array(kid.utf8))
        case .keyUnblock(let kid):
            keyBlocks.remove(Array(kid.utf8))
        }
        cursor = id
    }

    /// The second from which Redis no longer holds a revocation of a token expiring at
    /// `expiresAt`: its TTL runs to `exp + skew`, rounded up to a whole second after the write,
    /// so one more second is never early. Nil when Redis keeps it forever.
    private func redisExpiry(of expiresAt: Double) -> Int64? {
        // Beyond a few centuries Redis keeps it forever (``RevocationPolicy``); so does this.
        guard expiresAt.isFinite, expiresAt < 9e12 else { return nil }
        return Int64(max(expiresAt, -9e12).rounded(.up)) + policy.clockSkew + 1
    }

    // MARK: - Expiry and rebuilding

    /// Live revocations that Redis has expired by `now` (Unix seconds), until a rebuild.
    func expired(now: Int64) -> Int { held.expired(now: now) }

    /// Live revocations: held, neither unrevoked nor expired by `now`.
    func live(now: Int64) -> Int { held.live(now: now) }

    /// Whether a new filter is due: this one took more than it was sized for (its
    /// false-positive rate would climb), or a quarter of what it holds has expired.
    func needsRebuild(now: Int64) -> Bool {
        if inFilter > capacity { return true }
        let dead = expired(now: now)
        return dead > 0 && dead * 4 >= max(inFilter, 1)
    }

    /// Whether so many unrevoked `jti`s are held (which only a load from Redis drops) that
    /// loading again is worth its scan: a quarter of what is held, and at least 1024.
    var needsLoad: Bool { unrevoked.count >= max(1024, entries / 4) }

    /// The same state without what expired by `now`, with a filter sized and filled anew. Its
    /// cost grows with what is held, from memory (no Redis): run it off the event loops.
    func rebuilt(now: Int64) -> SnapshotState {
        var next = self
        next.held = held.dropping(expiredBy: now)
        next.capacity = Self.capacity(for: next.held.count)
        next.filter = BloomFilter(capacity: next.capacity, falsePositiveRate: falsePositiveRate)
        let filter = next.filter
        next.held.forEachHash { filter.insert(hash: $0) }
        next.inFilter = next.held.count
        return next
    }

    // MARK: - Serving

    /// The snapshot of this state at `now`, with a copy of the filter (the state's own goes on
    /// taking events while the copy is encoded). Cutoffs Redis still keeps (their TTL includes
    /// the clock skew) in the configured claim order, and the blocked keys, both sorted.
    func snapshot(now: Int64, claimOrder: CutoffClaims) -> Snapshot {
        let copy = filter.withBytes { BloomFilter(blocks: filter.blocks, hashes: filter.hashes, bytes: $0) }
        let live = liveCutoffs(now: now)
        .sorted { a, b in
            let (orderA, orderB) = (claimOrder.order(a.claim), claimOrder.order(b.claim))
            if orderA != orderB { return orderA < orderB }
            if a.claim != b.claim { return a.claim.utf8.lexicographicallyPrecedes(b.claim.utf8) }
            return a.value.utf8.lexicographicallyPrecedes(b.value.utf8)
        }
        .map { Snapshot.Cutoff(claim: $0.claim, value: $0.value, before: $0.before, expiresAt: $0.expiresAt) }
        return Snapshot(
            createdAt: now, cursor: cursor.description, revocations: self.live(now: now), filter: copy, cutoffs: live,
            keyBlocks: keyBlocks.sorted { $0.lexicographicallyPrecedes($1) }.map { String(decoding: $0, as: UTF8.self) })
    }

    /// The cutoffs Redis still keeps at `now` (their TTL includes the clock skew).
    func liveCutoffs(now: Int64) -> [CutoffRecord] {
        cutoffs.values.filter { record in
            let (end, overflow) = record.expiresAt.addingReportingOverflow(policy.clockSkew)
            return overflow || end > now
        }
    }
}
