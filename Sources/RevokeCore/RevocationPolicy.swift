/// How long a revocation or cutoff must be kept: the contract's TTL rules in one place.
public struct RevocationPolicy: Sendable, Equatable {
    /// `REVOKE_CLOCK_SKEW`: seconds added to every TTL and to the "already expired" test,
    /// because verifiers often accept a token a little past its `exp`.
    public var clockSkew: Int64
    /// `REVOKE_MAX_TOKEN_LIFETIME`: the longest lifetime the issuer mints, in seconds. A cutoff
    /// lives until `before` plus this: by then every token it could match has expired.
    public var maximumTokenLifetime: Int64

    public init(clockSkew: Int64 = 0, maximumTokenLifetime: Int64 = 2_592_000) {
        self.clockSkew = clockSkew
        self.maximumTokenLifetime = maximumTokenLifetime
    }

    /// How long to keep a record.
    public enum Lifetime: Sendable, Equatable {
        /// Already past: nothing needs storing.
        case expired
        /// Keep it this many seconds (at least 1).
        case seconds(Int64)
        /// No expiry at all (a token without `exp`).
        case forever
    }

    /// The TTL of a revoked token: `ceil(exp + skew - now)`, no TTL without `exp`.
    /// - Parameters:
    ///   - expiresAt: The token's `exp` in Unix seconds, or nil when it has none.
    ///   - now: The current time in Unix seconds, with its fraction.
    public func lifetime(expiresAt: Int64?, now: Double) -> Lifetime {
        guard let expiresAt else { return .forever }
        return lifetime(until: expiresAt, now: now)
    }

    /// The TTL of a cutoff issued with `before`: until `before + maximumTokenLifetime + skew`.
    public func cutoffLifetime(before: Int64, now: Double) -> Lifetime {
        let (end, overflow) = before.addingReportingOverflow(maximumTokenLifetime)
        return lifetime(until: overflow ? Int64.max : end, now: now)
    }

    /// When a cutoff issued with `before` may be forgotten, in Unix seconds (without the skew,
    /// which only widens the TTL).
    public func cutoffExpiry(before: Int64) -> Int64 {
        let (end, overflow) = before.addingReportingOverflow(maximumTokenLifetime)
        return overflow ? Int64.max : end
    }

    private func lifetime(until end: Int64, now: Double) -> Lifetime {
        let (shifted, overflow) = end.addingReportingOverflow(clockSkew)
        if overflow { return clockSkew > 0 ? .forever : .expired }
        let remaining = (Double(shifted) - now).rounded(.up)
        if remaining <= 0 { return .expired }
        // Redis takes TTLs up to Int64.max milliseconds; beyond a few centuries, keep forever.
        if remaining >= 9_000_000_000_000 { return .forever }
        return .seconds(Int64(remaining))
    }
}
