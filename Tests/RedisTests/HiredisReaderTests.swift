@testable import Redis
import Testing

/// hiredis' reader, fed what a hostile or broken server could send (the cases libFuzzer found).
@Suite struct HiredisReaderTests {
    private func read(_ text: String) throws -> [RedisValue] {
        let reader = try HiredisReader()
        try Array(text.utf8).withUnsafeBytes { try reader.feed($0) }
        var replies: [RedisValue] = []
        while let reply = try reader.next() { replies.append(reply) }
        return replies
    }

    @Test func readsWhatRedisSends() throws {
        #expect(try read("+OK\r\n:42\r\n$3\r\nabc\r\n*2\r\n$1\r\na\r\n$-1\r\n") == [
            .simpleString("OK"), .integer(42), .bulkString(Array("abc".utf8)), .array([.bulkString([97]), .null]),
        ])
    }

    /// An array that announces a billion elements is refused at once, instead of hiredis
    /// allocating gigabytes for it before any element arrives.
    @Test func refusesAnArrayThatAnnouncesTooManyElements() throws {
        #expect(throws: RedisError.self) { try read("*999999990\r\n") }
        #expect(throws: RedisError.self) { try read("*0\r\n*999999999999999999999\r\n") }
        #expect(try read("*3\r\n:1\r\n:2\r\n:3\r\n") == [.array([.integer(1), .integer(2), .integer(3)])])
    }
}
