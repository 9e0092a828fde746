import ChildProcess
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeServer
import RevokeStore
import Synchronization
import RevokeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two `revoked` processes on one Sentinel deployment, ready, each acknowledging a write only
/// once a replica holds it (admin key `k`).
struct RevokedPair {
    var processes: [Revoked]
    var first: Int { processes[0].port }
    var second: Int { processes[1].port }
    var tuple: (Int, Int) { (first, second) }

    func stop() {
        for revoked in processes { revoked.process.signal(SIGKILL) }
    }
}

func startTwoRevoked(on deployment: SentinelDeployment) async throws -> RevokedPair {
    let environment = ["REVOKE_ADMIN_KEYS": "ops:k-0123456789abcdef", "REVOKE_REDIS_SENTINEL_PASSWORD": deployment.password, "REVOKE_REDIS_MIN_REPLICAS": "1"]
    var processes: [Revoked] = []
    for _ in 0..<2 {
        processes.append(try Revoked.start(port: try RedisServerProcess.freeLoopbackPort(), redisURL: deployment.url, environment: environment))
    }
    let pair = RevokedPair(processes: processes)
    do {
        for revoked in processes { try await revoked.waitUntilReady() }
    } catch {
        pair.stop()
        throw error
    }
    return pair
}

/// Contract section 6 on real `redis-server`s: Sentinel, replicated acknowledgements, cursors
/// across a failover, several `revoked` on one deployment, and TLS.
@Suite(.serialized) struct HighAvailabilityTests {
    /// With `REVOKE_REDIS_MIN_REPLICAS=1` a 2xx means the replica holds the write; with the
    /// replica frozen, writes answer 503 while checks go on.
    @Test func acknowledgedMeansReplicatedAndChecksNeverWaitForIt() async throws {
        try await withSentinelDeployment { deployment in
            let primary = try await deployment.primaryPort()
            let replicaPort = try #require(deployment.nodePorts.first { $0 != primary })
            let replica = try #require(deployment.node(port: replicaPort))
            try await withRedisClient(deployment.configuration(port: replicaPort)) { onReplica in
                try await withRevoked(redis: try deployment.configuration()) { configuration in
                    configuration.replication = .init(replicas: 1, wait: .milliseconds(500))
                } _: { client in
                    for index in 0..<20 {
                        let jti = "replicated-\(index)"
                        let answer = try await client.call(.post, "/v1/revocations", json: #"{"jti":"\#(jti)","expires_at":null}"#, key: "admin-secret")
                        #expect(answer.status == .created, "\(answer.text)")
                        // Already there, read from the replica itself right after the 201.
                        #expect(try await onReplica.send(RedisCommand("EXISTS", "revoke:jti:\(jti)")).integer == 1, "\(jti) is not on the replica")
                    }
                    #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"mallory"}"#, key: "admin-secret").status == .created)
                    #expect(try await onReplica.send(RedisCommand("EXISTS", "revoke:cut:sub:mallory")).integer == 1)

                    replica.pause()
                    defer { replica.resume() }
                    let write = Task {
                        try await client.call(.post, "/v1/revocations", json: #"{"jti":"unconfirmed","expires_at":null}"#, key: "admin-secret")
                    }
                    // The write waits for the frozen replica; the checks do not wait for the write.
                    for index in 0..<10 {
                        let check = try await client.call(.post, "/v1/check", json: #"{"jti":"replicated-\#(index)"}"#)
                        #expect(check.status == .ok && check.json["revoked"] == .bool(true), "\(check.text)")
                    }
                    let refused = try await write.value
                    #expect(refused.status == .serviceUnavailable && refused.error == "store_unavailable", "\(refused.text)")
                    #expect(refused.headers[.retryAfter] != nil)
                    // A repeat of the unconfirmed write (it ran on the primary) is not acknowledged
                    // either while the replica cannot confirm it.
                    let repeated = try await client.call(.post, "/v1/revocations", json: #"{"jti":"unconfirmed","expires_at":null}"#, key: "admin-secret")
                    #expect(repeated.status == .serviceUnavailable, "\(repeated.text)")

                    replica.resume()
                    try await waitUntil("writes are acknowledged again") {
                        let answer = try? await client.call(.post, "/v1/revocations", json: #"{"jti":"unconfirmed","expires_at":null}"#, key: "admin-secret")
                        return answer.map { (200..<300).contains($0.status.code) } ?? false
                    }
                    #expect(try await onReplica.send(RedisCommand("EXISTS", "revoke:jti:unconfirmed")).integer == 1)
                }
            }
        }
    }

    /// `kill -9` of the primary while clients write through two `revoked` processes: checks
    /// answer again after the promotion by themselves, writes once a replica is back, every
    /// revocation that got a 2xx is refused afterwards by both, and a stream resumed across the
    /// failover answers 410 or misses nothing.
    @Test func aFailoverUnderWriteLoadLosesNoAcknowledgedRevocation() async throws {
        try await withSentinelDeployment { deployment in
            let ports = try await startTwoRevoked(on: deployment)
            defer { ports.stop() }

            // Where a verifier of the second stood before the failover.
            let snapshot = try await RawHTTP.request(port: ports.second, path: "/v1/snapshot")
            let cursor = try #require(
                snapshot.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("revoke-cursor:") }?
                    .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces))

            let acknowledged = Shared<[(jti: String, at: ContinuousClock.Instant)]>([])
            let stop = Shared(false)
            try await withThrowingTaskGroup(of: Void.self) { writers in
                for writer in 0..<4 {
                    writers.addTask {
                        // Bounded: at most 20,000 attempts each, and only until told to stop.
                        for attempt in 0..<20_000 where !stop.withLock({ $0 }) {
                            let jti = "fo-\(writer)-\(attempt)"
                            let sentAt = ContinuousClock.now
                            let answer = try? await RawHTTP.request(
                                port: attempt % 2 == 0 ? ports.first : ports.second, method: "POST", path: "/v1/revocations",
                                headers: ["Authorization": "Bearer k-0123456789abcdef"], json: #"{"jti":"\#(jti)","expires_at":null}"#)
                            if answer?.hasPrefix("HTTP/1.1 201") == true {
                                acknowledged.withLock { $0.append((jti, sentAt)) }
                            } else {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                        }
                    }
                }
                try await waitUntil("writes are acknowledged before the failover") { acknowledged.withLock { $0.count } >= 40 }
                let old = try await deployment.primaryPort()
                let killedAt = ContinuousClock.now
                await deployment.node(port: old)?.kill()

                // Checks come back once a replica is promoted, with no help.
                try await waitUntil("a check is answered after the failover") {
                    (try? await RawHTTP.request(port: ports.first, method: "POST", path: "/v1/check", json: #"{"jti":"fo-0-0"}"#))?
                        .hasPrefix("HTTP/1.1 200") ?? false
                }
                let checkedAt = ContinuousClock.now
                try await waitUntil("the sentinels promote the replica") { (try? await deployment.primaryPort()).map { $0 != old } ?? false }
                let promotedAt = ContinuousClock.now
                // Writes need a replica again: the old primary comes back as one.
                try await deployment.restart(port: old)
                try await waitUntil("a write sent after the kill is acknowledged") {
                    acknowledged.withLock { $0.contains { $0.at > killedAt } }
                }
                let writtenAt = acknowledged.withLock { $0.filter { $0.at > killedAt }.map(\.at).min()! }
                stop.withLock { $0 = true }
                try await writers.waitForAll()
                print(
                    "failover: kill -9 at 0; promotion seen at \(promotedAt - killedAt), first answered check at \(checkedAt - killedAt), "
                        + "first acknowledged write sent at \(writtenAt - killedAt) (the old primary restarted as a replica at \(promotedAt - killedAt))")
            }

            // Every acknowledged revocation is refused by both instances.
            let jtis = acknowledged.withLock { $0.map(\.jti) }
            #expect(jtis.count > 40)
            for port in [ports.first, ports.second] {
                for chunk in stride(from: 0, to: jtis.count, by: 1000).map({ Array(jtis[$0..<min($0 + 1000, jtis.count)]) }) {
                    let body = #"{"checks":["# + chunk.map { #"{"jti":"\#($0)"}"# }.joined(separator: ",") + "]}"
                    let answer = try await RawHTTP.request(port: port, method: "POST", path: "/v1/check/batch", json: body)
                    #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
                    let refused = answer.components(separatedBy: #""revoked":true"#).count - 1
                    #expect(refused == chunk.count, "\(chunk.count - refused) acknowledged revocations are not refused by \(port)")
                }
            }

            // Resumed from before the failover: 410, or a replay that misses nothing.
            let resumed = try await OpenStream.open(port: ports.second, path: "/v1/events?since=\(cursor)")
            let head = try await resumed.read { $0.contains("\r\n\r\n") }
            if head.hasPrefix("HTTP/1.1 200") {
                let wanted = Set(jtis)
                // Heartbeats come every second: bounded, so that a stream missing some fails here
                // instead of waiting for them forever.
                let deadline = ContinuousClock.now + .seconds(60)
                try await resumed.read { text in
                    OpenStream.ended(text) || wanted.isSubset(of: Set(OpenStream.jtis(in: text))) || ContinuousClock.now > deadline
                }
                #expect(wanted.isSubset(of: Set(resumed.revokedJTIs)), "a stream resumed across the failover missed revocations")
            } else {
                #expect(head.hasPrefix("HTTP/1.1 410"), "\(head.prefix(200))")
            }
        }
    }

    /// A caching verifier that followed one `revoked` through a failover refuses, from its own
    /// cache, every revocation acknowledged through another.
    @Test func aCachingClientMissesNothingAcrossAFailover() async throws {
        try await withSentinelDeployment { deployment in
            let ports = try await startTwoRevoked(on: deployment)
            defer { ports.stop() }
            try await withCachingClient(port: ports.second, cache: .init(staleness: .seconds(3))) { client in
                var jtis: [String] = []
                for index in 0..<20 {
                    try await RawHTTP.revoke(port: ports.first, jti: "before-\(index)", key: "k-0123456789abcdef")
                    jtis.append("before-\(index)")
                }
                let old = try await deployment.primaryPort()
                await deployment.node(port: old)?.kill()
                try await waitUntil("the sentinels promote the replica") { (try? await deployment.primaryPort()).map { $0 != old } ?? false }
                try await deployment.restart(port: old)
                // Writes are idempotent: a verifier's 503 while the replica rejoins is retried.
                for index in 0..<20 {
                    let jti = "after-\(index)"
                    try await waitUntil("\(jti) is acknowledged") {
                        (try? await RawHTTP.request(
                            port: ports.first, method: "POST", path: "/v1/revocations", headers: ["Authorization": "Bearer k-0123456789abcdef"],
                            json: #"{"jti":"\#(jti)","expires_at":null}"#))?.hasPrefix("HTTP/1.1 201") ?? false
                    }
                    jtis.append(jti)
                }
                // Fresh, the cache answers "not revoked" from its filter alone; a jti it holds
                // is a filter hit, which the server confirms. So every acknowledged jti, asked
                // while the cache stays fresh, must come back revoked from the server, never
                // "not revoked" from the cache.
                let all = jtis
                try await waitUntil("the fresh cache holds every acknowledged revocation") {
                    guard client.isCacheFresh else { return false }
                    var verdicts: [RevokeClient.Verdict] = []
                    for jti in all { verdicts.append(await client.check(CheckQuery(jti: jti))) }
                    guard client.isCacheFresh else { return false }
                    if let missed = zip(all, verdicts).first(where: { !$0.1.revoked && $0.1.source == .cache }) {
                        Issue.record("the fresh cache answered \(missed.0) not revoked")
                    }
                    return verdicts.allSatisfy { $0.revoked && $0.source == .server }
                }
            }
        }
    }

    /// `rediss://` end to end: `revoked` with the right CA serves; with another CA it refuses
    /// the connection (503, `/readyz` 503), never falling back to clear text.
    @Test func revokedSpeaksTLSAndRefusesAServerItCannotVerify() async throws {
        let parent = FileManager.default.temporaryDirectory.appending(path: "revoke-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let certificates = try await TestCertificates.make(in: parent)
        let tlsPort = try RedisServerProcess.freeLoopbackPort()
        try await withRedisServer(extraConfiguration: { _ in certificates.serverDirectives(port: tlsPort) }) { server in
            var redis = try RedisConfiguration(url: "rediss://:\(server.options.password!)@127.0.0.1:\(tlsPort)/0")
            redis.tls?.caFile = certificates.caFile
            try await withRevoked(redis: redis) { client async throws in
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"over-tls","expires_at":null}"#, key: "admin-secret").status == .created)
                #expect(try await client.call(.post, "/v1/check", json: #"{"jti":"over-tls"}"#).json["revoked"] == .bool(true))
            }
            redis.tls?.caFile = certificates.otherCAFile
            try await withRevoked(redis: redis, ready: false) { client in
                for _ in 0..<3 {
                    #expect(try await client.call(.get, "/readyz").status == .serviceUnavailable)
                    let check = try await client.call(.post, "/v1/check", json: #"{"jti":"over-tls"}"#)
                    #expect(check.status == .serviceUnavailable && check.error == "store_unavailable", "\(check.text)")
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }
    }

    @Test func deploymentSettingsAreCheckedAtStart() async throws {
        let parent = FileManager.default.temporaryDirectory.appending(path: "revoke-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let certificates = try await TestCertificates.make(in: parent)
        func failure(_ variables: [String: String]) -> String? {
            do {
                _ = try ServerConfiguration(variables: variables)
                return nil
            } catch {
                return error.variable
            }
        }
        let tls = "rediss://127.0.0.1:6380"
        #expect(failure(["REVOKE_REDIS_URL": tls, "REVOKE_REDIS_CA_FILE": certificates.caFile]) == nil)
        #expect(failure(["REVOKE_REDIS_URL": "redis://127.0.0.1", "REVOKE_REDIS_CA_FILE": certificates.caFile]) == "REVOKE_REDIS_CA_FILE")
        #expect(failure(["REVOKE_REDIS_URL": tls, "REVOKE_REDIS_CA_FILE": parent + "/none.pem"]) == "REVOKE_REDIS_CA_FILE")
        #expect(failure(["REVOKE_REDIS_URL": tls, "REVOKE_REDIS_CA_FILE": certificates.serverKey]) == "REVOKE_REDIS_CA_FILE")
        #expect(failure(["REVOKE_REDIS_URL": tls, "REVOKE_REDIS_CERT_FILE": certificates.clientCertificate]) == "REVOKE_REDIS_KEY_FILE")
        #expect(failure(["REVOKE_REDIS_URL": tls, "REVOKE_REDIS_CERT_FILE": certificates.clientCertificate, "REVOKE_REDIS_KEY_FILE": certificates.caFile]) == "REVOKE_REDIS_CERT_FILE")
        #expect(failure(["REVOKE_REDIS_URL": tls, "REVOKE_REDIS_CERT_FILE": certificates.clientCertificate, "REVOKE_REDIS_KEY_FILE": certificates.clientKey]) == nil)
        #expect(failure(["REVOKE_REDIS_URL": "redis://h", "REVOKE_REDIS_SENTINEL_PASSWORD": "x"]) == "REVOKE_REDIS_SENTINEL_PASSWORD")
        #expect(failure(["REVOKE_REDIS_URL": "redis-sentinel://h/m", "REVOKE_REDIS_SENTINEL_PASSWORD": "x"]) == nil)
        #expect(failure(["REVOKE_REDIS_MIN_REPLICAS": "1"]) == "REVOKE_REDIS_MIN_REPLICAS")
        #expect(failure(["REVOKE_REDIS_URL": "redis://h", "REVOKE_REDIS_MIN_REPLICAS": "-1"]) == "REVOKE_REDIS_MIN_REPLICAS")
        #expect(failure(["REVOKE_REDIS_URL": "redis://h", "REVOKE_REDIS_WAIT_TIMEOUT_MS": "0"]) == "REVOKE_REDIS_WAIT_TIMEOUT_MS")
        #expect(failure(["REVOKE_REDIS_URL": "redis-sentinel://h"]) == "REVOKE_REDIS_URL")
    }
}

/// A value several tasks share, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let state: Mutex<Value>

    init(_ value: Value) {
        state = Mutex(value)
    }

    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result {
        state.withLock { body(&$0) }
    }
}
