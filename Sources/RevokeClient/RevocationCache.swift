import Atomics
import Foundation
import Logging
import Metrics
import RevokeCore
import RevokeSnapshot

/// The client's local copy of what is revoked: the snapshot's Bloom filter (with the `jti`s of
/// later events added to it) and every cutoff, exactly.
///
/// A lookup reads one atomic reference and one atomic flag, hashes the `jti` and tests one cache
/// line: no lock, no allocation. Everything that changes it (the snapshot, events, freshness)
/// happens on the client's one following task.
final class RevocationCache: Sendable {
    /// What the filter and cutoffs are at one moment; replaced whole when a snapshot loads or a
    /// cutoff changes, while `jti`s from events are added to its filter in place.
    final class View: AtomicReference, Sendable {
        let filter: BloomFilter
        /// claim → value → (before, expiresAt).
        let cutoffs: [String: [String: (before: Int64, expiresAt: Int64)]]

        init(filter: BloomFilter, cutoffs: [String: [String: (before: Int64, expiresAt: Int64)]]) {
            self.filter = filter
            self.cutoffs = cutoffs
        }
    }

    enum Lookup {
        case answer(RevokeClient.Verdict)
        /// The server must answer; `possibleHit` when the filter said "maybe".
        case askServer(possibleHit: Bool)
    }

    let configuration: RevokeClient.CacheConfiguration
    let view = ManagedAtomic<View?>(nil)
    /// Whether the cache heard from the server within the staleness limit.
    let fresh = ManagedAtomic(false)
    /// When it last heard (nanoseconds on the monotonic clock since `origin`).
    let lastHeard = ManagedAtomic<Int64>(0)
    let origin = ContinuousClock.now
    /// Snapshots loaded so far.
    let snapshotsLoaded = ManagedAtomic(0)

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

    func lookup(_ query: CheckQuery) -> Lookup {
        guard fresh.load(ordering: .acquiring), let view = view.load(ordering: .acquiring) else {
            serverChecksStale.increment()
            return .askServer(possibleHit: false)
        }
        if !view.cutoffs.isEmpty {
            for (claim, value) in query.claims {
                guard let cutoff = view.cutoffs[claim]?[value] else { continue }
                // A missing iat matches; an expired cutoff can match no live token.
                if query.issuedAt.map({ $0 <= Double(cutoff.before) }) ?? true, Double(cutoff.expiresAt) > Date().timeIntervalSince1970 {
                    cacheAnswers.increment()
                    return .answer(RevokeClient.Verdict(revoked: true, reason: .cutoff(claim: claim), source: .cache))
                }
            }
        }
        if let jti = query.jti, view.filter.mightContain(jti) {
            serverChecksMaybe.increment()
            return .askServer(possibleHit: true)
        }
        cacheAnswers.increment()
        return .answer(RevokeClient.Verdict(revoked: false, source: .cache))
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
        var cutoffs: [String: [String: (before: Int64, expiresAt: Int64)]] = [:]
        for cutoff in snapshot.cutoffs { cutoffs[cutoff.claim, default: [:]][cutoff.value] = (cutoff.before, cutoff.expiresAt) }
        view.store(View(filter: snapshot.filter, cutoffs: cutoffs), ordering: .releasing)
        snapshotsLoaded.wrappingIncrement(ordering: .relaxed)
        snapshots.increment()
        heard()
    }

    /// Applies one event of the log.
    func apply(type: String, data: [String: JSONValue]) {
        guard let current = view.load(ordering: .acquiring) else { return }
        switch type {
        case "revocation":
            if case .string(let jti)? = data["jti"] { current.filter.insert(jti) }
        case "cutoff":
            guard case .string(let claim)? = data["claim"], case .string(let value)? = data["value"],
                case .number(let before)? = data["before"], case .number(let expiresAt)? = data["expires_at"]
            else { return }
            var cutoffs = current.cutoffs
            cutoffs[claim, default: [:]][value] = (Int64(before), Int64(expiresAt))
            view.store(View(filter: current.filter, cutoffs: cutoffs), ordering: .releasing)
        case "uncutoff":
            guard case .string(let claim)? = data["claim"], case .string(let value)? = data["value"] else { return }
            var cutoffs = current.cutoffs
            cutoffs[claim]?[value] = nil
            view.store(View(filter: current.filter, cutoffs: cutoffs), ordering: .releasing)
        default:
            // An unrevocation cannot leave a Bloom filter: the server answers that jti's
            // "maybe" until the next snapshot.
            break
        }
        events.increment()
    }

    /// The server was heard from (an event, a heartbeat, a snapshot).
    func heard() {
        lastHeard.store(nanoseconds(ContinuousClock.now - origin), ordering: .relaxed)
        fresh.store(true, ordering: .releasing)
    }

    /// Marks the cache stale when it has heard nothing for too long; run every so often.
    func judgeFreshness() {
        let silent = nanoseconds(ContinuousClock.now - origin) - lastHeard.load(ordering: .relaxed)
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
