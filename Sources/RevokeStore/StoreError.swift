import Redis

/// Why the store could not do what it was asked, in the two kinds a caller must tell apart:
/// Redis cannot answer right now (``Kind/unavailable``: retry later, never guess), or it
/// answered and the store failed all the same (``Kind/failed``: a bug or a damaged key, which
/// no retry fixes, such as a `WRONGTYPE` or a reply the store cannot read).
///
/// Every public method of ``RevocationStore`` throws these (besides ``RevokeCore/ValidationError``
/// for bad input), so no caller needs to know Redis' own errors.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Redis cannot be reached, did not answer in time, or is not serving now (loading,
        /// busy, a replica, no primary). The server answers 503 with `Retry-After`.
        case unavailable
        /// Redis answered, but not as the store expects. The server answers 500 and logs why.
        case failed
    }

    /// Which kind of failure.
    public var kind: Kind
    /// What happened, for the log (never a secret: Redis errors never hold arguments).
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The store's reading of a Redis failure.
    public init(_ error: RedisError) {
        self.init(error.isUnavailable ? .unavailable : .failed, error.description)
    }

    public var description: String { "store \(kind): \(message)" }
}

/// Runs `body`, turning the Redis layer's errors into ``StoreError``s; anything else (a
/// ``RevokeCore/ValidationError``, cancellation) passes unchanged.
func translatingRedisErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RedisError {
        throw StoreError(error)
    }
}
