/// An error from the Redis layer.
///
/// Callers switch on ``code``; ``message`` is for people and logs.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set that can grow without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: Hashable, Sendable {
            case unavailable, connectionFailed, connectionClosed, timeout
            case commandFailed, protocolError, unexpectedReply, invalidConfiguration, notReplicated
        }
        fileprivate let base: Base

        /// No connection is up right now; the client is reconnecting in the background.
        public static let unavailable = Code(base: .unavailable)
        /// A connection could not be opened, or its handshake (AUTH, SELECT, PING) failed.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The connection closed before the reply arrived.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// No reply within the command timeout; the connection was dropped.
        public static let timeout = Code(base: .timeout)
        /// Redis answered with an error reply.
        public static let commandFailed = Code(base: .commandFailed)
        /// Redis sent bytes that are not RESP, or a reply nobody asked for.
        public static let protocolError = Code(base: .protocolError)
        /// A reply of a type the caller did not expect.
        public static let unexpectedReply = Code(base: .unexpectedReply)
        /// A bad `redis://` URL or option.
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// A write ran, but `WAIT` did not confirm as many replicas as required in time.
        public static let notReplicated = Code(base: .notReplicated)

        public var description: String {
            switch base {
            case .unavailable: "unavailable"
            case .connectionFailed: "connectionFailed"
            case .connectionClosed: "connectionClosed"
            case .timeout: "timeout"
            case .commandFailed: "commandFailed"
            case .protocolError: "protocolError"
            case .unexpectedReply: "unexpectedReply"
            case .invalidConfiguration: "invalidConfiguration"
            case .notReplicated: "notReplicated"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// A sentence for a person; for ``Code/commandFailed``, Redis' own error text.
    public var message: String
    /// The error underneath, if any (a socket error, say).
    public var underlying: (any Error)?
    public var file: String
    public var line: Int

    public init(
        _ code: Code, _ message: String, underlying: (any Error)? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// True when Redis could not be reached, did not answer in time, could not confirm the
    /// replicas a write needs, or answered that it cannot serve now (`LOADING`, `BUSY`, `READONLY`, `MASTERDOWN`, `NOREPLICAS`, `TRYAGAIN`,
    /// `CLUSTERDOWN`): a caller should report the store as unavailable and retry later, never
    /// guess an answer. Any other error reply (`WRONGTYPE`, `ERR ...`) is not: retrying will not
    /// mend it.
    public var isUnavailable: Bool {
        switch code.base {
        case .unavailable, .connectionFailed, .connectionClosed, .timeout, .notReplicated: true
        case .commandFailed: Self.transientReplies.contains { message.hasPrefix($0) }
        default: false
        }
    }

    /// Error replies that mean "not now" rather than "never".
    private static let transientReplies = ["LOADING", "BUSY", "READONLY", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN"]

    public var description: String {
        if let underlying { return "Redis \(code): \(message) (\(underlying))" }
        return "Redis \(code): \(message)"
    }
}
