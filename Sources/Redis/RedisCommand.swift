import NIOCore

/// A Redis command as an argument vector: every argument travels as a length-prefixed bulk
/// string, so no byte of it (CR, LF, NUL, spaces, quotes) can ever be read as syntax.
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    /// The arguments, command name first.
    public var arguments: [[UInt8]]

    /// A command from raw arguments, command name first.
    public init(arguments: [[UInt8]]) {
        precondition(!arguments.isEmpty, "a Redis command needs a name")
        self.arguments = arguments
    }

    /// A command from textual arguments: `RedisCommand("SET", key, value)`.
    public init(_ name: String, _ arguments: String...) {
        self.arguments = [Array(name.utf8)] + arguments.map { Array($0.utf8) }
    }

    /// A command from textual arguments: `RedisCommand("MGET", keys)`.
    public init(_ name: String, _ arguments: [String]) {
        self.arguments = [Array(name.utf8)] + arguments.map { Array($0.utf8) }
    }

    /// Appends a text argument.
    public mutating func append(_ argument: String) { arguments.append(Array(argument.utf8)) }
    /// Appends a binary argument.
    public mutating func append(bytes argument: [UInt8]) { arguments.append(argument) }
    /// Appends an integer argument in decimal.
    public mutating func append(_ argument: Int) { arguments.append(Array(String(argument).utf8)) }

    /// The command's name, for logs and metrics (never its arguments: they may be secrets).
    public var name: String { String(decoding: arguments[0], as: UTF8.self).uppercased() }

    public var description: String { "\(name) (\(arguments.count - 1) arguments)" }

    /// The exact bytes of the command in RESP, as hiredis' `redisFormatCommandArgv` writes them,
    /// in one reservation of the buffer (it runs for every command sent).
    public func encode(into buffer: inout ByteBuffer) {
        var size = 3 + Self.digits(arguments.count)
        for index in arguments.indices {
            let count = arguments[index].count
            size += 5 + Self.digits(count) + count
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var at = 0
            raw[at] = UInt8(ascii: "*")
            at = Self.writeDecimal(arguments.count, into: raw, at: at + 1)
            for index in arguments.indices {
                raw[at] = UInt8(ascii: "$")
                arguments[index].withUnsafeBytes { bytes in
                    at = Self.writeDecimal(bytes.count, into: raw, at: at + 1)
                    if !bytes.isEmpty {
                        UnsafeMutableRawBufferPointer(rebasing: raw[at..<(at + bytes.count)]).copyMemory(from: bytes)
                    }
                    at += bytes.count
                }
                raw[at] = 0x0D
                raw[at + 1] = 0x0A
                at += 2
            }
            return at
        }
    }

    private static func digits(_ value: Int) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 { count += 1; rest /= 10 }
        return count
    }

    /// `value` in decimal followed by CRLF at `start`; returns where it ends.
    private static func writeDecimal(_ value: Int, into raw: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        let count = digits(value)
        var rest = value
        for index in stride(from: start + count - 1, through: start, by: -1) {
            raw[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
        raw[start + count] = 0x0D
        raw[start + count + 1] = 0x0A
        return start + count + 2
    }
}
