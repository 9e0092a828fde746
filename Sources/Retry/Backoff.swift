/// How long to wait before the next attempt: exponential from `initial` to `maximum`, with
/// jitter so that a fleet that lost the same peer does not come back in lockstep.
///
/// Every retry loop in Revoke waits this way: Redis reconnects, the server's event hub, the
/// client's event stream and snapshot loads, the embedded `redis-server`.
///
/// ```swift
/// var backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(2))
/// while true {
///     do { try await attempt(); backoff.reset() } catch { try await Task.sleep(for: backoff.next()) }
/// }
/// ```
public struct Backoff: Sendable {
    /// The first wait (before jitter).
    public let initial: Duration
    /// The longest wait (before jitter).
    public let maximum: Duration
    /// The share of each wait that is random: a wait is between `(1 - jitter)` and 1 times the
    /// current step.
    public let jitter: Double
    private var step: Duration

    /// - Parameters:
    ///   - initial: The first wait (at least a millisecond).
    ///   - maximum: The longest wait; steps double until they reach it (never below `initial`).
    ///   - jitter: From 0 (none) to 1; the default waits half to all of each step.
    public init(initial: Duration, maximum: Duration, jitter: Double = 0.5) {
        self.initial = max(initial, .milliseconds(1))
        self.maximum = max(maximum, self.initial)
        self.jitter = min(max(jitter, 0), 1)
        self.step = self.initial
    }

    /// The wait before the next attempt; each call doubles the step, up to ``maximum``.
    public mutating func next() -> Duration {
        let wait = jitter == 0 ? step : step * Double.random(in: (1 - jitter)...1)
        step = min(step * 2, maximum)
        return wait
    }

    /// Starts again from ``initial``, after a success.
    public mutating func reset() {
        step = initial
    }
}
