import Foundation
import LoopbackHTTP
import Testing

/// HTTP/1.1 written by hand on a ``LoopbackSocket``, each exchange on a thread of its own,
/// never on the cooperative pool.
public enum RawHTTP {
    public enum Framing: Sendable, CustomTestStringConvertible {
        case contentLength, chunked
        public var testDescription: String { self == .contentLength ? "Content-Length" : "chunked" }
    }

    /// Sends `total` bytes of body in pieces of `piece`, `pause` seconds apart, then returns
    /// the answer up to the end of its JSON body.
    public static func upload(
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
    public static func request(
        port: Int, method: String = "GET", path: String, headers: [String: String] = [:], json: String? = nil
    ) async throws -> String {
        var headers = headers
        if json != nil { headers["Content-Type"] = headers["Content-Type"] ?? "application/json" }
        return try await request(port: port, method: method, path: path, headers: headers, body: json)
    }

    /// `GET path` again while it answers 503 (an instance not following the log yet, or again),
    /// for up to a minute; the first other answer, or the last 503.
    public static func requestUntilNot503(port: Int, path: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let answer = try await request(port: port, path: path)
            if !answer.hasPrefix("HTTP/1.1 503") || ContinuousClock.now >= deadline { return answer }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends one request with `Connection: close` and returns the whole answer.
    public static func request(port: Int, method: String, path: String, headers: [String: String], body: String?) async throws -> String {
        try await onThread { try LoopbackSocket.exchange(port: port, method: method, path: path, headers: headers, body: body) }
    }

    /// Starts a JSON POST on a keep-alive connection that first served one whole request, and
    /// holds back the last byte of its body until ``HeldRequest/finish()``: a request the server
    /// has begun but cannot answer yet.
    public static func hold(port: Int, path: String, json: String) async throws -> HeldRequest {
        try await onThread {
            let socket = try LoopbackSocket(port: port)
            // One whole exchange first: the connection is accepted and served.
            try socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            _ = try socket.read(until: { $0.contains("\r\n\r\n") && $0.hasSuffix("}") })
            let body = Array(json.utf8)
            try socket.write("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
            try socket.write(Array(body.dropLast()))
            return HeldRequest(socket: socket, last: body.last!)
        }
    }

    /// `POST /v1/revocations` of a `jti` that never expires, with an admin key, expecting 201.
    public static func revoke(port: Int, jti: String, key: String) async throws {
        let answer = try await request(
            port: port, method: "POST", path: "/v1/revocations", headers: ["Authorization": "Bearer \(key)"],
            json: #"{"jti":"\#(jti)","expires_at":null}"#)
        #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer.prefix(200))")
    }

    /// Opens a streaming GET and returns what arrived once `done` says it is enough.
    public static func stream(port: Int, path: String, headers: [String: String] = [:], until done: @escaping @Sendable (String) -> Bool) async throws
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

    public static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}

/// A request whose last body byte is held back (``RawHTTP/hold(port:path:json:)``).
///
/// `@unchecked Sendable`: the socket is used by one thread at a time, since each step is
/// awaited before the next begins.
public final class HeldRequest: @unchecked Sendable {
    private let socket: LoopbackSocket
    private let last: UInt8

    fileprivate init(socket: LoopbackSocket, last: UInt8) {
        self.socket = socket
        self.last = last
    }

    /// Sends the last byte and returns the answer, up to the end of its JSON body.
    public func finish() async throws -> String {
        try await RawHTTP.onThread { try self.send() }
    }

    private func send() throws -> String {
        try socket.write([last])
        return try socket.read(until: { $0.contains("\r\n\r\n") && $0.hasSuffix("}") })
    }
}

/// An open `GET` whose answer is read a little at a time: for event streams that must be
/// followed, paused, and seen to end.
///
/// `@unchecked Sendable`: the socket and the text are used by one thread at a time, since
/// each read is awaited before the next begins.
public final class OpenStream: @unchecked Sendable {
    private let socket: LoopbackSocket
    /// Everything read so far.
    public private(set) var text = ""

    private init(socket: LoopbackSocket) {
        self.socket = socket
    }

    /// Sends `GET path` and returns at once; reads wait up to `timeout` seconds for a byte.
    public static func open(
        port: Int, path: String, headers: [String: String] = [:], timeout: Int = 120, receiveBuffer: Int? = nil
    ) async throws -> OpenStream {
        try await RawHTTP.onThread {
            let socket = try LoopbackSocket(port: port, timeout: timeout, receiveBuffer: receiveBuffer)
            var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
            try socket.write(head + "\r\n")
            return OpenStream(socket: socket)
        }
    }

    /// Opens `GET path` once the server serves it (a `revoked` that just became ready may not
    /// follow the log yet, and answers 503 until it does), and reads up to its first heartbeat.
    public static func live(port: Int, path: String, headers: [String: String] = [:], receiveBuffer: Int? = nil) async throws -> OpenStream {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let stream = try await open(port: port, path: path, headers: headers, receiveBuffer: receiveBuffer)
            let head = try await stream.read { $0.contains(": heartbeat") || ($0.contains("\r\n\r\n") && !$0.hasPrefix("HTTP/1.1 200")) }
            if head.hasPrefix("HTTP/1.1 200") { return stream }
            guard ContinuousClock.now < deadline else { throw SetupError("\(path) never answered 200: \(head.prefix(200))") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Reads until `done` holds for everything read so far, or the server closes; returns all of it.
    @discardableResult
    public func read(until done: @escaping @Sendable (String) -> Bool) async throws -> String {
        try await RawHTTP.onThread { try self.readOnThread(until: done) }
    }

    private func readOnThread(until done: (String) -> Bool) throws -> String {
        let already = text
        if done(already) { return already }
        text = already + (try socket.read(until: { done(already + $0) }))
        return text
    }

    /// Whether the answer so far ends a chunked body (the stream is over).
    public static func ended(_ text: String) -> Bool { text.hasSuffix("0\r\n\r\n") }

    /// The `jti`s of the revocation events read so far, in order.
    public var revokedJTIs: [String] { Self.jtis(in: text) }

    /// The `jti`s of the revocation events in `text`, in order.
    public static func jtis(in text: String) -> [String] {
        text.components(separatedBy: #""jti":""#).dropFirst().compactMap { $0.split(separator: "\"").first.map(String.init) }
    }

    /// The `id` of the last event read so far.
    public var lastID: String? {
        text.components(separatedBy: "\nid: ").dropFirst().last?.split(separator: "\n").first.map(String.init)
    }
}
