import BenchmarkSupport
import ChildProcess
import Crypto
import Foundation
import LoopbackHTTP
import Redis
import RedisSupervisor
import RevokeCore

#if canImport(Glibc)
import Glibc
#endif

/// `make bench` (HTTP part): wrk against `revoked`'s `POST /v1/check` and
/// `POST /v1/check/batch`, against the peer in `../shared/bench/peer` (Flask with a Redis
/// blocklist), against nginx serving a 20-byte file (the HTTP ceiling of this machine) and
/// against Hummingbird alone answering 20 bytes (`HummingbirdFloor`: what a request answered
/// through the framework reaches here; single checks are answered beside it, on the event loop),
/// all started here, on loopback, in the same run, with the same wrk settings. The single checks
/// are measured again under hostile load (event streams, idle connections, a logout flood),
/// during a mass revocation, under a replay storm (one address trying to hold 500 streams that
/// replay a 100,000-event log from its start, `ReplayStorm`) and beside 2,000 request bodies
/// that never finish (`SlowBodies`), each against the quiet run.
@main
struct HTTPBenchmark {
    typealias Result = Wrk.Result

    /// NIO's default high watermark of a channel's pending writes: what a stream's connection
    /// may hold beside the stream's own queue.
    static let nioWriteWatermark = 64 * 1024

    /// revoked's resident memory with streams that never read.
    struct Memory {
        var before, open, maximum, after: Int
        var bound: Int
        var streams: Int
        var cutOff: Int
        var revocations: Double
    }

    static func main() async throws {
        let option = commandLineOption
        let seconds = Int(option("--seconds", "10")) ?? 10
        let connections = Int(option("--connections", "50")) ?? 50
        let here = FileManager.default.currentDirectoryPath
        let scripts = option("--scripts", here + "/Benchmarks/wrk")
        let peerDirectory = option("--peer", ProcessInfo.processInfo.environment["REVOKE_PEER_DIR"] ?? here + "/../shared/bench/peer")
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-http-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: work) }

        let hmacSecret = RedisServerProcess.randomPassword() + RedisServerProcess.randomPassword()
        var owned: [ChildProcess] = []
        var results: [Result] = []
        var memory: Memory?
        var runs = 0
        /// Starts wrk; `finish` waits for it and reads its result.
        func startWrk(script: String, port: Int, threads: Int = 2, connections: Int, extra: [String: String] = [:]) throws -> Wrk.Run {
            runs += 1
            return try Wrk.start(
                script: script, port: port, threads: threads, connections: connections, seconds: seconds, output: work + "/wrk-\(runs).txt",
                environment: extra)
        }
        func wrk(_ name: String, script: String, port: Int, jtisPerRequest: Int = 1, extra: [String: String] = [:]) async throws -> Result {
            let run = try startWrk(
                script: script, port: port, connections: connections,
                extra: extra.merging(jtisPerRequest > 1 ? ["BATCH": "\(jtisPerRequest)"] : [:]) { $1 })
            var result = try await run.finish(name)
            result.jtisPerRequest = jtisPerRequest
            print(String(format: "  %@: %.0f req/s, p50 %.2f ms, p99 %.2f ms", name, result.rps, result.p50, result.p99))
            return result
        }

        do {
            print("wrk -t2 -c\(connections) -d\(seconds)s on 127.0.0.1, one target at a time; every target started here, now")
            // revoked on a private redis-server, as deployed with REVOKE_REDIS_URL.
            /// revoked (release) on a redis-server of its own, ready; `extra` adds variables.
            func startRevoked(_ name: String, extra: [String: String] = [:]) async throws
                -> (redis: RedisServerProcess, revoked: ChildProcess, port: Int)
            {
                var environment = [
                    "REVOKE_ADMIN_KEYS": "bench:bench-admin-key-1234", "REVOKE_HMAC_SECRET": hmacSecret,
                    // The streams opened here stand for many verifiers, all from one address.
                    "REVOKE_MAX_STREAMS_PER_CLIENT": "100000",
                ]
                environment.merge(extra) { $1 }
                let started = try await startRevokedOnOwnRedis(
                    directory: work + "/redis-\(name)", environment: environment, log: work + "/revoked-\(name).log")
                owned += [started.redis.process, started.revoked]
                return started
            }
            let (redis, revoked, revokedPort) = try await startRevoked("checks")
            // The answers are real: one revoked jti reads back as revoked, a random one not.
            let json = ["Content-Type": "application/json"]
            _ = try LoopbackSocket.exchange(
                port: revokedPort, method: "POST", path: "/v1/revocations",
                headers: json.merging(["Authorization": "Bearer bench-admin-key-1234"]) { $1 }, body: #"{"jti":"bench-revoked","expires_at":null}"#)
            let yes = try LoopbackSocket.exchange(port: revokedPort, method: "POST", path: "/v1/check", headers: json, body: #"{"jti":"bench-revoked"}"#)
            let no = try LoopbackSocket.exchange(port: revokedPort, method: "POST", path: "/v1/check", headers: json, body: #"{"jti":"bench-other"}"#)
            guard yes.hasSuffix(#"{"reason":"jti","revoked":true}"#), no.hasSuffix(#"{"revoked":false}"#) else {
                throw BenchmarkError("revoked answers wrongly: \(yes.suffix(80)) / \(no.suffix(80))")
            }
            results.append(try await wrk("revoked POST /v1/check", script: scripts + "/check.lua", port: revokedPort))
            results.append(try await wrk("revoked POST /v1/check/batch (1000)", script: scripts + "/check.lua", port: revokedPort, jtisPerRequest: 1000))
            // RFC 7662 introspection of a valid token: a signature verified, then the same check.
            let active = Self.mint(jti: "bench-introspected", secret: hmacSecret)
            let introspected = try LoopbackSocket.exchange(
                port: revokedPort, method: "POST", path: "/oauth2/introspect", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                body: "token=\(active)")
            guard introspected.contains(#""active":true"#) else { throw BenchmarkError("introspection answers wrongly: \(introspected.suffix(120))") }
            results.append(try await wrk("revoked POST /oauth2/introspect", script: scripts + "/introspect.lua", port: revokedPort, extra: ["REVOKE_TOKEN": active]))

            // The same checks while verifiers follow 1,000 streams, 2,000 connections sit idle and
            // the holder of one valid token replays its logout, 16 copies a request, as fast as 4
            // connections go (section 5: none of it stops the checks; a repeat changes nothing).
            let token = Self.mint(jti: "bench-logout", secret: hmacSecret)
            let logout = try LoopbackSocket.exchange(port: revokedPort, method: "POST", path: "/v1/revoke", headers: json, body: #"{"token":"\#(token)"}"#)
            guard logout.hasPrefix("HTTP/1.1 200"), logout.contains(#""revoked":true"#) else {
                throw BenchmarkError("revoked refused the benchmark's token: \(logout.suffix(200))")
            }
            let streams = try OpenConnections(port: revokedPort, count: 1000, request: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            streams.startReading()
            let idle = try OpenConnections(port: revokedPort, count: 2000, request: nil)
            let flood = try startWrk(script: scripts + "/logout.lua", port: revokedPort, threads: 1, connections: 4, extra: ["REVOKE_TOKEN": token])
            var hostile = try await wrk("revoked POST /v1/check, under hostile load", script: scripts + "/check.lua", port: revokedPort)
            let floodResult = try await flood.finish("flood")
            hostile.note = String(
                format: "%d streams open, read %.1f MB; %d of 2000 idle kept; logout flood %.0f requests/s (%.0f tokens/s)", streams.open,
                Double(streams.bytesRead) / 1e6, idle.open, floodResult.rps, floodResult.rps * 16)
            results.append(hostile)

            // And while an incident responder revokes distinct jtis as fast as 4 connections go:
            // every one is a change that all 1,000 streams must carry.
            let bytesBefore = streams.bytesRead
            let mass = try startWrk(
                script: scripts + "/revoke.lua", port: revokedPort, threads: 1, connections: 4, extra: ["REVOKE_ADMIN_KEY": "bench-admin-key-1234"])
            var fanOut = try await wrk("revoked POST /v1/check, during mass revocation", script: scripts + "/check.lua", port: revokedPort)
            let massResult = try await mass.finish("mass revocation")
            fanOut.note = String(
                format: "%.0f revocations/s to %d streams: %.0f MB/s of events written", massResult.rps, streams.open,
                Double(streams.bytesRead - bytesBefore) / 1e6 / Double(seconds))
            results.append(fanOut)
            streams.close()
            idle.close()
            await revoked.terminate()
            await redis.stop()

            // The same checks while one address tries to hold 500 streams, each replaying the
            // whole event log from its start (a log never trimmed, 100,000 events), and opening
            // again once it has replayed or was refused (429 beyond the streams one client may
            // hold, REVOKE_MAX_STREAMS_PER_CLIENT) or closed: those allowed replay, the rest
            // retry every 100 ms. On a revoked and redis-server of their own.
            let logLength = 100_000
            let (replayRedis, replayServer, replayPort) = try await startRevoked(
                "replay", extra: ["REVOKE_EVENT_LOG_LENGTH": "200000", "REVOKE_MAX_STREAMS_PER_CLIENT": "1000"])  // one attacker, the default bound
            let (lastEvent, storedEvents) = try await Self.fillEventLog(redis: replayRedis, events: logLength)
            guard storedEvents >= logLength else { throw BenchmarkError("the event log holds \(storedEvents) events, not \(logLength)") }
            try await Self.waitForCursor(lastEvent, port: replayPort)
            // One replay alone first: its size, and that it carries the whole log (an event is at
            // least `event: revocation`, its id and its record: over 100 bytes). Tried 3 times, a
            // second apart, in case the stream's own reader of the log was still behind it.
            var replaySize = 0
            var single = ReplayStorm.Counts()
            for _ in 0..<3 where replaySize <= logLength * 100 {
                let probe = ReplayStorm(port: replayPort, streams: 1, path: "/v1/events?since=0-0")
                probe.start()
                let probeDeadline = Date().addingTimeInterval(120)
                while Date() < probeDeadline {
                    let counts = probe.counts
                    if counts.replays > 0 || counts.tooManyRequests + counts.otherRefusals + counts.unanswered + counts.cutOff > 0 { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                probe.stop()
                single = probe.counts
                replaySize = single.replays > 0 ? single.replayedBytes / single.replays : 0
                if replaySize <= logLength * 100 { try await Task.sleep(for: .seconds(1)) }
            }
            guard replaySize > logLength * 100 else {
                throw BenchmarkError("a replay from since=0-0 did not carry the \(logLength) events of the log: \(single)")
            }
            let storm = ReplayStorm(port: replayPort, streams: 500, path: "/v1/events?since=0-0", retryDelay: 0.1)
            storm.start()
            // The storm under way before the checks are measured, as the streams of the hostile
            // row are open before it: its 500 streams held (answered 200), or a minute passed.
            let stormDeadline = Date().addingTimeInterval(60)
            while storm.counts.held < 500 && Date() < stormDeadline { try await Task.sleep(for: .milliseconds(50)) }
            var replayed = try await wrk("revoked POST /v1/check, replay storm", script: scripts + "/check.lua", port: replayPort)
            storm.stop()
            let stormCounts = storm.counts
            var stormNote = "500 streams from one address replaying \(storedEvents) events from since=0-0 (a replay "
            stormNote += String(format: "%.1f MB), a refused one opened again after 100 ms: ", Double(replaySize) / 1e6)
            stormNote += "at most \(stormCounts.mostHeld) held at once, \(stormCounts.replays) replays completed, "
            stormNote += "\(stormCounts.tooManyRequests) answered 429, \(stormCounts.otherRefusals + stormCounts.unanswered) refused otherwise "
            stormNote += "or closed unanswered, \(stormCounts.cutOff) cut off, " + String(format: "%.1f MB read", Double(stormCounts.bytesRead) / 1e6)
            replayed.note = stormNote
            results.append(replayed)
            await replayServer.terminate()
            await replayRedis.stop()

            // And beside 2,000 requests whose bodies never finish: each promises 65,536 bytes and
            // sends one every 2 s (REVOKE_BODY_TIMEOUT answers them 408; REVOKE_MAX_CONNECTIONS
            // bounds how many are held). On a revoked and redis-server of their own.
            let (slowRedis, slowServer, slowPort) = try await startRevoked("slow")
            let slowCount = 2000
            let slow = try SlowBodies(
                port: slowPort, count: slowCount,
                head: "POST /v1/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n",
                interval: 2)
            slow.start()
            var beside = try await wrk("revoked POST /v1/check, slow bodies", script: scripts + "/check.lua", port: slowPort)
            let duringRun = slow.counts
            let runEnded = Date()
            // Those still open when the run ended: up to 15 s more for the server to end them.
            while slow.counts.ended < duringRun.opened, Date().timeIntervalSince(runEnded) < 15 { try await Task.sleep(for: .milliseconds(100)) }
            let waited = Date().timeIntervalSince(runEnded)
            slow.stop()
            let afterRun = slow.counts
            var slowNote = "\(duringRun.opened) of \(slowCount) slow bodies opened (Content-Length 65536, a byte every 2 s each, "
            slowNote += "\(afterRun.bytesSent) bytes sent); during the run the server answered \(duringRun.answered) "
            slowNote += "(\(duringRun.answerSummary)) and closed \(duringRun.closed) unanswered; " + String(format: "%.1f s after it, ", waited)
            slowNote += "\(afterRun.answered) answered (\(afterRun.answerSummary)), \(afterRun.closed) closed, "
            slowNote += "\(afterRun.opened - afterRun.ended) still open"
            if let first = afterRun.firstEnded, let last = afterRun.lastEnded {
                slowNote += String(format: "; they ended %.1f to %.1f s after the first head", first, last)
            }
            beside.note = slowNote
            results.append(beside)
            await slowServer.terminate()
            await slowRedis.stop()

            // RSS with 1,000 streams that never read, while revocations flood them: bounded per
            // stream by REVOKE_STREAM_BUFFER_BYTES (64 KiB here) in revoked's queue and NIO's write
            // buffer (at most its 64 KiB high watermark) beside it; past that, the stream is closed.
            let bound = 65_536
            let (redis2, stalled, port2) = try await startRevoked("stalled", extra: ["REVOKE_STREAM_BUFFER_BYTES": "\(bound)"])
            let rssBefore = residentBytes(of: stalled.pid)
            let silent = try OpenConnections(
                port: port2, count: 1000, request: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", receiveBuffer: 4096)
            let rssOpen = residentBytes(of: stalled.pid)
            let stalledFlood = try startWrk(
                script: scripts + "/revoke.lua", port: port2, threads: 1, connections: 4, extra: ["REVOKE_ADMIN_KEY": "bench-admin-key-1234"])
            let rssMax = max(rssOpen, try await peakResidentBytes(of: stalled.pid, while: stalledFlood))
            let stalledResult = try await stalledFlood.finish("flood")
            let rssAfter = residentBytes(of: stalled.pid)
            memory = Memory(
                before: rssBefore, open: rssOpen, maximum: rssMax, after: rssAfter, bound: bound, streams: 1000,
                cutOff: silent.drainCountingClosed(), revocations: stalledResult.rps * Double(seconds))
            silent.close()
            await stalled.terminate()
            await redis2.stop()

            // The peer, on a redis-server of its own (it speaks to Redis without a password).
            if FileManager.default.fileExists(atPath: peerDirectory + "/start.sh") {
                let peerRedisPort = try RedisServerProcess.freeLoopbackPort()
                let peerRedis = try ChildProcess.spawn(
                    "redis-server",
                    arguments: ["--bind", "127.0.0.1", "--port", "\(peerRedisPort)", "--save", "", "--appendonly", "no", "--dir", work])
                owned.append(peerRedis)
                try await waitForTCP(port: peerRedisPort, what: "the peer's redis-server")
                let peerPort = try RedisServerProcess.freeLoopbackPort()
                let pidFile = work + "/peer.pid"
                let starter = try ChildProcess.spawn(
                    "/bin/bash", arguments: [peerDirectory + "/start.sh", "\(peerPort)", "\(peerRedisPort)"],
                    standardOutput: pidFile, standardError: work + "/peer-start.log")
                let status = await starter.waitUntilExit()
                guard ChildProcess.exitCode(of: status) == 0,
                    let pid = Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))
                else {
                    throw BenchmarkError("the peer did not start: \((try? String(contentsOfFile: work + "/peer-start.log", encoding: .utf8)) ?? "")")
                }
                defer { stopPeer(pid) }
                results.append(try await wrk("peer GET /check/<jti>", script: peerDirectory + "/check.lua", port: peerPort))
                stopPeer(pid)
                await peerRedis.terminate()
            } else {
                print("  peer: \(peerDirectory)/start.sh not found (set REVOKE_PEER_DIR); skipped")
            }

            // nginx serving a 20-byte file.
            if let nginx = ChildProcess.findExecutable("nginx") {
                let nginxPort = try RedisServerProcess.freeLoopbackPort()
                try FileManager.default.createDirectory(atPath: work + "/www", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                try Data("0123456789abcdefghi\n".utf8).write(to: URL(fileURLWithPath: work + "/www/20b.txt"))
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: work + "/www/20b.txt")
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work)
                let config = nginxConfiguration(
                    directory: work, http: "server {\n    listen 127.0.0.1:\(nginxPort);\n    root \(work)/www;\n}")
                try Data(config.utf8).write(to: URL(fileURLWithPath: work + "/nginx.conf"))
                let server = try ChildProcess.spawn(
                    nginx, arguments: ["-c", work + "/nginx.conf", "-p", work], standardError: work + "/nginx-start.log")
                owned.append(server)
                try await waitForHTTP(port: nginxPort, path: "/20b.txt", what: "nginx")
                results.append(try await wrk("nginx, a 20-byte file", script: scripts + "/static.lua", port: nginxPort))
                await server.terminate()
            } else {
                print("  nginx: not installed (apt-get install nginx-light); skipped")
            }

            // Hummingbird alone, serving its connections as revoked does: what a request answered
            // through the framework reaches (every route but the single check).
            let floorPort = try RedisServerProcess.freeLoopbackPort()
            let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
            let floor = try ChildProcess.spawn(
                binaries + "/HummingbirdFloor", arguments: ["\(floorPort)"], standardOutput: work + "/floor.log", standardError: work + "/floor.log")
            owned.append(floor)
            try await waitForHTTP(port: floorPort, path: "/20b.txt", what: "HummingbirdFloor")
            results.append(try await wrk("Hummingbird alone, a 20-byte route", script: scripts + "/static.lua", port: floorPort))
            await floor.terminate()
        } catch {
            for process in owned { await process.terminate() }
            throw error
        }
        for process in owned { await process.terminate() }
        report(results, memory: memory)
    }

    static func report(_ results: [Result], memory: Memory?) {
        print("")
        print("target".padding(toLength: 38, withPad: " ", startingAt: 0) + "     req/s   p50 ms   p99 ms      jtis/s  non-2xx  errors")
        for result in results {
            print(
                result.name.padding(toLength: 38, withPad: " ", startingAt: 0)
                    + String(format: "%10.0f %8.2f %8.2f %11.0f %8d %7d", result.rps, result.p50, result.p99,
                             result.rps * Double(result.jtisPerRequest), result.non2xx, result.socketErrors))
        }
        for result in results where result.socketErrors > 0 {
            print("  socket errors of \(result.name): \(result.socketErrorKinds) (wrk's timeout: no answer within 2 s)")
        }
        func find(_ prefix: String) -> Result? { results.first { $0.name.hasPrefix(prefix) } }
        print("")
        if let check = find("revoked POST /v1/check"), let peer = find("peer") {
            print(String(
                format: "single check vs peer:   %.1fx the throughput (target >= 10x), p99 %.2f ms vs %.2f ms (target: lower)",
                check.rps / peer.rps, check.p99, peer.p99))
        }
        if let check = find("revoked POST /v1/check"), let nginx = find("nginx") {
            print(String(format: "single check vs nginx:  %.0f%% of the HTTP ceiling (target >= 50%%)", 100 * check.rps / nginx.rps))
        }
        if let check = find("revoked POST /v1/check"), let floor = find("Hummingbird alone"), let nginx = find("nginx") {
            print(String(
                format: "single check vs Hummingbird alone: %.0f%% of a 20-byte route answered through Hummingbird (checks are answered beside it), which is %.0f%% of nginx",
                100 * check.rps / floor.rps, 100 * floor.rps / nginx.rps))
        }
        if let check = results.first(where: { $0.name == "revoked POST /v1/check" }), let introspect = find("revoked POST /oauth2/introspect") {
            print(String(
                format: "introspection vs check:  %.0f%% of the single checks' throughput (a signature verified per request), p99 %.2f ms vs %.2f ms",
                100 * introspect.rps / check.rps, introspect.p99, check.p99))
        }
        if let batch = find("revoked POST /v1/check/batch") {
            print(String(format: "batch checks:           %.0f jtis/s (target >= 300000)", batch.rps * Double(batch.jtisPerRequest)))
        }
        // Each load beside the checks, against the quiet checks of the same run.
        if let quiet = results.first(where: { $0.name == "revoked POST /v1/check" }) {
            for (row, label, target) in [
                ("revoked POST /v1/check, under", "checks under hostile load", "target <= 2x"),
                ("revoked POST /v1/check, during", "checks during a mass revocation", "no target: the fan-out is the work"),
                ("revoked POST /v1/check, replay storm", "checks under a replay storm", "target <= 2x"),
                ("revoked POST /v1/check, slow bodies", "checks beside slow bodies", "target <= 2x"),
            ] {
                guard let loaded = find(row) else { continue }
                print(String(
                    format: "%@: %.0f%% of the quiet throughput, p99 %.2fx the quiet p99 (%@)", label, 100 * loaded.rps / quiet.rps,
                    loaded.p99 / quiet.p99, target))
                print("  (\(loaded.note))")
            }
        }
        if let memory {
            let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
            let grown = max(memory.maximum - memory.open, 0)
            print(
                "RSS with \(memory.streams) streams that never read, \(Int(memory.revocations)) revocations flooding them: "
                    + "\(mb(memory.before)) before, \(mb(memory.open)) with the streams open, \(mb(memory.maximum)) at most, \(mb(memory.after)) after")
            let perStream = memory.bound + Self.nioWriteWatermark
            print(String(
                format: "  grew %@ while flooded, %.0f%% of the bound (%d streams x (%d KiB queue + %d KiB NIO write buffer) = %@); %d of %d streams cut off",
                mb(grown), 100 * Double(grown) / Double(memory.streams * perStream), memory.streams, memory.bound / 1024,
                Self.nioWriteWatermark / 1024, mb(memory.streams * perStream), memory.cutOff, memory.streams))
        }
    }

    /// An HS256 token for `jti`, valid for an hour, signed with `secret`.
    static func mint(jti: String, secret: String) -> String {
        let now = Int(Date().timeIntervalSince1970)
        let input = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "."
            + Base64URL.encode(Array(#"{"jti":"\#(jti)","iat":\#(now),"exp":\#(now + 3600)}"#.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + Base64URL.encode(Array(signature))
    }

    /// Appends `events` revocations to the event log of the `revoked` on `redis` (namespace
    /// `revoke`), as its revoke script writes them (`Sources/RevokeStore/Scripts.swift`): each
    /// jti's record the packed `revoked_at` and lifetime with its TTL, each event the fields
    /// `type` (`revocation`) and `data` (the record's JSON), 10,000 to a script. Returns the last
    /// event's ID and the log's length (`XLEN`).
    static func fillEventLog(redis: RedisServerProcess, events: Int) async throws -> (last: String, length: Int) {
        let script = """
            local now = tonumber(ARGV[3])
            local id
            for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
              local jti = 'bench-replay-' .. i
              redis.call('SET', 'revoke:jti:' .. jti, now .. '00003600', 'EX', 3600)
              id = redis.call('XADD', KEYS[1], '*', 'type', 'revocation', 'data',
                cjson.encode({jti = jti, expires_at = now + 3600, revoked_at = now, reason = cjson.null}))
            end
            return {id, redis.call('XLEN', KEYS[1])}
            """
        let connection = try await RedisConnection.connect(to: redis.configuration(commandTimeout: .seconds(30)))
        defer { connection.close() }
        let now = Int(Date().timeIntervalSince1970)
        var last = ""
        var length = 0
        for first in stride(from: 1, through: events, by: 10_000) {
            let reply = try await connection.send(
                RedisCommand("EVAL", script, "1", "revoke:events", "\(first)", "\(min(first + 9_999, events))", "\(now)"))
            guard let parts = reply.array, parts.count == 2, let id = parts[0].string, let count = parts[1].integer else {
                throw BenchmarkError("filling the event log answered \(reply)")
            }
            last = id
            length = Int(count)
        }
        return (last, length)
    }

    /// Waits until `revoked` on `port` has read the event log up to `cursor` (`GET /v1/status`
    /// reports where it has read to).
    static func waitForCursor(_ cursor: String, port: Int) async throws {
        var answer = ""
        for _ in 0..<600 {
            answer = try LoopbackSocket.exchange(
                port: port, method: "GET", path: "/v1/status", headers: ["Authorization": "Bearer bench-admin-key-1234"])
            if answer.contains("\"\(cursor)\"") { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchmarkError("revoked did not read the event log up to \(cursor) within 60 s: \(answer.suffix(300))")
    }

    /// Stops the peer's gunicorn (its master stops its workers).
    static func stopPeer(_ pid: Int32) {
        _ = kill(pid, SIGTERM)
    }
}
