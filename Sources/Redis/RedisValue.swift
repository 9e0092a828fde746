/// A reply from Redis, copied out of hiredis' reply tree into Swift values.
///
/// Revoke speaks RESP2 (hiredis 0.14 cannot parse RESP3), so in practice only the first six
/// cases occur; the others exist so that the same code also runs against hiredis 1.x.
public enum RedisValue: Sendable, Hashable {
    /// A status reply (`+OK`).
    case simpleString(String)
    /// An error reply (`-ERR ...`). At the top level of `send(_:)` it is thrown instead.
    case error(String)
    /// An integer reply (`:1`).
    case integer(Int64)
    /// A bulk string, binary safe.
    case bulkString([UInt8])
    /// A nil bulk string or nil array.
    case null
    /// A multi-bulk reply.
    case array([RedisValue])
    /// A RESP3 double.
    case double(Double)
    /// A RESP3 boolean.
    case boolean(Bool)
    /// A RESP3 map, as alternating keys and values.
    case map([RedisValue])
}

extension RedisValue {
    /// The value as text, for status and bulk replies.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The value as an integer, for integer replies and bulk strings holding a number.
    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether the reply is nil.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
