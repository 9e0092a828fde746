import AsyncHTTPClient
import ChildProcess
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Redis
import RedisSupervisor
@_spi(Benchmarks) import RevokeClient
import RevokeCore
import RevokeSnapshot
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `make bench` (client part): the local check in ns/op, the memory of the cache, the snapshot
/// of 1,000,000 revocations (size and load time, through a real `revoked`), and propagation
/// from a `POST` to 50 caching clients.
@main
struct ClientBenchmark {
    static func main() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        let arguments = CommandLine.arguments
        let revocations = arguments.firstIndex(of: "--revocations").flatMap { Int(arguments[$0 + 1]) } ?? 1_000_000
        let propagationCount = arguments.firstIndex(of: "--propagations").flatMap { Int(arguments[$0 + 1]) } ?? 1000
        var rows: [(String, String)] = []

        // 1. The filter alone, at 1,000,000 and 10,000,000 keys, 1%.
        for count in [1_000_000, 10_000_000] {
            let filter = BloomFilter(capacity: count, falsePositiveRate: 0.01)
            for index in 0..<count { filter.insert(hash: XXH64.hash("revoked-\(index)-0123456789")) }
            let absent = (0..<100_000).map { "absent-\($0)-abcdefghijklm" }
            let present = (0..<100_000).map { "revoked-\($0 * (count / 100_000))-0123456789" }
            // A verifier hashes the jti it has just read from a token, so its bytes are in cache:
            // the jtis lie in one contiguous buffer, read in order. The String rows hash 100,000
            // heap Strings instead, whose storage the filter's own misses push out of the cache.
            let absentBytes = JTIBuffer(absent), presentBytes = JTIBuffer(present)
            let negative = medianNanoseconds(rounds: 15) { filter.mightContain(hash: absentBytes.hash($0)) }
            let positive = medianNanoseconds(rounds: 15) { filter.mightContain(hash: presentBytes.hash($0)) }
            // Read in place (an unsafe buffer's element is lent, an array's is copied): the rows
            // below compare the lookups, not the copies this loop would add to them.
            let negativeStrings = absent.withUnsafeBufferPointer { absent in
                medianNanoseconds(rounds: 15) { filter.mightContain(absent[$0 % absent.count]) }
            }
            var falsePositives = 0
            for jti in absent where filter.mightContain(jti) { falsePositives += 1 }
            let label = count >= 10_000_000 ? "10M" : "1M"
            rows.append(("filter lookup, absent jti, \(label) revoked (median ns/op)", String(format: "%.1f", negative)))
            rows.append(("filter lookup, revoked jti, \(label) revoked (median ns/op)", String(format: "%.1f", positive)))
            rows.append(("filter lookup, absent jti from 100k Strings, \(label) (median ns/op)", String(format: "%.1f", negativeStrings)))
            // The synchronous path a hot handler uses first, on a cache holding this filter, against
            // the bare lookup of the same heap Strings just above.
            let client = RevokeClient(configuration: .init(url: "http://127.0.0.1:9", cache: .init()))
            client.loadCache(Snapshot(createdAt: 0, cursor: "0-0", revocations: count, filter: filter, cutoffs: []))
            // Each query lent in place, as a verifier lends the one it built: read out of the
            // buffer, the element was copied for the call (a retain and a release of each of its
            // three references, atomic, which this row would have measured instead of the lookup).
            var queries = absent.map { CheckQuery(jti: $0) }
            let cached = queries.withUnsafeMutableBufferPointer { queries in
                medianNanoseconds(rounds: 15) { cachedVerdictInPlace(client, &queries[$0 % queries.count]) }
            }
            rows.append(("RevokeClient.cachedVerdict, absent jti, \(label) revoked (median ns/op)", String(format: "%.1f", cached)))
            rows.append(("cachedVerdict against the bare filter lookup, \(label)", String(format: "%.2fx (target <= 2x, and <= 50 ns)", cached / negativeStrings)))
            rows.append(("filter memory, \(label) revoked at 1%", String(format: "%.2f MB (%.2f MB per 1M)", Double(filter.byteCount) / 1e6, Double(filter.byteCount) / 1e6 / Double(count / 1_000_000))))
            rows.append(("measured false positives, \(label) revoked", String(format: "%.3f%% of 100,000 absent jtis", Double(falsePositives) / 1000)))
        }

        // 2. A real revoked with 1,000,000 revocations in Redis.
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-client-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let redis = try await RedisServerProcess.start(.init(directory: work, appendOnly: false))
        let port = try RedisServerProcess.freeLoopbackPort()
        var revoked: ChildProcess?
        do {
            let started = ContinuousClock.now
            let loader = try await RedisConnection.connect(to: redis.configuration(commandTimeout: .seconds(30)))
            for start in stride(from: 0, to: revocations, by: 10_000) {
                let commands = (start..<min(start + 10_000, revocations)).map { index in
                    RedisCommand("HSET", "revoke:jti:bench-\(index)", "revoked_at", "1700000000")
                }
                _ = try await loader.send(batch: commands, timeout: .seconds(30))
            }
            loader.close()
            print("loaded \(revocations) revocations into Redis in \(ContinuousClock.now - started)")
            // Started once the records are in Redis: written straight there, they make no events,
            // so revoked learns of them from its load at start, as after a restore.
            let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
            revoked = try ChildProcess.spawn(
                binaries + "/revoked",
                environment: [
                    "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "REVOKE_PORT": "\(port)",
                    "REVOKE_LOG_LEVEL": "error", "REVOKE_ADMIN_KEYS": "bench:k-0123456789abcdef",
                    "REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0",
                ],
                standardOutput: work + "/revoked.log", standardError: work + "/revoked.log")
            try await waitForReady(port: port)

            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let fetchStarted = ContinuousClock.now
            let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/snapshot"), timeout: .seconds(120))
            let body = try await response.body.collect(upTo: 1 << 30)
            let fetched = ContinuousClock.now - fetchStarted
            let decodeStarted = ContinuousClock.now
            let snapshot = try Snapshot(decoding: Array(body.readableBytesView))
            let decoded = ContinuousClock.now - decodeStarted
            try await http.shutdown()
            rows.append(("snapshot of \(snapshot.revocations) revocations: size", String(format: "%.2f MB", Double(body.readableBytes) / 1e6)))
            rows.append(("snapshot: loaded by revoked at start, fetched (first request)", "\(fetched.formatted(.units(allowed: [.milliseconds])))"))
            rows.append(("snapshot: decoded and loaded", String(format: "%.2f ms", nanoseconds(decoded) / 1e6)))

            // The client's own check path on that snapshot.
            let client = RevokeClient(configuration: .init(url: "http://127.0.0.1:\(port)", cache: .init()))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                let loadStarted = ContinuousClock.now
                while !client.isCacheFresh { try await Task.sleep(for: .milliseconds(5)) }
                rows.append(("RevokeClient start to fresh cache (snapshot cached by revoked)", "\((ContinuousClock.now - loadStarted).formatted(.units(allowed: [.milliseconds])))"))
                // Negative checks: jtis the filter says are absent (the 1% it calls "maybe" go to
                // the server by design, and are counted by the false-positive row above).
                let queries = (0..<101_500).map { "absent-\($0)-abcdefghijklm" }.filter { !snapshot.filter.mightContain($0) }
                    .prefix(100_000).map { CheckQuery(jti: $0) }
                // Off the main actor: from it, every call to the nonisolated async `check` would
                // hop to the global executor and back, and that hop is what would be measured.
                let samples = await Task.detached {
                    var samples: [Double] = []
                    for _ in 0..<15 {
                        let start = ContinuousClock.now
                        for query in queries { _ = await client.check(query) }
                        samples.append(nanoseconds(ContinuousClock.now - start) / Double(queries.count))
                    }
                    return samples
                }.value
                rows.append(("RevokeClient.check, absent jti, 1M revoked (median ns/op)", String(format: "%.1f", samples.sorted()[samples.count / 2])))
                group.cancelAll()
            }

            // 3. Propagation: POST /v1/revocations answered 200, until 50 caching clients refuse.
            let (p50, p99) = try await propagation(port: port, clients: 50, revocations: propagationCount)
            rows.append(("propagation to 50 caching clients, p50 over \(propagationCount)", String(format: "%.2f ms", p50)))
            rows.append(("propagation to 50 caching clients, p99 over \(propagationCount)", String(format: "%.2f ms", p99)))
        } catch {
            await revoked?.terminate()
            await redis.stop()
            throw error
        }
        await revoked?.terminate()
        await redis.stop()

        print("")
        for (name, value) in rows {
            print(name.padding(toLength: 66, withPad: " ", startingAt: 0) + value)
        }
        print("targets: negative check <= 100 ns at 1M and 10M; <= 1.5 MB per 1M at 1%; propagation p99 <= 50 ms")
    }

    static func waitForReady(port: Int) async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        for _ in 0..<400 {
            if let response = try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(1)),
                response.status == .ok
            {
                try await http.shutdown()
                return
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        try await http.shutdown()
        throw BenchmarkError("revoked did not become ready")
    }

    static func propagation(port: Int, clients count: Int, revocations: Int) async throws -> (Double, Double) {
        // When each client applied each event (by cursor); revocations are made one at a time,
        // so a client's (index + 1)-th event is revocation `index`.
        final class Arrivals: Sendable {
            let times = Mutex<[String: ContinuousClock.Instant]>([:])
        }
        let seen = (0..<count).map { _ in Arrivals() }
        let observed = (0..<count).map { index in
            RevokeClient(
                configuration: .init(
                    url: "http://127.0.0.1:\(port)",
                    cache: .init(staleness: .seconds(30), onEvent: { _, cursor in seen[index].times.withLock { $0[cursor] = .now } })))
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        var latencies: [Double] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in observed { group.addTask { try await client.run() } }
            while !observed.allSatisfy(\.isCacheFresh) { try await Task.sleep(for: .milliseconds(10)) }
            for index in 0..<revocations {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/revocations")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer k-0123456789abcdef")
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"jti":"propagate-\#(index)","expires_at":null}"#))
                let response = try await http.execute(request, timeout: .seconds(5))
                let answered = ContinuousClock.now
                let body = try await response.body.collect(upTo: 1 << 16)
                guard response.status == .created else { throw BenchmarkError("POST answered \(response.status)") }
                _ = body
                // The newest event each client has seen after this POST is this revocation's.
                var slowest = answered
                for (client, record) in zip(observed, seen) {
                    while true {
                        let arrived = record.times.withLock { events in events.isEmpty ? nil : events }
                        if let arrived, arrived.count > index, await client.check(CheckQuery(jti: "propagate-\(index)")).revoked {
                            let last = arrived.values.max()!
                            slowest = max(slowest, last)
                            break
                        }
                        try await Task.sleep(for: .microseconds(200))
                    }
                }
                latencies.append(max(0, nanoseconds(slowest - answered) / 1e6))
            }
            group.cancelAll()
        }
        try await http.shutdown()
        latencies.sort()
        return (latencies[latencies.count / 2], latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))])
    }

    /// `inout`, so that the query is known not to change during the call and is lent, not copied.
    @inline(__always)
    static func cachedVerdictInPlace(_ client: RevokeClient, _ query: inout CheckQuery) -> Bool {
        client.cachedVerdict(query)?.revoked == false
    }

    /// The median over `rounds` of the time per call of `body` over 100,000 calls, after two
    /// rounds that are not timed (the first touches of the data, what a fresh client does at
    /// its start).
    static func medianNanoseconds(rounds: Int, _ body: (Int) -> Bool) -> Double {
        var samples: [Double] = []
        var sink = 0
        for _ in 0..<2 {
            for index in 0..<100_000 where body(index) { sink &+= 1 }
        }
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for index in 0..<100_000 where body(index) { sink &+= 1 }
            samples.append(nanoseconds(ContinuousClock.now - start) / 100_000)
        }
        if sink == -1 { print(sink) }
        return samples.sorted()[samples.count / 2]
    }

    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}

/// Fixed-width jtis in one buffer, hashed in place (100,000 of them, as `medianNanoseconds` reads).
final class JTIBuffer {
    static let width = 64
    let bytes: UnsafeMutableRawBufferPointer
    let lengths: [Int]

    init(_ jtis: [String]) {
        bytes = .allocate(byteCount: jtis.count * Self.width, alignment: 64)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        for (index, jti) in jtis.enumerated() {
            precondition(jti.utf8.count <= Self.width)
            for (offset, byte) in jti.utf8.enumerated() { bytes[index * Self.width + offset] = byte }
        }
        lengths = jtis.map(\.utf8.count)
    }

    deinit { bytes.deallocate() }

    @inline(__always)
    func hash(_ index: Int) -> UInt64 {
        let start = index * Self.width
        return XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + lengths[index])]))
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
