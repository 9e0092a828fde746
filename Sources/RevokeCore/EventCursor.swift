/// A position in the event log: a Redis Stream ID, `<milliseconds>-<sequence>`. The wire's one
/// cursor type: the server's log and hub, `Revoke-Cursor` and `?since=`, and the client's cache.
public struct EventCursor: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    /// Before every event.
    public static let start = EventCursor(milliseconds: 0, sequence: 0)

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `<milliseconds>-<sequence>` (digits only); nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.utf8.split(separator: UInt8(ascii: "-"), maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 20 && $0.allSatisfy { (0x30...0x39).contains($0) } }),
            let milliseconds = UInt64(String(decoding: parts[0], as: UTF8.self)),
            let sequence = UInt64(String(decoding: parts[1], as: UTF8.self))
        else { return nil }
        self.init(milliseconds: milliseconds, sequence: sequence)
    }

    public var description: String { "\(milliseconds)-\(sequence)" }

    /// The ID just before this one.
    public var predecessor: EventCursor {
        if sequence > 0 { return EventCursor(milliseconds: milliseconds, sequence: sequence - 1) }
        if milliseconds > 0 { return EventCursor(milliseconds: milliseconds - 1, sequence: .max) }
        return self
    }

    public static func < (lhs: EventCursor, rhs: EventCursor) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
