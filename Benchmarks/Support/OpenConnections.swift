import Foundation
import LoopbackHTTP

#if canImport(Glibc)
import Glibc
#endif

/// Many connections to one server: each sends `request` (or nothing, to sit idle); a thread of
/// their own reads and drops what arrives when `startReading()` is called, else nothing is read.
///
/// `@unchecked Sendable`: the sockets are read only by the reading thread, and closed only
/// after it stopped; the counters are atomics' worth of plain integers read after the fact.
public final class OpenConnections: @unchecked Sendable {
    private var sockets: [LoopbackSocket]
    private let stop = ManagedFlag()
    private var reader: Thread?
    public private(set) var bytesRead = 0

    public init(port: Int, count: Int, request: String?, receiveBuffer: Int? = nil) throws {
        sockets = []
        sockets.reserveCapacity(count)
        for _ in 0..<count {
            let socket = try LoopbackSocket(port: port, timeout: 30, receiveBuffer: receiveBuffer)
            if let request { try socket.write(request) }
            sockets.append(socket)
        }
    }

    /// Connections the server has not closed.
    public var open: Int { sockets.count - closedByPeer() }

    /// Connections the server closed (seen with `poll`, without reading what is pending).
    public func closedByPeer() -> Int {
        var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: pollReadHangUp, revents: 0) }
        _ = poll(&descriptors, nfds_t(descriptors.count), 0)
        return descriptors.filter { $0.revents & (pollReadHangUp | Int16(POLLHUP)) != 0 }.count
    }

    /// Reads whatever the connections hold until each has ended or a second passes with nothing
    /// new, and returns how many the server closed. (A close waits in the server's kernel behind
    /// the data a reader never took, so it is seen only once that data is read.)
    public func drainCountingClosed() -> Int {
        var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        var closed = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        // Bounded: at most 30 s, and only while data keeps coming.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, poll(&descriptors, nfds_t(descriptors.count), 1000) > 0 {
            for index in descriptors.indices where descriptors[index].revents & Int16(POLLIN | POLLHUP) != 0 {
                let count = buffer.withUnsafeMutableBytes { recv(descriptors[index].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if count == 0 || (count < 0 && errno != EAGAIN) {
                    closed += 1
                    descriptors[index].fd = -1
                }
            }
        }
        return closed
    }

    public func startReading() {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
            while !stop.isSet {
                guard poll(&descriptors, nfds_t(descriptors.count), 100) > 0 else { continue }
                for index in descriptors.indices where descriptors[index].revents & Int16(POLLIN) != 0 {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptors[index].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if count > 0 { bytesRead += count } else if count == 0 { descriptors[index].events = 0 }
                }
            }
        }
        reader = thread
        thread.start()
    }

    public func close() {
        stop.set()
        while reader?.isFinished == false { usleep(10_000) }
        sockets = []
    }
}

/// Linux's `POLLRDHUP` (the peer closed its end), which Glibc's module map leaves out.
let pollReadHangUp: Int16 = 0x2000

/// A flag set once, read from another thread.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
