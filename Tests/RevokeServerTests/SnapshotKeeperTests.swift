import ChildProcess
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeSnapshot
import RevokeStore
import Synchronization
import RevokeTestSupport
import Testing

import RevokeServer

#if canImport(Glibc)
import Glibc
#endif

/// `GET /v1/snapshot` served from the state kept in step with the log, against a live `revoked`.
@Suite struct SnapshotKeeperTests {
    /// How many `SCAN` commands Redis has run.
    func scans(_ redis: RedisClient) async throws -> Int {
        let info = try #require(try await redis.send(RedisCommand("INFO", "commandstats")).string)
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_scan:") }) else { return 0 }
        let calls = line.split(separator: ",").first { $0.hasPrefix("cmdstat_scan:calls=") }
        return Int(calls?.dropFirst("cmdstat_scan:calls=".count) ?? "") ?? 0
    }

    func snapshot(_ client: any TestClientProtocol) async throws -> (Snapshot, String?) {
        try await client.execute(uri: "/v1/snapshot", method: .get) { response in
            #expect(response.status == .ok)
            return (try Snapshot(decoding: Array(response.body.readableBytesView)), response.headers[HTTPField.Name("Revoke-Cursor")!])
        }
    }

    /// Writes made while the first load scans Redis (revocations it meets in the scan and again
    /// in the log, one revoked again, one unrevoked before the scan came to it, one revoked,
    /// unrevoked and revoked again) count once each: the count is what Redis holds.
    @Test func writesDuringTheFirstLoadCountOnce() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                // Enough keys for the scan to take a while, written without events (as if
                // before the log's position).
                let seeded = 100_000
                _ = try await redis.send(
                    RedisCommand(
                        "EVAL",
                        "for i = 1, tonumber(ARGV[1]) do redis.call('HSET', 'revoke:jti:seed-' .. i, 'revoked_at', '1') end return 0",
                        "0", "\(seeded)"),
                    timeout: .seconds(60))
                try await withRevoked(redis: server.configuration(), ready: false) { client in
                    try await waitUntilReady(client)
                    let admin = "admin-secret"
                    for index in 1...40 {
                        let revoke = #"{"jti":"seed-\#(index)","expires_at":null,"reason":"again"}"#
                        #expect(try await client.call(.post, "/v1/revocations", json: revoke, key: admin).status == .created)
                        #expect(try await client.call(.delete, "/v1/revocations/seed-\(seeded - index)", key: admin).status == .noContent)
                        #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"new-\#(index)","expires_at":null}"#, key: admin).status == .created)
                        #expect(try await client.call(.delete, "/v1/revocations/new-\(index)", key: admin).status == .noContent)
                        #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"new-\#(index)","expires_at":null}"#, key: admin).status == .created)
                    }
                    var keys = Set<[UInt8]>()
                    var cursor = "0"
                    repeat {
                        let reply = try await redis.send(RedisCommand("SCAN", cursor, "MATCH", "revoke:jti:*", "COUNT", "10000"))
                        guard case .array(let parts) = reply, parts.count == 2, case .array(let found) = parts[1] else {
                            throw RedisError(.unexpectedReply, "SCAN")
                        }
                        cursor = parts[0].string ?? "0"
                        keys.formUnion(found.compactMap(\.bytes))
                    } while cursor != "0"
                    #expect(keys.count == seeded)
                    let status = try await client.call(.get, "/v1/status", key: admin)
                    #expect(status.status == .ok && status.json["revocations"] == .number(Double(keys.count)), "\(status.text)")
                    let (snapshot, _) = try await snapshot(client)
                    #expect(snapshot.revocations == keys.count)
                }
            }
        }
    }

    @Test func snapshotsHoldEveryAcknowledgedChangeWithoutScanningRedis() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, redis, _) async throws in
            let admin = "admin-secret"
            for index in 0..<20 {
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"first-\#(index)","expires_at":null}"#, key: admin).status == .created)
            }
            let (first, _) = try await snapshot(client)
            #expect((0..<20).allSatisfy { first.filter.mightContain("first-\($0)") } && first.revocations == 20)
            let scanned = try await scans(redis)

            for index in 0..<20 {
                #expect(try await client.call(.post, "/v1/revocations", json: #"{"jti":"second-\#(index)","expires_at":null}"#, key: admin).status == .created)
            }
            #expect(try await client.call(.delete, "/v1/revocations/first-0", key: admin).status == .noContent)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"alice"}"#, key: admin).status == .created)
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"leaked"}"#, key: admin).status == .created)
            // Asked at once after the last acknowledgement: it holds all of them.
            let (second, cursor) = try await snapshot(client)
            #expect((0..<20).allSatisfy { second.filter.mightContain("second-\($0)") })
            #expect(second.revocations == 39)
            #expect(second.cutoffs.map(\.value) == ["alice"] && second.keyBlocks == ["leaked"])
            let last = try #require(try await redis.xrange("revoke:events").last?.id)
            #expect(cursor == last && second.cursor == last)
            // Served without a scan of Redis.
            #expect(try await scans(redis) == scanned)

            let status = try await client.call(.get, "/v1/status", key: admin)
            #expect(status.status == .ok && status.json["revocations"] == .number(39) && status.json["cursor"] == .string(last))
        }
    }
}

/// A `revoked` that missed events (frozen while the log was trimmed past it) loads everything
/// again before it serves a snapshot: a client loading it refuses every revocation.
@Suite struct SnapshotGapTests {
    @Test func aServerThatMissedEventsLoadsEverythingAgainBeforeServingASnapshot() async throws {
        try await withLaggingAndWriter { portA, portB, lagging in
            // The lagging one has loaded and follows the log.
            #expect(try await RawHTTP.requestUntilNot503(port: portA, path: "/v1/snapshot").hasPrefix("HTTP/1.1 200"))

            lagging.signal(SIGSTOP)
            let written = (0..<300).map { "missed-\($0)" }
            for jti in written { try await RawHTTP.revoke(port: portB, jti: jti, key: "k-0123456789abcdef") }
            lagging.signal(SIGCONT)

            try await withCachingClient(port: portA, cache: .init(staleness: .seconds(30))) { client in
                for jti in written {
                    let verdict = await client.check(CheckQuery(jti: jti))
                    #expect(verdict.revoked && verdict.reason == .jti, "\(jti): \(verdict)")
                }
            }
        }
    }
}
