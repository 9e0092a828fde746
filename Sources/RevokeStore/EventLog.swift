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

/// What the event log holds and what it has lost, read in one atomic step: enough to tell
/// whether every event after a cursor is still there (``holdsEverything(after:)``).
///
/// Redis records the largest ID removed by `XDEL` (`max-deleted-entry-id`) but not the largest
/// removed by `XTRIM` or `XADD MAXLEN`. Revoke trims its log with `XDEL` (see `Scripts`) and
/// notes how many entries had been removed when it did (`N:events:trim`). So while every
/// removal is Revoke's own (the removed count, `entries-added - length`, is the noted one), the
/// largest removed ID is known exactly. When someone else trimmed the log (an operator's
/// `XTRIM`, a `DEL` of the stream), only what is left is known: everything removed since is
/// older than the first entry kept, so a cursor counts as gone unless nothing can lie between
/// it and that entry. That errs only towards a 410 the client did not strictly need.
public struct EventLogState: Sendable, Hashable {
    /// Whether the stream exists.
    public var exists: Bool
    /// The ID of the last entry ever added (`last-generated-id`).
    public var lastGenerated: EventCursor
    /// The largest ID removed by `XDEL` (`max-deleted-entry-id`).
    public var maxDeleted: EventCursor
    /// Entries ever added, and entries there now.
    public var entriesAdded: Int64
    public var length: Int64
    /// The oldest entry kept, if any.
    public var first: EventCursor?
    /// What `N:events:trim` noted at Revoke's last trim: entries removed, entries added by then.
    public var notedRemoved: Int64
    public var notedAdded: Int64

    public init(
        exists: Bool, lastGenerated: EventCursor = .start, maxDeleted: EventCursor = .start, entriesAdded: Int64 = 0,
        length: Int64 = 0, first: EventCursor? = nil, notedRemoved: Int64 = 0, notedAdded: Int64 = 0
    ) {
        self.exists = exists
        self.lastGenerated = lastGenerated
        self.maxDeleted = maxDeleted
        self.entriesAdded = entriesAdded
        self.length = length
        self.first = first
        self.notedRemoved = notedRemoved
        self.notedAdded = notedAdded
    }

    /// Whether every removal from this stream was Revoke's own trim, counted: then
    /// ``maxDeleted`` is the largest ID ever removed. A stream deleted and made anew has added
    /// fewer entries than were noted, so it does not count as this one.
    public var removalsAreAccountedFor: Bool {
        entriesAdded - length == notedRemoved && entriesAdded >= notedAdded
    }

    /// Whether every event after `cursor` is still in the log, so a stream from it can be
    /// complete. False for a cursor this log never handed out that could hide a gap: one ahead
    /// of the log (another log, or a failover that lost entries), one from a log that was
    /// deleted, one older than what was removed.
    public func holdsEverything(after cursor: EventCursor) -> Bool {
        guard exists else { return cursor == .start }
        if cursor > lastGenerated { return false }
        if cursor < maxDeleted { return false }
        if removalsAreAccountedFor {
            // Nothing removed: every event is here, and a cursor is the start or one of them
            // (an older one comes from another log).
            if entriesAdded == length { return cursor == .start || first.map { cursor >= $0 } ?? false }
            return true
        }
        // Removed by someone else: all of it older than the first entry kept.
        guard let first else { return cursor == lastGenerated }
        return cursor >= first.predecessor
    }
}

extension RevocationStore {
    /// The ID of the last event ever appended (trimmed or not), or ``EventCursor/start`` when
    /// the log is empty: events after it are those not yet written.
    public func lastEventCursor() async throws -> EventCursor {
        try await eventLogState().lastGenerated
    }

    /// The log's state (``EventLogState``), read atomically.
    public func eventLogState() async throws -> EventLogState {
        try await translatingRedisErrors {
            let reply = try await redis.evaluate(Scripts.eventLogState, keys: [keys.events, keys.eventsTrim])
            guard case .array(let parts) = reply, parts.count == 2, case .array(let noted) = parts[1], noted.count == 2 else {
                throw RedisError(.unexpectedReply, "the event log state script answered \(reply)")
            }
            let notedRemoved = noted[0].integer ?? 0
            let notedAdded = noted[1].integer ?? 0
            guard case .array = parts[0] else {
                return EventLogState(exists: false, notedRemoved: notedRemoved, notedAdded: notedAdded)
            }
            let fields = try Self.pairs(parts[0])
            func cursor(_ name: String) throws -> EventCursor {
                guard let value = fields[name]?.string.flatMap({ EventCursor($0) }) else {
                    throw RedisError(.unexpectedReply, "XINFO STREAM has no \(name)")
                }
                return value
            }
            guard let added = fields["entries-added"]?.integer, let length = fields["length"]?.integer else {
                throw RedisError(.unexpectedReply, "XINFO STREAM has no entries-added or length (Redis 7.0 or later is needed)")
            }
            return EventLogState(
                exists: true, lastGenerated: try cursor("last-generated-id"), maxDeleted: try cursor("max-deleted-entry-id"),
                entriesAdded: added, length: length, first: fields["first-entry"]?.array?.first?.string.flatMap { EventCursor($0) },
                notedRemoved: notedRemoved, notedAdded: notedAdded)
        }
    }

    /// Whether events after `cursor` may be missing from the log, so a stream from it could
    /// have a gap: the client must load a new snapshot (410).
    public func isGone(after cursor: EventCursor) async throws -> Bool {
        try await !eventLogState().holdsEverything(after: cursor)
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
