import NIOCore
import RevokeCore
import RevokeSnapshot
import RevokeStore

/// Builds the snapshot `GET /v1/snapshot` serves and keeps it for `maximumAge`, so a fleet of
/// verifiers starting at once costs one scan of Redis, not one each. Requests that arrive
/// while it is being built wait for that build.
actor SnapshotBuilder {
    struct Built: Sendable {
        var bytes: ByteBuffer
        var cursor: EventCursor
        var builtAt: ContinuousClock.Instant
        /// Live revoked `jti`s and live cutoffs in it.
        var revocations: Int
        var cutoffs: Int
    }

    private let store: RevocationStore
    private let falsePositiveRate: Double
    private let maximumAge: Duration
    private var current: Built?
    private var building: Task<Built, any Error>?

    init(store: RevocationStore, falsePositiveRate: Double, maximumAge: Duration) {
        self.store = store
        self.falsePositiveRate = falsePositiveRate
        self.maximumAge = maximumAge
    }

    /// The snapshot to serve: the kept one while it is young enough and the log still holds
    /// everything after its cursor (so `GET /v1/events?since=<its cursor>` resumes), else a
    /// new one.
    func snapshot() async throws -> Built {
        if let current, ContinuousClock.now - current.builtAt < maximumAge, try await !store.isGone(after: current.cursor) {
            return current
        }
        if let building { return try await building.value }
        let task = Task { [store, falsePositiveRate] in try await Self.buildResumable(store: store, falsePositiveRate: falsePositiveRate) }
        building = task
        defer { building = nil }
        let built = try await task.value
        current = built
        return built
    }

    /// Builds until the log still holds everything after the snapshot's cursor once it is
    /// built: a log trimmed that fast (a flood faster than a scan) is answered 503, never with a
    /// snapshot whose cursor answers 410.
    static func buildResumable(store: RevocationStore, falsePositiveRate: Double) async throws -> Built {
        for _ in 0..<3 {
            let built = try await build(store: store, falsePositiveRate: falsePositiveRate)
            if try await !store.isGone(after: built.cursor) { return built }
        }
        throw StoreError(.unavailable, "the event log was trimmed past three snapshots in a row while they were built")
    }

    /// The cursor is read before the scan: whatever changes during the scan comes after it, so
    /// a client that replays the events after the cursor misses nothing.
    static func build(store: RevocationStore, falsePositiveRate: Double) async throws -> Built {
        let cursor = try await store.lastEventCursor()
        var hashes: [UInt64] = []
        try await store.forEachRevokedJTI { jtis in
            for jti in jtis { hashes.append(XXH64.hash(jti)) }
        }
        let now = store.currentTime
        // Every cutoff Redis still keeps (its TTL includes the clock skew), so a client's cache
        // holds exactly what the server's checks match.
        let cutoffs = try await store.allCutoffs().sorted { store.cutoffClaims.order($0.claim) < store.cutoffClaims.order($1.claim) }.map {
            Snapshot.Cutoff(claim: $0.claim, value: $0.value, before: $0.before, expiresAt: $0.expiresAt)
        }
        let keyBlocks = try await store.allBlockedKeys()
        // Room for a quarter more, which clients add from the events until their next snapshot.
        let filter = BloomFilter(capacity: hashes.count + hashes.count / 4 + 1024, falsePositiveRate: falsePositiveRate)
        for hash in hashes { filter.insert(hash: hash) }
        let snapshot = Snapshot(
            createdAt: now, cursor: cursor.description, revocations: hashes.count, filter: filter, cutoffs: cutoffs, keyBlocks: keyBlocks)
        return Built(
            bytes: ByteBuffer(bytes: snapshot.encoded()), cursor: cursor, builtAt: .now, revocations: hashes.count, cutoffs: cutoffs.count)
    }
}
