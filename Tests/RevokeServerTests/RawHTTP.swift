import Foundation
import LoopbackHTTP
import Testing

/// HTTP/1.1 written by hand on a ``LoopbackSocket``, each exchange on a thread of its own,
/// never on the cooperative pool.
enum RawHTTP {
    enum Framing: CustomTestStringConvertible {
        case contentLength, chunked
        var testDescription: String { self == .contentLength ? "Content-Length" : "chunked" }
    }

    /// Sends `total` bytes of body in pieces of `piece`, `pause` seconds apart, then returns
    /// the answer up to the end of its JSON body.
    static func upload(
        port: Int, path: String, framing: Framing, total: Int, piece: Int, pause: Double
    ) async throws -> String {
        try await onThread {
            let socket = try LoopbackSocket(port: port)
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
        try await onThread { try LoopbackSocket.exchange(port: port, method: method, path: path, headers: headers, body: body) }
    }

    /// Opens a streaming GET and returns what arrived once `done` says it is enough.
    static func stream(port: Int, path: String, headers: [String: String] = [:], until done: @escaping @Sendable (String) -> Bool) async throws
        -> String
    {
        try await onThread {
            let socket = try LoopbackSocket(port: port)
            var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
            try socket.write(head + "\r\n")
            return try socket.read(until: done)
        }
    }

    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}
