import Foundation
import HummingbirdTesting
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A body over 64 KiB is answered 413 with the JSON error body, and the client reads it: the
/// server goes on reading what the client sends instead of resetting the connection under it,
/// however large the body and however slowly it arrives.
@Suite struct LargeBodyTests {
    enum Framing: CustomTestStringConvertible {
        case contentLength, chunked
        var testDescription: String { self == .contentLength ? "Content-Length" : "chunked" }
    }

    @Test(arguments: [Framing.contentLength, .chunked])
    func aSlowOversizedBodyIsAnswered413NotReset(_ framing: Framing) async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            for path in ["/v1/check", "/v1/revoke", "/v1/check/batch"] {
                // 1 MiB in 16 KiB pieces, 2 ms apart: the way a slow client uploads.
                let answer = try await RawHTTP.exchange(
                    port: port, path: path, framing: framing, total: 1 << 20, piece: 16 << 10, pause: 0.002)
                #expect(answer.hasPrefix("HTTP/1.1 413"), "\(path): \(answer.prefix(120))")
                #expect(answer.contains(#""error":"payload_too_large""#), "\(path): \(answer.prefix(300))")
            }
        }
    }
}

/// One HTTP/1.1 request written by hand on a blocking socket (on a thread of its own, never
/// the cooperative pool), so the test controls exactly how the body arrives.
enum RawHTTP {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func exchange(
        port: Int, path: String, framing: LargeBodyTests.Framing, total: Int, piece: Int, pause: Double
    ) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try run(port: port, path: path, framing: framing, total: total, piece: piece, pause: pause) })
            }
            thread.start()
        }
    }

    private static func run(
        port: Int, path: String, framing: LargeBodyTests.Framing, total: Int, piece: Int, pause: Double
    ) throws -> String {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect: errno \(errno)") }

        func write(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { throw Failure(description: "send: errno \(errno) after \(offset) bytes of a piece") }
                offset += written
            }
        }

        let framingHeader = framing == .chunked ? "Transfer-Encoding: chunked" : "Content-Length: \(total)"
        try write(Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\(framingHeader)\r\n\r\n".utf8))
        var sent = 0
        while sent < total {
            let count = min(piece, total - sent)
            let data = [UInt8](repeating: UInt8(ascii: "x"), count: count)
            try write(framing == .chunked ? Array("\(String(count, radix: 16))\r\n".utf8) + data + Array("\r\n".utf8) : data)
            sent += count
            Thread.sleep(forTimeInterval: pause)
        }
        if framing == .chunked { try write(Array("0\r\n\r\n".utf8)) }

        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: answer, as: UTF8.self).contains("}") {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                throw Failure(description: "recv: \(count == 0 ? "closed" : "errno \(errno)") after \(answer.count) bytes of the answer")
            }
            answer += buffer[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
