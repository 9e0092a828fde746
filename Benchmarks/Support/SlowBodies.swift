import Foundation
import LoopbackHTTP

#if canImport(Glibc)
import Glibc
#endif

/// Requests whose bodies never finish: `count` connections, each sending `head` (a request head
/// that promises a body, `Content-Length: 65536`) when it opens, then, once `start()` is called,
/// one byte of body every `interval` seconds from a thread of their own (a slice of them every
/// tenth of the interval, so each gets its byte in turn), until the server answers or closes
/// it, or `stop()`. Counts what the server did to them, and when.
///
/// `@unchecked Sendable`: the sockets are used only by the sending thread once it started (and
/// closed after it stopped); the counts it keeps are published under `lock`, and `sender` is
/// set before the thread starts and read after.
public final class SlowBodies: @unchecked Sendable {
    /// What the connections met so far.
    public struct Counts: Sendable {
        /// Connections opened with their head sent, and attempts that failed (opening stops
        /// after 5 such).
        public var opened = 0
        public var failedToOpen = 0
        /// Body bytes sent.
        public var bytesSent = 0
        /// Connections the server answered, by status (0: not an HTTP status line).
        public var answers: [Int: Int] = [:]
        /// Connections the server closed or reset without an answer.
        public var closed = 0
        /// Seconds after the first head was sent when the first and the last connection ended.
        public var firstEnded: Double?
        public var lastEnded: Double?

        public init() {}

        public var answered: Int { answers.values.reduce(0, +) }
        public var ended: Int { answered + closed }
        /// `408 x1990, 503 x10`.
        public var answerSummary: String {
            answers.isEmpty ? "none" : answers.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
        }
    }

    private var sockets: [LoopbackSocket]
    private let interval: Double
    private let began: Date
    private let stopping = ManagedFlag()
    private let lock = NSLock()
    private var current = Counts()
    private var sender: Thread?

    public init(port: Int, count: Int, head: String, interval: Double = 2) throws {
        self.interval = interval
        sockets = []
        sockets.reserveCapacity(count)
        began = Date()
        var counts = Counts()
        while sockets.count < count && counts.failedToOpen < 5 {
            do {
                let socket = try LoopbackSocket(port: port, timeout: 5)
                try socket.write(head)
                sockets.append(socket)
            } catch {
                counts.failedToOpen += 1
            }
        }
        counts.opened = sockets.count
        current = counts
    }

    /// The counts so far (final once `stop()` returned).
    public var counts: Counts { lock.withLock { current } }

    public func start() {
        let thread = Thread { [self] in run() }
        sender = thread
        thread.start()
    }

    /// Stops the thread and waits for it, then closes the connections.
    public func stop() {
        stopping.set()
        while sender?.isFinished == false { usleep(10_000) }
        sockets = []
    }

    private func run() {
        var counts = lock.withLock { current }
        // POLLRDHUP too: a close is seen even while the server has sent nothing.
        var descriptors = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN) | pollReadHangUp, revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let slices = 10
        var slice = 0
        var nextSend = Date()
        func ended(_ index: Int) {
            descriptors[index].fd = -1
            let seconds = Date().timeIntervalSince(began)
            counts.firstEnded = counts.firstEnded ?? seconds
            counts.lastEnded = seconds
        }
        while !stopping.isSet {
            let wait = Int32(max(0, min(nextSend.timeIntervalSinceNow, 0.1)) * 1000)
            if poll(&descriptors, nfds_t(descriptors.count), wait) > 0 {
                for index in descriptors.indices where descriptors[index].fd >= 0 && descriptors[index].revents != 0 {
                    let received = buffer.withUnsafeMutableBytes { recv(descriptors[index].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if received < 0 && errno == EAGAIN { continue }
                    if received > 0 {
                        // `HTTP/1.1 408 Request Timeout`: the status is bytes 9 to 11.
                        let status = received >= 12 && buffer.starts(with: Array("HTTP/".utf8))
                            ? Int(String(decoding: buffer[9..<12], as: UTF8.self)) ?? 0 : 0
                        counts.answers[status, default: 0] += 1
                    } else {
                        counts.closed += 1
                    }
                    ended(index)
                }
            }
            if Date() >= nextSend {
                // Every `slices`th connection, from `slice` on: each has its byte once an interval.
                for index in stride(from: slice, to: descriptors.count, by: slices) where descriptors[index].fd >= 0 {
                    do {
                        try sockets[index].write([UInt8(ascii: " ")])
                        counts.bytesSent += 1
                    } catch {
                        counts.closed += 1
                        ended(index)
                    }
                }
                slice = (slice + 1) % slices
                nextSend = nextSend.addingTimeInterval(interval / Double(slices))
            }
            let published = counts
            lock.withLock { current = published }
        }
    }
}
