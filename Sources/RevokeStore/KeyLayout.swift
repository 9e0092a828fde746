/// The Redis keys of one namespace, as the contract lays them out (operators inspect them).
public struct KeyLayout: Sendable, Equatable {
    /// The prefix, `revoke` by default.
    public let namespace: String

    public init(namespace: String = "revoke") {
        self.namespace = namespace
    }

    /// `N:jti:<jti>`: a revoked token, its record (a packed string or a hash, `Scripts`), TTL the
    /// token's remaining life.
    public func revocation(_ jti: String) -> [UInt8] { Array("\(namespace):jti:".utf8) + Array(jti.utf8) }
    /// `N:cut:<claim>:<value>`: a cutoff, a hash with its record.
    public func cutoff(claim: String, value: String) -> [UInt8] {
        Array("\(namespace):cut:\(claim):".utf8) + Array(value.utf8)
    }
    /// `N:kid:<kid>`: a blocked signing key, a hash with its record, no TTL.
    public func keyBlock(_ kid: String) -> [UInt8] { Array("\(namespace):kid:".utf8) + Array(kid.utf8) }
    /// `N:events`: the event log, a capped Redis Stream of every change.
    public var events: [UInt8] { Array("\(namespace):events".utf8) }
    /// `N:events:trim`: how many entries Revoke had removed from the event log when it last
    /// trimmed it, and how many had been added by then (a hash: `removed`, `added`).
    public var eventsTrim: [UInt8] { Array("\(namespace):events:trim".utf8) }
    /// `N:replicated`: a counter each write bumps when writes need replicas (`WAIT` covers a
    /// connection's writes; a write that changed nothing wrote nothing, and would not wait for
    /// the replicas to hold the earlier, unconfirmed one it repeats).
    public var replicated: [UInt8] { Array("\(namespace):replicated".utf8) }
    /// `N:audit`: the audit trail of admin actions, a capped list, newest first.
    public var audit: [UInt8] { Array("\(namespace):audit".utf8) }

    /// `N:seen:<issuer's length>:<issuer><id>`: a one-time message (a logout token) already
    /// applied, kept until it could no longer be accepted. The length keeps every issuer and
    /// ID pair apart.
    public func oneTimeMessage(_ message: RevocationStore.OneTimeMessage) -> [UInt8] {
        Array("\(namespace):seen:\(message.issuer.utf8.count):".utf8) + Array(message.issuer.utf8) + Array(message.id.utf8)
    }
}
