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

/// A page of the event log read after a cursor, and what the log proved about it.
public enum EventPage: Sendable, Equatable {
    /// The events after the cursor, oldest first (none: nothing yet), and nothing after the
    /// cursor had been removed when they were read: a reader that applies them misses nothing.
    case events([StoreEvent])
    /// Events after the cursor left the log before they could be read (trimmed, or another log
    /// after a failover): a reader from the cursor would have a gap.
    case gone
}

extension EventLogState {
    /// Reads what `Scripts.eventLogState` returns: `XINFO STREAM` (false without a stream) and
    /// the trim record.
    init(reply: RedisValue) throws {
        guard case .array(let parts) = reply, parts.count == 2, case .array(let noted) = parts[1], noted.count == 2 else {
            throw RedisError(.unexpectedReply, "the event log state script answered \(reply)")
        }
        let notedRemoved = noted[0].integer ?? 0
        let notedAdded = noted[1].integer ?? 0
        guard case .array = parts[0] else {
            self.init(exists: false, notedRemoved: notedRemoved, notedAdded: notedAdded)
            return
        }
        let fields = try RevocationStore.pairs(parts[0])
        func cursor(_ name: String) throws -> EventCursor {
            guard let value = fields[name]?.string.flatMap({ EventCursor($0) }) else {
                throw RedisError(.unexpectedReply, "XINFO STREAM has no \(name)")
            }
            return value
        }
        guard let added = fields["entries-added"]?.integer, let length = fields["length"]?.integer else {
            throw RedisError(.unexpectedReply, "XINFO STREAM has no entries-added or length (Redis 7.0 or later is needed)")
        }
        self.init(
            exists: true, lastGenerated: try cursor("last-generated-id"), maxDeleted: try cursor("max-deleted-entry-id"),
            entriesAdded: added, length: length, first: fields["first-entry"]?.array?.first?.string.flatMap { EventCursor($0) },
            notedRemoved: notedRemoved, notedAdded: notedAdded)
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
            try EventLogState(reply: try await redis.evaluate(Scripts.eventLogState, keys: [keys.events, keys.eventsTrim]))
        }
    }

    /// Whether events after `cursor` may be missing from the log, so a stream from it could
    /// have a gap: the client must load a new snapshot (410).
    public func isGone(after cursor: EventCursor) async throws -> Bool {
        try await !eventLogState().holdsEverything(after: cursor)
    }

    /// The events after `cursor`, at most `count`, proven to follow it without a gap: the page
    /// and the log's state are read in one atomic step. Every reader of the log after a cursor
    /// (the keeper catching up, a stream's replay) reads through this.
    public func events(after cursor: EventCursor, count: Int) async throws -> EventPage {
        try await translatingRedisErrors {
            let reply = try await redis.evaluate(
                Scripts.eventsAfter, keys: [keys.events, keys.eventsTrim], arguments: [Array(cursor.description.utf8), Array(String(count).utf8)])
            guard case .array(let parts) = reply, parts.count == 3 else {
                throw RedisError(.unexpectedReply, "the events-after script answered \(reply)")
            }
            let log = try EventLogState(reply: .array(Array(parts[0...1])))
            guard log.holdsEverything(after: cursor) else { return .gone }
            return .events(try RedisStreamEntry.entries(parts[2]).map(StoreEvent.init))
        }
    }

    /// The events after `cursor`, as ``events(after:count:)``, waiting up to `block` for the
    /// first one: a blocking read, which holds this store's connection for the whole wait, so
    /// only a store read through a connection of its own (``reading(through:)``) may call it.
    /// The page is read first, then the log's state: whatever was removed after the read is
    /// later than the page.
    public func waitForEvents(after cursor: EventCursor, block: Duration, count: Int) async throws -> EventPage {
        try await translatingRedisErrors {
            let entries = try await redis.xread(String(decoding: keys.events, as: UTF8.self), after: cursor.description, count: count, block: block)
            let log = try EventLogState(reply: try await redis.evaluate(Scripts.eventLogState, keys: [keys.events, keys.eventsTrim]))
            guard log.holdsEverything(after: cursor) else { return .gone }
            return .events(entries.map(StoreEvent.init))
        }
    }

    /// Waits until the connection this store reads through is up and Redis answers (`PING`):
    /// a loop that follows the log says it follows only from then on.
    public func waitUntilReachable(timeout: Duration) async throws {
        try await translatingRedisErrors {
            if let client = redis as? RedisClient { try await client.waitUntilConnected(timeout: timeout) }
            _ = try await redis.send(RedisCommand("PING"))
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
