/// Splits a `text/event-stream` (WHATWG HTML, server-sent events: `field: value` lines, a blank
/// line ends an event, `:` starts a comment) into comments and events, as `GET /v1/events`
/// speaks it and clients read it. A field it does not know is skipped, as the format says; a
/// line or an event longer than ``maximumBytes`` ends the stream (``Message/oversized``), so a
/// hostile server cannot make its reader hold unbounded memory.
public struct EventStreamParser: Sendable {
    /// What the bytes complete.
    public enum Message: Equatable, Sendable {
        case comment
        case event(type: String, id: String?, data: String)
        /// A line or an event passed ``maximumBytes``: the stream cannot be trusted further.
        case oversized
    }

    /// The longest line, and the most data one event may gather.
    public static let maximumBytes = 4 << 20
    private var dataBytes = 0
    private var over = false

    private var line: [UInt8] = []
    private var type = ""
    private var id: String?
    private var data: [String] = []

    public init() {}

    /// Takes the next bytes of the stream and returns the messages they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Message] {
        var messages: [Message] = []
        if over { return [] }
        for byte in bytes {
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                if line.count > Self.maximumBytes {
                    over = true
                    return messages + [.oversized]
                }
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            defer { line.removeAll(keepingCapacity: true) }
            if line.isEmpty {
                if !data.isEmpty { messages.append(.event(type: type.isEmpty ? "message" : type, id: id, data: data.joined(separator: "\n"))) }
                type = ""
                id = nil
                data = []
                dataBytes = 0
                continue
            }
            if line.first == UInt8(ascii: ":") {
                messages.append(.comment)
                continue
            }
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            let field = String(decoding: line[..<colon], as: UTF8.self)
            var value = colon < line.endIndex ? line[(colon + 1)...] : []
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
            let text = String(decoding: value, as: UTF8.self)
            switch field {
            case "event": type = text
            case "id": id = text
            case "data":
                dataBytes += text.utf8.count
                if dataBytes > Self.maximumBytes {
                    over = true
                    return messages + [.oversized]
                }
                data.append(text)
            default: break
            }
        }
        return messages
    }
}
