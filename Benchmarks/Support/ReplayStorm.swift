import Foundation
import LoopbackHTTP

#if canImport(Glibc)
import Glibc
#endif

/// Clients that replay the event log over and over: `streams` connections from this one address,
/// each sending `GET <path>` (a replay, `/v1/events?since=0-0`) and reading what arrives, on a
/// thread of their own started by `start()`. A stream has replayed once its first `: heartbeat`
/// line arrives (the server sends the first one when the stream has caught up, right after the
/// replay); it is then closed and opened again at once. One the server refuses (any status but
/// 200), or closes before that, is opened again after `retryDelay` seconds. Bounded: it runs
/// until `stop()`.
///
/// `@unchecked Sendable`: the sockets are the reading thread's own (locals of its loop, closed
/// when it ends); the counts it keeps are published under `lock`, and `reader` is set before
/// the thread starts and read after.
public final class ReplayStorm: @unchecked Sendable {
    /// What the streams met so far.
    public struct Counts: Sendable, CustomStringConvertible {
        /// Requests sent (connections opened).
        public var requests = 0
        /// Streams read until they had replayed, and their bytes up to then (head included).
        public var replays = 0
        public var replayedBytes = 0
        /// Answers 429 (`too_many_requests`).
        public var tooManyRequests = 0
        /// Other answers than 200 and 429, by status.
        public var otherStatuses: [Int: Int] = [:]
        /// Connections closed (or not opened) before any answer.
        public var unanswered = 0
        /// Streams answered 200 that the server ended before they had replayed.
        public var cutOff = 0
        /// Streams answered 200 and being read now, and the most at once.
        public var held = 0
        public var mostHeld = 0
        /// Everything read.
        public var bytesRead = 0

        public init() {}

        public var otherRefusals: Int { otherStatuses.values.reduce(0, +) }

        public var description: String {
            "\(requests) requests, \(replays) replays (\(replayedBytes) bytes), \(tooManyRequests) 429, other statuses \(otherStatuses), "
                + "\(unanswered) unanswered, \(cutOff) cut off, \(held) held (at most \(mostHeld)), \(bytesRead) bytes read"
        }
    }

    private let port: Int
    private let streams: Int
    private let request: String
    private let retryDelay: Double
    private let stopping = ManagedFlag()
    private let lock = NSLock()
    private var current = Counts()
    private var reader: Thread?

    public init(port: Int, streams: Int, path: String, retryDelay: Double = 0.1) {
        self.port = port
        self.streams = streams
        self.request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        self.retryDelay = retryDelay
    }

    /// The counts so far (final once `stop()` returned).
    public var counts: Counts { lock.withLock { current } }

    public func start() {
        let thread = Thread { [self] in run() }
        reader = thread
        thread.start()
    }

    /// Stops the thread and waits for it; its connections are closed.
    public func stop() {
        stopping.set()
        while reader?.isFinished == false { usleep(10_000) }
    }

    /// One client's connection: its socket (nil while waiting to open again), the answer's
    /// first bytes until its status is known, the status, the last bytes read (for a heartbeat
    /// split between two reads), its bytes, and when to open it again.
    private struct Slot {
        var socket: LoopbackSocket?
        var head: [UInt8] = []
        var status = 0
        var tail: [UInt8] = []
        var bytes = 0
        var openAt = Date.distantPast
    }

    private func run() {
        var counts = Counts()
        var slots = [Slot](repeating: Slot(), count: streams)
        var buffer = [UInt8](repeating: 0, count: 65536)
        /// Closes a slot's connection (a reset, not a FIN: thousands of closes leave no
        /// TIME_WAIT behind) and says when to open it again.
        func close(_ index: Int, reopenAfter delay: Double) {
            if let socket = slots[index].socket {
                var abort = linger(l_onoff: 1, l_linger: 0)
                setsockopt(socket.descriptor, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            }
            if slots[index].status == 200 { counts.held -= 1 }
            slots[index] = Slot(openAt: Date().addingTimeInterval(delay))
        }
        while !stopping.isSet {
            let now = Date()
            for index in slots.indices where slots[index].socket == nil && slots[index].openAt <= now {
                counts.requests += 1
                do {
                    let socket = try LoopbackSocket(port: port, timeout: 2)
                    try socket.write(request)
                    slots[index].socket = socket
                } catch {
                    counts.unanswered += 1
                    slots[index].openAt = now.addingTimeInterval(retryDelay)
                }
            }
            var descriptors = slots.map { pollfd(fd: $0.socket?.descriptor ?? -1, events: Int16(POLLIN), revents: 0) }
            if poll(&descriptors, nfds_t(descriptors.count), 20) > 0 {
                for index in descriptors.indices where descriptors[index].fd >= 0 && descriptors[index].revents != 0 {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptors[index].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if count < 0 && errno == EAGAIN { continue }
                    guard count > 0 else {
                        // Closed or reset by the server.
                        switch slots[index].status {
                        case 0: counts.unanswered += 1
                        case 200: counts.cutOff += 1
                        default: break
                        }
                        close(index, reopenAfter: retryDelay)
                        continue
                    }
                    counts.bytesRead += count
                    slots[index].bytes += count
                    if slots[index].status == 0 {
                        // `HTTP/1.1 200 OK`: the status is bytes 9 to 11.
                        slots[index].head += buffer[0..<min(count, 12 - slots[index].head.count)]
                        guard slots[index].head.count == 12 else { continue }
                        let status = Int(String(decoding: slots[index].head[9..<12], as: UTF8.self)) ?? -1
                        slots[index].status = status
                        if status == 200 {
                            counts.held += 1
                            counts.mostHeld = max(counts.mostHeld, counts.held)
                        } else {
                            if status == 429 { counts.tooManyRequests += 1 } else { counts.otherStatuses[status, default: 0] += 1 }
                            close(index, reopenAfter: retryDelay)
                            continue
                        }
                    }
                    var tail = slots[index].tail
                    let caughtUp = buffer.withUnsafeBytes {
                        Self.holdsHeartbeat(UnsafeRawBufferPointer(rebasing: $0[0..<count]), tail: &tail)
                    }
                    slots[index].tail = tail
                    if caughtUp {
                        counts.replays += 1
                        counts.replayedBytes += slots[index].bytes
                        close(index, reopenAfter: 0)
                    }
                }
            }
            let published = counts
            lock.withLock { current = published }
        }
        for index in slots.indices { close(index, reopenAfter: 0) }
        let published = counts
        lock.withLock { current = published }
    }

    /// The line the server sends once a stream has caught up, with the newline before it.
    static let heartbeat = Array("\n: heartbeat".utf8)

    /// Whether `bytes` hold the heartbeat line, or it began in `tail` (the last bytes read
    /// before them, fewer than the line's) and ends in them; `tail` becomes the new last bytes.
    static func holdsHeartbeat(_ bytes: UnsafeRawBufferPointer, tail: inout [UInt8]) -> Bool {
        let marker = heartbeat
        func matches(_ candidate: some Collection<UInt8>, at start: Int) -> Bool {
            candidate.dropFirst(start).starts(with: marker)
        }
        // Across the previous read and this one.
        let seam = tail + bytes.prefix(marker.count - 1)
        if seam.count >= marker.count, (0...(seam.count - marker.count)).contains(where: { matches(seam, at: $0) }) { return true }
        // Within this read: at each newline.
        if let base = bytes.baseAddress {
            var offset = 0
            while offset < bytes.count, let hit = memchr(base + offset, 0x0A, bytes.count - offset) {
                let index = base.distance(to: UnsafeRawPointer(hit))
                if index + marker.count <= bytes.count && bytes[index + 1] == marker[1] && matches(bytes, at: index) { return true }
                offset = index + 1
            }
        }
        tail = bytes.count >= marker.count - 1 ? Array(bytes.suffix(marker.count - 1)) : Array((tail + bytes).suffix(marker.count - 1))
        return false
    }
}
