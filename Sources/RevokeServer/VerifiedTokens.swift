import CoreMetrics
import Crypto
import NIOCore
import RevokeCore
import Synchronization

/// Tokens whose signature verified, remembered so that a token presented again (a gateway
/// sends the same one with every request of a session) costs a SHA-256 and a lookup instead of
/// a signature check.
///
/// - Keyed by the SHA-256 of the whole token: the token itself is never kept, and a token that
///   differs in any byte (another signature included) is another key.
/// - Bounded: at most `capacity` entries; the oldest goes first.
/// - An entry never outlives its token's `exp` (without `exp`, it stays until pushed out), and
///   never the keys that verified it: the cache belongs to one ``TokenVerifier``, whose keys are
///   fixed, so other keys are another verifier with an empty cache.
/// - Only what verified is remembered: a token that failed is checked again (a failure kept
///   would let garbage push out the entries that save work).
final class VerifiedTokens: Sendable {
    typealias Key = SHA256Digest

    private struct Entry {
        var verified: TokenVerifier.Verified
        var expiresAt: Int64?
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        /// Keys in the order they were added; a key removed for its `exp` leaves its place
        /// here until its turn comes (then nothing is removed), so this never holds more than
        /// `capacity` keys.
        var order = CircularBuffer<Key>()
    }

    let capacity: Int
    private let now: @Sendable () -> Int64
    private let state = Mutex(State())
    /// `revoke_verified_tokens_total{result="hit"}` and `{result="miss"}`.
    private let hits: CoreMetrics.Counter
    private let misses: CoreMetrics.Counter

    /// - Parameters:
    ///   - capacity: The most tokens remembered; 0 remembers none.
    ///   - now: The current time in Unix seconds.
    ///   - factory: Where its counters are kept.
    init(capacity: Int, now: @escaping @Sendable () -> Int64, factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.capacity = max(0, capacity)
        self.now = now
        hits = CoreMetrics.Counter(label: "revoke_verified_tokens_total", dimensions: [("result", "hit")], factory: factory)
        misses = CoreMetrics.Counter(label: "revoke_verified_tokens_total", dimensions: [("result", "miss")], factory: factory)
    }

    /// The key of a token (its bytes hashed where they are: a forwarded token is a slice of its
    /// header, never copied for this).
    static func key(_ token: some StringProtocol) -> Key {
        var token = Substring(token)
        return token.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
    }

    /// The verification of the token with this key, if it is remembered and its `exp` has not
    /// passed.
    func lookup(_ key: Key) -> TokenVerifier.Verified? {
        guard capacity > 0 else { return nil }
        let now = now()
        let found: TokenVerifier.Verified? = state.withLock { state in
            guard let entry = state.entries[key] else { return nil }
            if let expiresAt = entry.expiresAt, expiresAt <= now {
                state.entries[key] = nil
                return nil
            }
            return entry.verified
        }
        (found == nil ? misses : hits).increment()
        return found
    }

    /// Remembers a token that verified, unless its `exp` has passed.
    func insert(_ key: Key, _ verified: TokenVerifier.Verified) {
        guard capacity > 0 else { return }
        let expiresAt = verified.claims.expiresAtSeconds
        if let expiresAt, expiresAt <= now() { return }
        state.withLock { state in
            if state.entries[key] != nil {
                state.entries[key] = Entry(verified: verified, expiresAt: expiresAt)
                return
            }
            if state.order.count >= capacity, let oldest = state.order.popFirst() {
                state.entries[oldest] = nil
            }
            state.order.append(key)
            state.entries[key] = Entry(verified: verified, expiresAt: expiresAt)
        }
    }

    /// Tokens remembered now.
    var count: Int {
        state.withLock { $0.entries.count }
    }
}
