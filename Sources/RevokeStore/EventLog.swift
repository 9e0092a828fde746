import Redis
import RevokeCore

/// One change from the event log (`N:events`).
public struct StoreEvent: Sendable, Hashable {
    /// The stream ID, `<milliseconds>-<sequence>`: the cursor after this event.
    public var id: String
    /// `revocation`, `unrevocation`, `cutoff` or `uncutoff`.
    public var type: String
    /// The record, as JSON.
    public var data: [UInt8]

    public init(id: String, type: String, data: [UInt8]) {
        self.id = id
        self.type = type
        self.data = data
    }

    init(_ entry: RedisStreamEntry) {
        self.init(id: entry.id, type: entry["type"].map { String(decoding: $0, as: UTF8.self) } ?? "", data: entry["data"] ?? [])
    }
}

/// A position in the event log: a Redis Stream ID, `<milliseconds>-<sequence>`.
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

extension RevocationStore {
    /// The ID of the last event ever appended (trimmed or not), or ``EventCursor/start`` when
    /// the log is empty: events after it are those not yet written.
    public func lastEventCursor() async throws -> EventCursor {
        try await translatingRedisErrors {
            guard let fields = try await streamInfo() else { return .start }
            guard let last = fields["last-generated-id"]?.string.flatMap({ EventCursor($0) }) else {
                throw RedisError(.unexpectedReply, "XINFO STREAM has no last-generated-id")
            }
            return last
        }
    }

    /// Whether events after `cursor` may have been trimmed from the log, so a replay from it
    /// would miss some: the client must load a new snapshot.
    ///
    /// Redis 7.0 does not record the largest trimmed ID (`max-deleted-entry-id` follows only
    /// `XDEL`), so this is conservative: once anything was trimmed, a cursor older than the entry
    /// just before the first one kept counts as gone. A client may then load a snapshot it did
    /// not strictly need; it never misses an event.
    public func isTrimmed(after cursor: EventCursor) async throws -> Bool {
        try await translatingRedisErrors {
            guard let fields = try await streamInfo() else { return false }
            if let deleted = fields["max-deleted-entry-id"]?.string.flatMap({ EventCursor($0) }), cursor < deleted { return true }
            let first = fields["first-entry"]?.array?.first?.string.flatMap { EventCursor($0) }
            if let added = fields["entries-added"]?.integer, let length = fields["length"]?.integer, added <= length { return false }
            if let first { return cursor < first.predecessor }
            // Everything was trimmed: only a cursor at the very last ID missed nothing.
            guard let last = fields["last-generated-id"]?.string.flatMap({ EventCursor($0) }) else { return true }
            return cursor < last
        }
    }

    /// `XINFO STREAM` as fields, or nil when the log does not exist yet.
    private func streamInfo() async throws -> [String: RedisValue]? {
        let reply: RedisValue
        do {
            reply = try await redis.send(RedisCommand(arguments: [Array("XINFO".utf8), Array("STREAM".utf8), keys.events]))
        } catch let error as RedisError where error.code == .commandFailed && error.message.contains("no such key") {
            return nil
        }
        return try Self.pairs(reply)
    }


    /// The events after `cursor`, oldest first, at most `count`.
    public func events(after cursor: EventCursor, count: Int) async throws -> [StoreEvent] {
        try await translatingRedisErrors {
            try await redis.xrange(String(decoding: keys.events, as: UTF8.self), from: "(\(cursor)", count: count).map(StoreEvent.init)
        }
    }

    /// Waits up to `block` for events after `cursor` on `connection`, which must be a client or
    /// connection of its own: a blocking read holds it for the whole wait.
    public func waitForEvents(after cursor: EventCursor, on connection: some RedisCommandSender, block: Duration, count: Int = 1000)
        async throws -> [StoreEvent]
    {
        try await translatingRedisErrors {
            try await connection.xread(String(decoding: keys.events, as: UTF8.self), after: cursor.description, count: count, block: block)
                .map(StoreEvent.init)
        }
    }

    static func pairs(_ reply: RedisValue) throws -> [String: RedisValue] {
        let flat: [RedisValue]
        switch reply {
        case .array(let items), .map(let items): flat = items
        default: throw RedisError(.unexpectedReply, "expected field-value pairs")
        }
        var fields: [String: RedisValue] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let name = flat[index].string { fields[name] = flat[index + 1] }
        }
        return fields
    }
}
