import RevokeCore
import Testing

@Suite struct EventStreamParserTests {
    @Test func readsEventsAndCommentsWhateverTheSplit() {
        let text = Array(": heartbeat\n\nevent: revocation\r\nid: 1-0\ndata: {\"jti\":\"a\"}\n\nevent: cutoff\nid: 2-0\ndata: x\ndata: y\n\n".utf8)
        let expected: [EventStreamParser.Message] = [
            .comment, .event(type: "revocation", id: "1-0", data: #"{"jti":"a"}"#), .event(type: "cutoff", id: "2-0", data: "x\ny"),
        ]
        for split in 0...text.count {
            var parser = EventStreamParser()
            #expect(parser.feed(text[..<split]) + parser.feed(text[split...]) == expected, "split at \(split)")
        }
    }

    /// A server that never ends a line cannot make its reader hold unbounded memory.
    @Test func anEndlessLineEndsTheStream() {
        var parser = EventStreamParser()
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        var messages: [EventStreamParser.Message] = parser.feed(Array("data: ".utf8))
        for _ in 0..<5 { messages += parser.feed(chunk) }
        #expect(messages == [.oversized])
        #expect(parser.feed(Array("\n\n".utf8)).isEmpty)
    }
}
