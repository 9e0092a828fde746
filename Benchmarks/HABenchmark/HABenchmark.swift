import BenchmarkSupport
import ChildProcess
import Foundation
import LoopbackHTTP
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeSnapshot
import RevokeStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `make bench` (HA part), every target started here, on loopback, in one run:
/// - failover through Sentinel (a primary, two replicas, three sentinels, `down-after` 1 s):
///   time from `kill -9` of the primary to the first answered check and the first
///   acknowledged write sent after it, over several runs, and whether any acknowledged
///   revocation was lost;
/// - `POST /v1/revocations` throughput with `REVOKE_REDIS_MIN_REPLICAS` 0 and 1 on the same
///   deployment;
/// - `POST /v1/check` over TLS to Redis against clear text, same server;
/// - the capacity figures of docs/scaling.md: writes per second through the store's scripts,
///   Redis bytes per revocation (log and audit included) as logouts make them and with a reason,
///   a snapshot of a million revocations;
/// - `GET /v1/snapshot` with ten million live revocations, against the full load from Redis
///   (the scan every build cost before the snapshot was kept in step with the log).
@main
struct HABenchmark {
    static func main() async throws {
        func option(_ name: String, _ fallback: Int) -> Int { Int(commandLineOption(name, "")) ?? fallback }
        let runs = option("--failover-runs", 3)
        let seconds = option("--seconds", 10)
        let revocations = option("--revocations", 1_000_000)
        let snapshotRevocations = option("--snapshot-revocations", 10_000_000)
        let scripts = FileManager.default.currentDirectoryPath + "/Benchmarks/wrk"
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-ha-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }

        print("Failover: a primary, two replicas, three sentinels (down-after 1 s); revoked with REVOKE_REDIS_MIN_REPLICAS=1;")
        print("one writer and one checker, each a request every 5 ms; kill -9 of the primary")
        var failovers: [Failover] = []
        for run in 1...max(runs, 1) {
            let failover = try await measureFailover(work: work + "/failover-\(run)")
            failovers.append(failover)
            print(String(
                format: "  run %d: promotion seen %.2f s, first check answered %.2f s, first write acknowledged %.2f s; %d acknowledged, %d lost",
                run, failover.promoted, failover.checked, failover.written, failover.acknowledged, failover.lost))
        }

        print("")
        print("Writes: wrk -t1 -c16 -d\(seconds)s POST /v1/revocations, the same deployment, REVOKE_REDIS_MIN_REPLICAS 0 then 1")
        let writes = try await measureWrites(work: work + "/writes", scripts: scripts, seconds: seconds)
        print("")
        print("Checks: wrk -t2 -c50 -d\(seconds)s POST /v1/check, revoked to one redis-server in clear text, then over TLS")
        let checks = try await measureTLS(work: work + "/tls", scripts: scripts, seconds: seconds)
        print("")
        print("Capacity: \(revocations) revocations through the store's script as logouts make them, then \(revocations / 25) with a reason")
        print("and an audit entry (64 callers), one redis-server")
        let capacity = try await withPrivateRedis(work: work + "/capacity", commandTimeout: .seconds(10)) { redis, client in
            try await measureCapacity(work: work + "/capacity", revocations: revocations, redis: redis, client: client)
        }
        print("")
        print("Snapshots at scale: \(snapshotRevocations) live revocations written straight into one redis-server (the store's layout),")
        print("then revoked started on it: its first snapshot (one full load), then GET /v1/snapshot after each of 5 new revocations")
        let scale = try await withPrivateRedis(work: work + "/snapshot", commandTimeout: .seconds(60)) { redis, client in
            try await measureSnapshotAtScale(work: work + "/snapshot", revocations: snapshotRevocations, redis: redis, client: client)
        }

        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("")
        print("measurement                                        value      reference                       value    ratio")
        func row(_ name: String, _ value: String, _ reference: String = "", _ against: String = "", _ ratio: String = "") {
            print(
                name.padding(toLength: 44, withPad: " ", startingAt: 0) + value.leftPadded(12) + "      "
                    + reference.padding(toLength: 26, withPad: " ", startingAt: 0) + against.leftPadded(12) + ratio.leftPadded(9))
        }
        row("failover: first check answered (median)", String(format: "%.2f s", median(failovers.map(\.checked))), "promotion seen (median)",
            String(format: "%.2f s", median(failovers.map(\.promoted))))
        row("failover: first write acknowledged (median)", String(format: "%.2f s", median(failovers.map(\.written))), "promotion seen (median)",
            String(format: "%.2f s", median(failovers.map(\.promoted))))
        row("failover: acknowledged revocations lost", "\(failovers.map(\.lost).reduce(0, +))", "acknowledged", "\(failovers.map(\.acknowledged).reduce(0, +))")
        row("writes/s, MIN_REPLICAS=1", String(format: "%.0f", writes.replicated.rps), "MIN_REPLICAS=0", String(format: "%.0f", writes.plain.rps),
            String(format: "%.2fx", writes.replicated.rps / writes.plain.rps))
        row("write p99, MIN_REPLICAS=1", String(format: "%.2f ms", writes.replicated.p99), "MIN_REPLICAS=0", String(format: "%.2f ms", writes.plain.p99),
            String(format: "%.2fx", writes.replicated.p99 / writes.plain.p99))
        row("checks/s over TLS", String(format: "%.0f", checks.tls.rps), "clear text", String(format: "%.0f", checks.plain.rps),
            String(format: "%.2fx", checks.tls.rps / checks.plain.rps))
        row("check p99 over TLS", String(format: "%.2f ms", checks.tls.p99), "clear text", String(format: "%.2f ms", checks.plain.p99),
            String(format: "%.2fx", checks.tls.p99 / checks.plain.p99))
        row("store writes/s, one primary (64 callers)", String(format: "%.0f", capacity.writesPerSecond))
        row("bytes/revocation at \(capacity.revocations / 1000)k (target <= 200)", String(format: "%.0f", capacity.bytesPerRevocation),
            "at \(capacity.checkpoint / 1000)k", String(format: "%.0f", capacity.bytesPerRevocationAtCheckpoint))
        row("bytes/revocation with a reason (added)", String(format: "%.0f", capacity.bytesPerReasonedRevocation),
            "both kinds together", String(format: "%.0f", capacity.bytesPerRevocationInAll))
        row("snapshot of \((capacity.revocations + capacity.revocations / 25) / 1000)k: first GET", String(format: "%.0f ms", capacity.snapshotMilliseconds),
            "bytes", "\(capacity.snapshotBytes)")
        let scaleName = scale.revocations >= 1_000_000 ? "\(scale.revocations / 1_000_000)M" : "\(scale.revocations / 1000)k"
        row("snapshot \(scaleName): GET median (<= 200 ms)", String(format: "%.0f ms", scale.servedMedian),
            "full load at start", String(format: "%.0f ms", scale.loadMilliseconds), String(format: "%.3fx", scale.servedMedian / scale.loadMilliseconds))
        row("snapshot \(scaleName): GET, slowest of 5", String(format: "%.0f ms", scale.servedMaximum), "bytes", "\(scale.bytes)")
        row("snapshot \(scaleName): revoked RSS after load", String(format: "%.0f MB", Double(scale.residentBytes) / 1e6),
            "Redis used_memory", String(format: "%.0f MB", Double(scale.redisBytes) / 1e6), String(format: "%.3fx", Double(scale.residentBytes) / Double(scale.redisBytes)))
        if failovers.contains(where: { $0.lost > 0 }) { throw BenchmarkError("an acknowledged revocation was lost in a failover") }
    }

    // MARK: - Failover

    struct Failover {
        var promoted, checked, written: Double
        var acknowledged, lost: Int
    }

    /// Requests sent every 5 ms from a thread of their own, each answer noted with the instant
    /// it was sent.
    final class Loop: Sendable {
        private let answers = Mutex<[(sent: ContinuousClock.Instant, ok: Bool, jti: String)]>([])
        private let stopped = Mutex(false)

        init(port: Int, method: String, path: String, headers: [String: String], body: @escaping @Sendable (Int) -> (String, String), ok: String) {
            let thread = Thread { [self] in
                var index = 0
                // Bounded: at most 12,000 requests (a minute at this pace), and only until stopped.
                while index < 12_000 && !stopped.withLock({ $0 }) {
                    let (jti, json) = body(index)
                    let sent = ContinuousClock.now
                    let answer = try? LoopbackSocket.exchange(port: port, method: method, path: path, headers: headers, body: json)
                    let succeeded = answer?.hasPrefix(ok) ?? false
                    answers.withLock { $0.append((sent, succeeded, jti)) }
                    index += 1
                    usleep(5000)
                }
            }
            thread.start()
        }

        func stop() { stopped.withLock { $0 = true } }

        /// Seconds from `instant` to the first request sent after it that succeeded.
        func firstSuccess(after instant: ContinuousClock.Instant) -> Double? {
            answers.withLock { answers in
                answers.first { $0.sent > instant && $0.ok }.map { ($0.sent - instant).seconds }
            }
        }

        var succeeded: [String] { answers.withLock { $0.filter(\.ok).map(\.jti) } }
    }

    static func measureFailover(work: String) async throws -> Failover {
        let deployment = try await SentinelDeployment.start(replicas: 2)
        return try await stopping({ await deployment.stop() }) {
            let port = try RedisServerProcess.freeLoopbackPort()
            let revoked = try await startRevoked(
                port: port,
                environment: [
                    "REVOKE_REDIS_URL": deployment.url, "REVOKE_REDIS_SENTINEL_PASSWORD": deployment.password, "REVOKE_REDIS_MIN_REPLICAS": "1",
                    "REVOKE_ADMIN_KEYS": "bench:k-0123456789abcdef",
                ],
                log: work + "-revoked.log")
            return try await stopping({ await revoked.kill() }) {
                let json = ["Content-Type": "application/json"]
                let writer = Loop(
                    port: port, method: "POST", path: "/v1/revocations", headers: json.merging(["Authorization": "Bearer k-0123456789abcdef"]) { $1 },
                    body: { index in ("failover-\(index)", #"{"jti":"failover-\#(index)","expires_at":null}"#) }, ok: "HTTP/1.1 201")
                let checker = Loop(
                    port: port, method: "POST", path: "/v1/check", headers: json, body: { _ in ("", #"{"jti":"failover-0"}"#) }, ok: "HTTP/1.1 200")
                try await Task.sleep(for: .seconds(1))
                let old = try await deployment.primaryPort()
                let killedAt = ContinuousClock.now
                await deployment.node(port: old)?.kill()
                var promotedAt: ContinuousClock.Instant?
                let deadline = killedAt + .seconds(60)
                while ContinuousClock.now < deadline {
                    if promotedAt == nil, let now = try? await deployment.primaryPort(), now != old { promotedAt = .now }
                    if promotedAt != nil, writer.firstSuccess(after: killedAt) != nil, checker.firstSuccess(after: killedAt) != nil { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                writer.stop()
                checker.stop()
                try await Task.sleep(for: .milliseconds(100))
                guard let promotedAt, let written = writer.firstSuccess(after: killedAt), let checked = checker.firstSuccess(after: killedAt) else {
                    throw BenchmarkError("no promotion, check or write within 60 s of the kill")
                }
                // Every acknowledged revocation, asked afterwards.
                let acknowledged = writer.succeeded
                var lost = 0
                for start in stride(from: 0, to: acknowledged.count, by: 1000) {
                    let chunk = acknowledged[start..<min(start + 1000, acknowledged.count)]
                    let body = #"{"checks":["# + chunk.map { #"{"jti":"\#($0)"}"# }.joined(separator: ",") + "]}"
                    let answer = try LoopbackSocket.exchange(port: port, method: "POST", path: "/v1/check/batch", headers: json, body: body)
                    lost += chunk.count - (answer.components(separatedBy: #""revoked":true"#).count - 1)
                }
                return Failover(promoted: (promotedAt - killedAt).seconds, checked: checked, written: written, acknowledged: acknowledged.count, lost: lost)
            }
        }
    }

    // MARK: - Writes with and without replicas

    static func measureWrites(work: String, scripts: String, seconds: Int) async throws -> (plain: Wrk.Result, replicated: Wrk.Result) {
        let deployment = try await SentinelDeployment.start(replicas: 2)
        return try await stopping({ await deployment.stop() }) {
            var results: [Wrk.Result] = []
            for replicas in [0, 1] {
                let port = try RedisServerProcess.freeLoopbackPort()
                let revoked = try await startRevoked(
                    port: port,
                    environment: [
                        "REVOKE_REDIS_URL": deployment.url, "REVOKE_REDIS_SENTINEL_PASSWORD": deployment.password,
                        "REVOKE_REDIS_MIN_REPLICAS": "\(replicas)", "REVOKE_ADMIN_KEYS": "bench:k-0123456789abcdef",
                    ],
                    log: work + "-\(replicas)-revoked.log")
                let result = try await stopping({ await revoked.terminate() }) {
                    let run = try Wrk.start(
                        script: scripts + "/revoke.lua", port: port, threads: 1, connections: 16, seconds: seconds,
                        output: work + "-\(replicas)-wrk.txt", environment: ["REVOKE_ADMIN_KEY": "k-0123456789abcdef"])
                    return try await run.finish("MIN_REPLICAS=\(replicas)")
                }
                print(String(format: "  MIN_REPLICAS=%d: %.0f writes/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx", replicas, result.rps, result.p50, result.p99, result.non2xx))
                results.append(result)
            }
            return (results[0], results[1])
        }
    }

    // MARK: - TLS

    static func measureTLS(work: String, scripts: String, seconds: Int) async throws -> (plain: Wrk.Result, tls: Wrk.Result) {
        let certificates = try await TestCertificates.make(in: work)
        let tlsPort = try RedisServerProcess.freeLoopbackPort()
        let redis = try await RedisServerProcess.start(
            .init(directory: work + "/redis", appendOnly: false, extraConfiguration: certificates.serverDirectives(port: tlsPort)))
        return try await stopping({ await redis.stop() }) {
            let password = redis.options.password!
            var results: [Wrk.Result] = []
            for (name, url, extra) in [
                ("clear text", "redis://:\(password)@127.0.0.1:\(redis.port)/0", [String: String]()),
                ("TLS", "rediss://:\(password)@127.0.0.1:\(tlsPort)/0", ["REVOKE_REDIS_CA_FILE": certificates.caFile]),
            ] {
                let port = try RedisServerProcess.freeLoopbackPort()
                let revoked = try await startRevoked(
                    port: port, environment: extra.merging(["REVOKE_REDIS_URL": url]) { $1 }, log: work + "/revoked-\(name).log")
                let result = try await stopping({ await revoked.terminate() }) {
                    let run = try Wrk.start(script: scripts + "/check.lua", port: port, connections: 50, seconds: seconds, output: work + "/wrk-\(name).txt")
                    return try await run.finish(name)
                }
                print(String(format: "  %@: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx", name, result.rps, result.p50, result.p99, result.non2xx))
                results.append(result)
            }
            return (results[0], results[1])
        }
    }

    // MARK: - Capacity

    struct Capacity {
        var revocations: Int
        var writesPerSecond: Double
        var checkpoint: Int
        var bytesPerRevocationAtCheckpoint: Double
        /// Revocations as logout flows make them (no reason, no audit).
        var bytesPerRevocation: Double
        /// Each of the 25th as many added after them with a reason and an audit entry.
        var bytesPerReasonedRevocation: Double
        /// Both kinds together.
        var bytesPerRevocationInAll: Double
        var snapshotMilliseconds: Double
        var snapshotBytes: Int
    }

    static func measureCapacity(work: String, revocations: Int, redis: RedisServerProcess, client: RedisClient) async throws -> Capacity {
        func usedMemory() async throws -> Int { try await HABenchmark.usedMemory(client) }
        let store = RevocationStore(redis: client)
        let before = try await usedMemory()
        let expiresAt = Int64(Date().timeIntervalSince1970) + 3600
        let checkpoint = min(100_000, revocations)
        var atCheckpoint = 0
        let started = ContinuousClock.now
        var writesPerSecond = 0.0
        /// 64 callers, each its share of `count` UUID `jti`s.
        func revoke(_ count: Int, reason: String?, actor: String?) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<64 {
                    group.addTask {
                        for _ in stride(from: caller, to: count, by: 64) {
                            _ = try await store.revoke(jti: UUID().uuidString.lowercased(), expiresAt: expiresAt, reason: reason, actor: actor)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // As logout flows revoke (no reason, no audit): the packed record.
        for (from, to) in [(0, checkpoint), (checkpoint, revocations)] where to > from {
            let phaseStart = ContinuousClock.now
            try await revoke(to - from, reason: nil, actor: nil)
            if from == 0 {
                atCheckpoint = try await usedMemory()
                writesPerSecond = Double(to - from) / (ContinuousClock.now - phaseStart).seconds
                print(String(format: "  %d revocations in %.1f s: %.0f writes/s", to, (ContinuousClock.now - phaseStart).seconds, writesPerSecond))
            }
        }
        let after = try await usedMemory()
        print(String(format: "  %d revocations in %.1f s in all; used_memory %d -> %d (%d at %d)", revocations, (ContinuousClock.now - started).seconds, before, after, atCheckpoint, checkpoint))
        // Then as an incident responder revokes (a reason, audited): the record is a hash. Few
        // enough that Redis' key tables do not double on the way (at 2^20 keys after a million),
        // which would charge them the doubling of both tables (16 to 32 MB, docs/scaling.md).
        let reasoned = revocations / 25
        try await revoke(reasoned, reason: "capacity run", actor: "bench")
        let withReasons = try await usedMemory()
        print(String(format: "  then %d with a reason, audited: used_memory %d", reasoned, withReasons))

        // The snapshot of all of them, through revoked: the first GET waits for its load at start.
        let port = try RedisServerProcess.freeLoopbackPort()
        let revoked = try await startRevoked(
            port: port, environment: ["REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0"], log: work + "/revoked.log")
        let (snapshotMilliseconds, snapshot) = try await stopping({ await revoked.terminate() }) { try await getSnapshot(port: port) }
        guard snapshot.starts(with: Array("HTTP/1.1 200".utf8)) else { throw BenchmarkError("GET /v1/snapshot did not answer 200") }
        print(String(format: "  GET /v1/snapshot: %.0f ms, %d bytes", snapshotMilliseconds, snapshot.count))
        return Capacity(
            revocations: revocations, writesPerSecond: writesPerSecond, checkpoint: checkpoint,
            bytesPerRevocationAtCheckpoint: Double(atCheckpoint - before) / Double(checkpoint),
            bytesPerRevocation: Double(after - before) / Double(revocations),
            bytesPerReasonedRevocation: Double(withReasons - after) / Double(reasoned),
            bytesPerRevocationInAll: Double(withReasons - before) / Double(revocations + reasoned), snapshotMilliseconds: snapshotMilliseconds,
            snapshotBytes: snapshot.count)
    }
}

extension HABenchmark {
    struct SnapshotAtScale {
        var revocations: Int
        var loadMilliseconds: Double
        var servedMedian: Double
        var servedMaximum: Double
        var bytes: Int
        var residentBytes: Int
        var redisBytes: Int
    }

    /// `revocations` live revocations written straight into Redis in the store's layout (a packed
    /// record per `jti`, the `jti` itself only in the key, and a TTL spread over a day:
    /// what `POST /v1/revocations` leaves, without the log and audit, which a snapshot never
    /// reads), then `revoked` started on it.
    /// Its first snapshot waits for the one full load; each later `GET /v1/snapshot` follows a
    /// new revocation (`REVOKE_SNAPSHOT_MAX_AGE=0`), so each is encoded anew, and is checked:
    /// every new `jti` and a sample of the written ones are in its filter.
    static func measureSnapshotAtScale(
        work: String, revocations: Int, redis: RedisServerProcess, client: RedisClient
    ) async throws -> SnapshotAtScale {
        let now = Int64(Date().timeIntervalSince1970)
        func jti(_ index: Int) -> String { "scale-\(index)-0123456789abcdef0123456789" }
        let seedStart = ContinuousClock.now
        let batch = 5000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for first in stride(from: worker * batch, to: revocations, by: 4 * batch) {
                        var commands: [RedisCommand] = []
                        commands.reserveCapacity(batch)
                        for index in first..<min(first + batch, revocations) {
                            let key = Array("revoke:jti:\(jti(index))".utf8)
                            let ttl = 600 + index % 86_400
                            // The packed record: revoked_at, then eight digits of the lifetime.
                            let packed = String(now) + String(format: "%08d", ttl)
                            commands.append(RedisCommand(arguments: [Array("SET".utf8), key, Array(packed.utf8), Array("EX".utf8), Array(String(ttl).utf8)]))
                        }
                        for reply in try await client.send(batch: commands) {
                            if case .error(let message) = reply { throw BenchmarkError("seeding: \(message)") }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let redisBytes = try await usedMemory(client)
        print(String(format: "  %d revocations written in %.1f s; Redis used_memory %.0f MB", revocations, (ContinuousClock.now - seedStart).seconds, Double(redisBytes) / 1e6))

        let port = try RedisServerProcess.freeLoopbackPort()
        let started = ContinuousClock.now
        let revoked = try await startRevoked(
            port: port,
            environment: [
                "REVOKE_REDIS_URL": "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0", "REVOKE_ADMIN_KEYS": "bench:bench-admin-key-1234",
                "REVOKE_SNAPSHOT_MAX_AGE": "0",
            ], log: work + "/revoked.log")
        let measured = try await stopping({ await revoked.terminate() }) {
            () async throws -> (loadMilliseconds: Double, residentBytes: Int, served: [Double], bytes: Int) in
            /// GET /v1/snapshot: its time and decoded body, or nil for a 503 (still loading).
            func fetch() async throws -> (milliseconds: Double, snapshot: Snapshot, bytes: Int)? {
                let (milliseconds, answer) = try await getSnapshot(port: port, timeout: 300)
                if answer.starts(with: Array("HTTP/1.1 503".utf8)) { return nil }
                guard answer.starts(with: Array("HTTP/1.1 200".utf8)),
                    let end = answer.firstRange(of: Array("\r\n\r\n".utf8))
                else { throw BenchmarkError("GET /v1/snapshot: \(String(decoding: answer.prefix(300), as: UTF8.self))") }
                let body = Array(answer[end.upperBound...])
                return (milliseconds, try Snapshot(decoding: body), body.count)
            }
            var first = try await fetch()
            while first == nil {
                try await Task.sleep(for: .milliseconds(100))
                first = try await fetch()
            }
            let loadMilliseconds = (ContinuousClock.now - started).seconds * 1000
            guard let loaded = first?.snapshot, loaded.revocations == revocations else {
                throw BenchmarkError("the first snapshot holds \(first?.snapshot.revocations ?? -1) revocations, not \(revocations)")
            }
            let residentBytes = residentBytes(of: revoked.pid)
            print(String(format: "  first snapshot %.0f ms after revoked started (one full load); revoked RSS %.0f MB", loadMilliseconds, Double(residentBytes) / 1e6))

            var served: [Double] = []
            var bytes = 0
            for round in 0..<5 {
                let answer = try LoopbackSocket.exchange(
                    port: port, method: "POST", path: "/v1/revocations",
                    headers: ["Content-Type": "application/json", "Authorization": "Bearer bench-admin-key-1234"],
                    body: #"{"jti":"scale-new-\#(round)","expires_at":null}"#)
                guard answer.hasPrefix("HTTP/1.1 201") else { throw BenchmarkError("POST /v1/revocations: \(answer.prefix(200))") }
                guard let fetched = try await fetch() else { throw BenchmarkError("GET /v1/snapshot answered 503 after the load") }
                let sample = stride(from: round, to: revocations, by: max(1, revocations / 1000))
                guard fetched.snapshot.revocations == revocations + round + 1,
                    (0...round).allSatisfy({ fetched.snapshot.filter.mightContain("scale-new-\($0)") }),
                    sample.allSatisfy({ fetched.snapshot.filter.mightContain(jti($0)) })
                else { throw BenchmarkError("snapshot \(round + 1) does not hold every revocation") }
                served.append(fetched.milliseconds)
                bytes = fetched.bytes
                print(String(format: "  GET /v1/snapshot after revocation %d: %.0f ms, %d bytes", round + 1, fetched.milliseconds, fetched.bytes))
            }
            return (loadMilliseconds, residentBytes, served, bytes)
        }
        let sorted = measured.served.sorted()
        return SnapshotAtScale(
            revocations: revocations, loadMilliseconds: measured.loadMilliseconds, servedMedian: sorted[sorted.count / 2],
            servedMaximum: sorted.last!, bytes: measured.bytes, residentBytes: measured.residentBytes, redisBytes: redisBytes)
    }
}

extension HABenchmark {
    /// Runs `body` with a private `redis-server` under `work` and a client connected to it; stops
    /// both afterwards, whether `body` returns or throws.
    static func withPrivateRedis<T: Sendable>(
        work: String, commandTimeout: Duration, _ body: @Sendable (RedisServerProcess, RedisClient) async throws -> T
    ) async throws -> T {
        let redis = try await RedisServerProcess.start(.init(directory: work + "/redis", appendOnly: false))
        let client = RedisClient(configuration: redis.configuration(commandTimeout: commandTimeout))
        let running = Task { try await client.run() }
        return try await stopping({
            running.cancel()
            await redis.stop()
        }) {
            try await client.waitUntilConnected()
            return try await body(redis, client)
        }
    }

    /// Runs `body`, then `stop`, whether `body` returned or threw: nothing a measurement starts
    /// outlives it. (A `defer` could only start a task to stop it, and a benchmark that fails
    /// exits before that task runs, leaving its servers running.)
    static func stopping<T>(_ stop: () async -> Void, after body: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
        return result
    }

    /// Redis' `used_memory`.
    static func usedMemory(_ client: RedisClient) async throws -> Int {
        let info = try await client.send(RedisCommand("INFO", "memory")).string ?? ""
        return info.split(separator: "\r\n").first { $0.hasPrefix("used_memory:") }.flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 0
    }

    /// `GET /v1/snapshot` on a connection of its own: how long the whole answer took, and the answer.
    static func getSnapshot(port: Int, timeout: Int = 120) async throws -> (milliseconds: Double, answer: [UInt8]) {
        let start = ContinuousClock.now
        let answer = try await Task.detached {
            let socket = try LoopbackSocket(port: port, timeout: timeout)
            try socket.write("GET /v1/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return try socket.readAll()
        }.value
        return ((ContinuousClock.now - start).seconds * 1000, answer)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
