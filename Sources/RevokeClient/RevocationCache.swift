import Logging
import Metrics
import RevokeCore
import RevokeSnapshot
import Synchronization

/// The client's local copy of what is revoked: the snapshot's Bloom filter (with the `jti`s of
/// later events added to it), every cutoff and every blocked key, exactly.
///
/// A lookup reads one atomic flag and the published view (two plain stores to its thread's slot,
/// no reference taken: ``Published``), hashes the `jti` and tests one cache line: no lock, no
/// atomic read-modify-write, no allocation. Everything that changes it (the snapshot, events, freshness)
/// happens on the client's one following task.
final class RevocationCache: Sendable {
    /// What the filter and cutoffs are at one moment; replaced whole when a snapshot loads or a
    /// cutoff changes, while `jti`s from events are added to its filter in place.
    final class View: Sendable {
        let filter: BloomFilter
        /// claim → value (its UTF-8 bytes) → `before`. Keyed by bytes, as the server stores
        /// them: Swift's `String` equality would take "é" composed and decomposed for one
        /// value, and they are two users.
        let cutoffs: [String: [[UInt8]: Int64]]
        /// The claims in the order the server matches them (its configured order, as the
        /// snapshot lists its cutoffs), so the claim a verdict names is the server's.
        let claimOrder: [String]
        /// The blocked keys' `kid`s, by their UTF-8 bytes (as the server keys them).
        let keyBlocks: Set<[UInt8]>
        /// The last event applied, or the snapshot's cursor (`<milliseconds>-<sequence>`, kept
        /// as its two numbers so that a verdict carrying it copies no string): read with the
        /// view, at no extra cost.
        let cursor: EventCursor

        init(
            filter: BloomFilter, cutoffs: [String: [[UInt8]: Int64]], claimOrder: [String], keyBlocks: Set<[UInt8]>,
            cursor: EventCursor
        ) {
            self.filter = filter
            self.cutoffs = cutoffs
            self.claimOrder = claimOrder
            self.keyBlocks = keyBlocks
            self.cursor = cursor
        }

        /// The same view at another position of the log.
        func at(_ cursor: EventCursor) -> View {
            View(filter: filter, cutoffs: cutoffs, claimOrder: claimOrder, keyBlocks: keyBlocks, cursor: cursor)
        }

        /// The same filter, with one cutoff set (or removed, with nil).
        func setting(claim: String, value: [UInt8], before: Int64?) -> View {
            var cutoffs = self.cutoffs
            cutoffs[claim, default: [:]][value] = before
            if cutoffs[claim]?.isEmpty == true { cutoffs[claim] = nil }
            let order = claimOrder.contains(claim) || before == nil ? claimOrder : claimOrder + [claim]
            return View(filter: filter, cutoffs: cutoffs, claimOrder: order, keyBlocks: keyBlocks, cursor: cursor)
        }

        /// The same filter, with one key blocked (or unblocked).
        func setting(kid: [UInt8], blocked: Bool) -> View {
            var keyBlocks = self.keyBlocks
            if blocked { keyBlocks.insert(kid) } else { keyBlocks.remove(kid) }
            return View(filter: filter, cutoffs: cutoffs, claimOrder: claimOrder, keyBlocks: keyBlocks, cursor: cursor)
        }
    }

    enum Lookup {
        /// The cache answers: not revoked (the common case, kept trivially copyable so that it
        /// costs no reference counting on its way out).
        case notRevoked(RevokeClient.Verdict.Heard)
        /// The cache answers: revoked, by a key block or a cutoff.
        case revoked(RevokeClient.Verdict)
        /// The server must answer; `possibleHit` when the filter said "maybe".
        case askServer(possibleHit: Bool)
    }

    let configuration: RevokeClient.CacheConfiguration
    let view = Published<View>()

    /// Whether the cache heard from the server within the staleness limit.
    let fresh = Atomic(false)
    /// When it last heard (nanoseconds on the monotonic clock since `Verdict.Heard.origin`).
    let lastHeard = Atomic<Int64>(0)
    /// Snapshots loaded so far.
    let snapshotsLoaded = Atomic(0)

    let cacheAnswers = Counter(label: "revoke_client_cache_answers_total")
    let serverChecksMaybe = Counter(label: "revoke_client_server_checks_total", dimensions: [("why", "maybe")])
    let serverChecksStale = Counter(label: "revoke_client_server_checks_total", dimensions: [("why", "stale")])
    let falsePositives = Counter(label: "revoke_client_false_positives_total")
    let policyAnswers = Counter(label: "revoke_client_policy_answers_total")
    let events = Counter(label: "revoke_client_events_total")
    let snapshots = Counter(label: "revoke_client_snapshots_total")
    let staleness = Gauge(label: "revoke_client_staleness_seconds")

    init(configuration: RevokeClient.CacheConfiguration) {
        self.configuration = configuration
    }

    // MARK: - Lookups

    /// - Parameter counting: Whether a lookup the server must answer counts in the metrics
    ///   (not when the caller will ask again through a counting lookup).
    func lookup(_ query: CheckQuery, counting: Bool = true) -> Lookup {
        guard fresh.load(ordering: .acquiring), let lookup = view.read({ lookup(query, in: $0, counting: counting) }) else {
            if counting { serverChecksStale.increment() }
            return .askServer(possibleHit: false)
        }
        return lookup
    }

    private func lookup(_ query: CheckQuery, in view: View, counting: Bool) -> Lookup {
        let heard = RevokeClient.Verdict.Heard(nanoseconds: lastHeard.load(ordering: .relaxed), cursor: view.cursor)
        if !view.keyBlocks.isEmpty, let kid = query.kid, view.keyBlocks.contains(Array(kid.utf8)) {
            cacheAnswers.increment()
            return .revoked(RevokeClient.Verdict(revoked: true, reason: .key(kid: kid), source: .cache, heard: heard))
        }
        if !view.cutoffs.isEmpty {
            // The domain's rule, in the server's claim order. A cutoff stays until a snapshot
            // no longer has it: the server's snapshot holds every cutoff Redis still keeps
            // (clock skew included), and one past its life can match no token still valid.
            for claim in view.claimOrder {
                guard let values = view.cutoffs[claim], let value = query.claims[claim],
                    let before = values[Array(value.utf8)], CutoffRecord.revokes(issuedAt: query.issuedAt, before: before)
                else { continue }
                cacheAnswers.increment()
                return .revoked(RevokeClient.Verdict(revoked: true, reason: .cutoff(claim: claim), source: .cache, heard: heard))
            }
        }
        if let jti = query.jti, view.filter.mightContain(jti) {
            if counting { serverChecksMaybe.increment() }
            return .askServer(possibleHit: true)
        }
        cacheAnswers.increment()
        return .notRevoked(heard)
    }

    func recordConfirmation(possibleHit: Bool, revoked: Bool) {
        if possibleHit && !revoked { falsePositives.increment() }
    }

    func policyVerdict(error: any Error, logger: Logger) -> RevokeClient.Verdict {
        policyAnswers.increment()
        logger.debug("the server did not answer a check; applying the failure policy", metadata: ["error": "\(error)"])
        return RevokeClient.Verdict(revoked: configuration.failurePolicy == .failClosed, reason: .unavailable, source: .policy)
    }

    // MARK: - Changes (from the following task only)

    func load(_ snapshot: Snapshot) {
        var cutoffs: [String: [[UInt8]: Int64]] = [:]
        var order: [String] = []
        for cutoff in snapshot.cutoffs {
            if cutoffs[cutoff.claim] == nil { order.append(cutoff.claim) }
            cutoffs[cutoff.claim, default: [:]][Array(cutoff.value.utf8)] = cutoff.before
        }
        view.publish(
            View(
                filter: snapshot.filter, cutoffs: cutoffs, claimOrder: order, keyBlocks: Set(snapshot.keyBlocks.map { Array($0.utf8) }),
                cursor: EventCursor(snapshot.cursor) ?? .start))
        snapshotsLoaded.wrappingAdd(1, ordering: .relaxed)
        snapshots.increment()
        // Not fresh yet: the cache is fresh once its stream from the snapshot's cursor is live.
        lost()
    }

    /// Why an event could not be applied: the cache must load a snapshot again, never skip it.
    struct UnreadableEvent: Error, CustomStringConvertible {
        var type: String
        var description: String { "an event of type \(type.debugDescription) could not be read" }
    }

    /// Applies one event of the log.
    /// - Throws: ``UnreadableEvent`` when no snapshot is loaded yet.
    func apply(_ change: LoggedChange) throws(UnreadableEvent) {
        guard let current = view.load() else { throw UnreadableEvent(type: change.type) }
        switch change {
        case .revocation(let jti, _):
            current.filter.insert(jti)
        case .unrevocation:
            // It cannot leave a Bloom filter: the server answers that jti's "maybe" until the
            // next snapshot.
            break
        case .cutoff(let claim, let value, let before, _, _, _):
            view.publish(current.setting(claim: claim, value: Array(value.utf8), before: before))
        case .uncutoff(let claim, let value):
            view.publish(current.setting(claim: claim, value: Array(value.utf8), before: nil))
        case .keyBlock(let kid):
            view.publish(current.setting(kid: Array(kid.utf8), blocked: true))
        case .keyUnblock(let kid):
            view.publish(current.setting(kid: Array(kid.utf8), blocked: false))
        }
        events.increment()
    }

    /// The event at `cursor` was applied.
    func advanced(to cursor: String) {
        guard let current = view.load(), let position = EventCursor(cursor) else { return }
        view.publish(current.at(position))
    }

    /// The cache is not following the live log (its stream ended, or a snapshot just loaded):
    /// from now until it hears a heartbeat again, the server answers.
    func lost() {
        fresh.store(false, ordering: .releasing)
    }

    /// The live log was heard from: a heartbeat, which the server sends only on a stream that
    /// has caught up with the log.
    func heard() {
        lastHeard.store(nanoseconds(configuration.clock() - RevokeClient.Verdict.Heard.origin), ordering: .relaxed)
        fresh.store(true, ordering: .releasing)
    }

    /// Marks the cache stale when it has heard nothing for too long; run every so often.
    func judgeFreshness() {
        view.reclaim()
        let silent = nanoseconds(configuration.clock() - RevokeClient.Verdict.Heard.origin) - lastHeard.load(ordering: .relaxed)
        staleness.record(Double(silent) / 1e9)
        if fresh.load(ordering: .relaxed) && silent > nanoseconds(configuration.staleness) {
            fresh.store(false, ordering: .releasing)
        }
    }

    private func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
