/// One entry of a Redis Stream.
public struct RedisStreamEntry: Sendable, Hashable {
    /// The entry's ID, `<milliseconds>-<sequence>`.
    public var id: String
    /// Field names and values in the order they were added.
    public var fields: [Field]

    /// A field of an entry.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: [UInt8]

        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    public init(id: String, fields: [Field]) {
        self.id = id
        self.fields = fields
    }

    /// The value of the first field with this name.
    public subscript(_ name: String) -> [UInt8]? {
        fields.first { $0.name == name }?.value
    }

    /// Reads `[id, [field, value, ...]]`.
    init(_ reply: RedisValue) throws(RedisError) {
        guard case .array(let parts) = reply, parts.count == 2, let id = parts[0].string,
            case .array(let flat) = parts[1], flat.count % 2 == 0
        else { throw RedisError(.unexpectedReply, "a stream entry is not [id, [field, value, ...]]") }
        var fields: [Field] = []
        fields.reserveCapacity(flat.count / 2)
        for index in stride(from: 0, to: flat.count, by: 2) {
            guard let name = flat[index].string, let value = flat[index + 1].bytes else {
                throw RedisError(.unexpectedReply, "a stream field is not a string")
            }
            fields.append(Field(name: name, value: value))
        }
        self.init(id: id, fields: fields)
    }

    /// The entries of an `XRANGE` or `XREVRANGE` reply (also as a script returns one).
    public static func entries(_ reply: RedisValue) throws(RedisError) -> [RedisStreamEntry] {
        guard case .array(let items) = reply else {
            throw RedisError(.unexpectedReply, "a stream range is not an array")
        }
        var entries: [RedisStreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items { entries.append(try RedisStreamEntry(item)) }
        return entries
    }
}

extension RedisCommand {
    /// The `XADD` command, for use alone or inside a batch.
    /// - Parameters:
    ///   - key: The stream.
    ///   - maximumLength: Trims the stream to about this many entries (`MAXLEN ~`); nil keeps all.
    ///   - fields: Field names and values.
    public static func xadd(
        _ key: String, maximumLength: Int? = nil, fields: [RedisStreamEntry.Field]
    ) -> RedisCommand {
        var command = RedisCommand("XADD", key)
        if let maximumLength {
            command.append("MAXLEN")
            command.append("~")
            command.append(maximumLength)
        }
        command.append("*")
        for field in fields {
            command.append(field.name)
            command.append(bytes: field.value)
        }
        return command
    }
}

extension RedisCommandSender {
    /// Appends an entry to a stream and returns its ID.
    public func xadd(
        _ key: String, maximumLength: Int? = nil, fields: [RedisStreamEntry.Field]
    ) async throws -> String {
        let reply = try await send(RedisCommand.xadd(key, maximumLength: maximumLength, fields: fields))
        guard let id = reply.string else { throw RedisError(.unexpectedReply, "XADD did not return an ID") }
        return id
    }

    /// Entries from `start` to `end` inclusive (`-` and `+` for the ends), at most `count`.
    public func xrange(
        _ key: String, from start: String = "-", to end: String = "+", count: Int? = nil
    ) async throws -> [RedisStreamEntry] {
        var command = RedisCommand("XRANGE", key, start, end)
        if let count {
            command.append("COUNT")
            command.append(count)
        }
        return try RedisStreamEntry.entries(try await send(command))
    }

    /// Entries after `id` in one stream, waiting up to `block` for the first one to arrive.
    ///
    /// A blocking read holds its connection for the whole wait: send it on a connection or
    /// client of its own, never on the one every other command shares.
    /// - Returns: The entries, or an empty array if none arrived within `block`.
    public func xread(
        _ key: String, after id: String, count: Int? = nil, block: Duration? = nil
    ) async throws -> [RedisStreamEntry] {
        var command = RedisCommand("XREAD")
        if let count {
            command.append("COUNT")
            command.append(count)
        }
        var timeout: Duration?
        if let block {
            let milliseconds = max(1, Int(block.components.seconds * 1000 + block.components.attoseconds / 1_000_000_000_000_000))
            command.append("BLOCK")
            command.append(milliseconds)
            // The reply may legitimately take the whole wait: allow for it, plus a margin.
            timeout = block + .seconds(2)
        }
        command.append("STREAMS")
        command.append(key)
        command.append(id)
        let reply = try await send(command, timeout: timeout)
        if reply.isNull { return [] }
        guard case .array(let streams) = reply, let stream = streams.first, case .array(let parts) = stream,
            parts.count == 2
        else { throw RedisError(.unexpectedReply, "XREAD did not return [[stream, entries]]") }
        return try RedisStreamEntry.entries(parts[1])
    }
}
