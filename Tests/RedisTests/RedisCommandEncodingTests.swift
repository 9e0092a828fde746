import CHiredis
import NIOCore
import Redis
import Testing

/// Our encoder must write exactly what hiredis' `redisFormatCommandArgv` writes.
@Suite struct RedisCommandEncodingTests {
    /// An argument vector with a short name, so test reports do not print 100 KB arguments.
    struct Sample: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [[UInt8]]
        var testDescription: String { name }
    }

    static let samples: [Sample] = [
        Sample(name: "PING", arguments: [Array("PING".utf8)]),
        Sample(
            name: "SET EX",
            arguments: [Array("SET".utf8), Array("revoke:jti:a".utf8), Array("1".utf8), Array("EX".utf8), Array("60".utf8)]),
        Sample(
            name: "CRLF and NUL", arguments: [Array("SET".utf8), Array("k\r\n*1\r\n$4\r\nPING".utf8), [0, 1, 2, 0, 13, 10]]),
        Sample(name: "empty argument", arguments: [Array("ECHO".utf8), []]),
        Sample(name: "100 KB argument", arguments: [Array("ECHO".utf8), Array(repeating: 0x41, count: 100_000)]),
        Sample(name: "13 arguments", arguments: [Array("MSET".utf8)] + (0..<12).map { Array("arg-\($0)".utf8) }),
    ]

    @Test(arguments: samples)
    func matchesHiredis(_ sample: Sample) {
        var buffer = ByteBuffer()
        RedisCommand(arguments: sample.arguments).encode(into: &buffer)
        #expect(Array(buffer.readableBytesView) == hiredisFormat(sample.arguments))
    }

    private func hiredisFormat(_ arguments: [[UInt8]]) -> [UInt8] {
        let copies = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(copy).copyMemory(from: base, byteCount: raw.count) }
            }
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
        var lengths = arguments.map { $0.count }
        var target: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &pointers, &lengths)
        defer { chiredis_free(target) }
        guard length > 0, let target else { return [] }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }

    @Test func namesTheCommandWithoutItsArguments() {
        let command = RedisCommand("auth", "secret")
        #expect(command.name == "AUTH")
        #expect(!command.description.contains("secret"))
    }
}
