import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// HTTP/1.1 written by hand on a blocking loopback socket, so a test controls exactly how a
/// request arrives (slowly, in pieces) and sees exactly what comes back (a reset, a refused
/// connection). Each exchange runs on a thread of its own, never on the cooperative pool.
enum RawHTTP {
    enum Framing: CustomTestStringConvertible {
        case contentLength, chunked
        var testDescription: String { self == .contentLength ? "Content-Length" : "chunked" }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The `errno` of the call that failed, when one did.
        var code: Int32?
    }

    /// Sends `total` bytes of body in pieces of `piece`, `pause` seconds apart, then returns
    /// the answer up to the end of its JSON body.
    static func upload(
        port: Int, path: String, framing: Framing, total: Int, piece: Int, pause: Double
    ) async throws -> String {
        try await onThread {
            let socket = try Socket(port: port)
            let framingHeader = framing == .chunked ? "Transfer-Encoding: chunked" : "Content-Length: \(total)"
            try socket.write("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\(framingHeader)\r\n\r\n")
            var sent = 0
            while sent < total {
                let count = min(piece, total - sent)
                let data = [UInt8](repeating: UInt8(ascii: "x"), count: count)
                try socket.write(framing == .chunked ? Array("\(String(count, radix: 16))\r\n".utf8) + data + Array("\r\n".utf8) : data)
                sent += count
                Thread.sleep(forTimeInterval: pause)
            }
            if framing == .chunked { try socket.write("0\r\n\r\n") }
            return try socket.read(until: { $0.contains("}") })
        }
    }

    /// Sends one request with `Connection: close` and returns the whole answer.
    static func request(
        port: Int, method: String = "GET", path: String, headers: [String: String] = [:], json: String? = nil
    ) async throws -> String {
        var headers = headers
        if json != nil { headers["Content-Type"] = headers["Content-Type"] ?? "application/json" }
        return try await request(port: port, method: method, path: path, headers: headers, body: json)
    }

    /// Sends one request with `Connection: close` and returns the whole answer.
    static func request(port: Int, method: String, path: String, headers: [String: String], body: String?) async throws -> String {
        try await onThread {
            let socket = try Socket(port: port)
            var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
            if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
            try socket.write(head + "\r\n" + (body ?? ""))
            return try socket.read(until: { _ in false })
        }
    }

    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    private final class Socket {
        let fd: Int32

        init(port: Int) throws {
            #if canImport(Glibc)
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #else
            fd = socket(AF_INET, SOCK_STREAM, 0)
            #endif
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)", code: errno) }
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
            guard connected == 0 else {
                let code = errno
                close(fd)
                throw Failure(description: "connect: errno \(code)", code: code)
            }
        }

        deinit { close(fd) }

        func write(_ text: String) throws { try write(Array(text.utf8)) }

        func write(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { throw Failure(description: "send: errno \(errno) after \(offset) bytes", code: errno) }
                offset += written
            }
        }

        /// Reads until `done` says the text so far is enough, or until the peer closes.
        func read(until done: (String) -> Bool) throws -> String {
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !done(String(decoding: answer, as: UTF8.self)) {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count == 0 { break }
                guard count > 0 else {
                    throw Failure(description: "recv: errno \(errno) after \(answer.count) bytes of the answer", code: errno)
                }
                answer += buffer[0..<count]
            }
            return String(decoding: answer, as: UTF8.self)
        }
    }
}
