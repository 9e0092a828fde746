#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection to 127.0.0.1, for tests and benchmarks that must write HTTP/1.1
/// by hand (a body in slow pieces, a request while a server drains) and see exactly what comes
/// back (a reset, a refused connection). Blocking: use it on a thread of its own, never on the
/// cooperative pool or an event loop.
public final class LoopbackSocket {
    /// A failed socket call.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// The `errno` of the call that failed.
        public var code: Int32
    }

    private let fd: Int32

    /// The socket's descriptor, for `poll` over many connections (benchmarks).
    public var descriptor: Int32 { fd }

    /// Connects to 127.0.0.1, or to ::1 when nothing listens there (a server bound to
    /// `localhost` may have taken either), with `timeout` seconds for every later send and
    /// receive.
    /// - Parameter receiveBuffer: When set, the kernel's receive buffer in bytes (set before
    ///   connecting), for a reader that must fall behind soon.
    public init(port: Int, timeout: Int = 10, receiveBuffer: Int? = nil) throws(Failure) {
        do {
            fd = try Self.connect(port: port, timeout: timeout, receiveBuffer: receiveBuffer, ipv6: false)
        } catch where error.code == ECONNREFUSED {
            fd = try Self.connect(port: port, timeout: timeout, receiveBuffer: receiveBuffer, ipv6: true)
        }
    }

    private static func connect(port: Int, timeout: Int, receiveBuffer: Int?, ipv6: Bool) throws(Failure) -> Int32 {
        // Close-on-exec: a process this one starts (wrk, say) must not inherit its sockets. wrk
        // given thousands of them gets descriptors past the size of its event loop, and cannot
        // use the connections it opens (each one a "connect" error).
        #if canImport(Glibc)
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        #endif
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)", code: errno) }
        var interval = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        if var bytes = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        let connected: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            address.sin6_addr = in6addr_loopback
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "connect to \(ipv6 ? "[::1]" : "127.0.0.1"):\(port): errno \(code)", code: code)
        }
        return fd
    }

    deinit { close(fd) }

    public func write(_ text: String) throws(Failure) { try write(Array(text.utf8)) }

    public func write(_ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Failure(description: "send: errno \(errno) after \(offset) bytes", code: errno) }
            offset += written
        }
    }

    /// Reads every byte until the peer closes (a binary answer, sent with `Connection: close`).
    public func readAll() throws(Failure) -> [UInt8] {
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return answer }
            guard count > 0 else {
                throw Failure(description: "recv: errno \(errno) after \(answer.count) bytes of the answer", code: errno)
            }
            answer += buffer[0..<count]
        }
    }

    /// Reads until `done` says the text so far is enough, or until the peer closes.
    public func read(until done: (String) -> Bool = { _ in false }) throws(Failure) -> String {
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

    /// One request with `Connection: close`; returns the whole answer, head and body.
    public static func exchange(
        port: Int, method: String, path: String, headers: [String: String] = [:], body: String? = nil
    ) throws(Failure) -> String {
        let socket = try LoopbackSocket(port: port)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        try socket.write(head + "\r\n" + (body ?? ""))
        return try socket.read()
    }
}
