import ChildProcess
import Foundation
import LoopbackHTTP
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `revoked` as a process, as a user runs it.
@Suite struct RevokedProcessTests {
    /// SIGTERM stops it accepting connections, lets the requests in flight finish, then closes
    /// Redis and exits 0.
    @Test func sigtermDrainsRequestsInFlight() async throws {
        try await withRedisServer { redis in
            let port = try RedisServerProcess.freeLoopbackPort()
            let revoked = try Revoked.start(
                port: port, redisURL: "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0")
            defer { revoked.process.signal(SIGKILL) }
            try await revoked.waitUntilReady()

            // A check whose body is not all there yet: the server has begun it and cannot answer
            // it until the last byte arrives, however long that takes.
            let inFlight = try await RawHTTP.hold(port: port, path: "/v1/check", json: #"{"jti":"drain-1"}"#)
            revoked.process.signal(SIGTERM)
            // Draining: the listener closes, so a new client is refused, never queued.
            try await waitUntil("the listener is closed") {
                do {
                    _ = try await RawHTTP.request(port: port, path: "/healthz")
                    return false
                } catch let failure as LoopbackSocket.Failure {
                    return failure.code == ECONNREFUSED
                } catch {
                    return false
                }
            }
            #expect(!revoked.process.hasExited, "revoked exited with a request in flight")

            let answer = try await inFlight.finish()
            #expect(answer.contains("HTTP/1.1 200"), "\(answer.suffix(300))")
            #expect(answer.hasSuffix(#"{"revoked":false}"#), "\(answer.suffix(200))")
            let status = await revoked.process.waitUntilExit()
            #expect(ChildProcess.exitCode(of: status) == 0, "\(revoked.log())")
        }
    }

    /// Even at `trace`, the log holds no token, no part of a signature, no API key, no secret
    /// and no Redis password, whatever the requests: only `jti` values, codes and hashes.
    @Test func logsNeverHoldTokensOrSecrets() async throws {
        try await withRedisServer { redis in
            let port = try RedisServerProcess.freeLoopbackPort()
            let password = redis.options.password!
            let (adminSecret, verifierSecret) = ("admin-\(UUID().uuidString)", "verifier-\(UUID().uuidString)")
            let revoked = try Revoked.start(
                port: port, redisURL: "redis://:\(password)@127.0.0.1:\(redis.port)/0",
                environment: [
                    "REVOKE_LOG_LEVEL": "trace", "REVOKE_HMAC_SECRET": testSecret,
                    "REVOKE_ADMIN_KEYS": "ops:\(adminSecret)", "REVOKE_VERIFIER_KEYS": "gateway:\(verifierSecret)",
                ])
            defer { revoked.process.signal(SIGKILL) }
            try await revoked.waitUntilReady()

            let token = Mint.hmac(payload: Mint.claims(jti: "logged-jti"))
            let forged = String(token.dropLast(6)) + "AAAAAA"
            let admin = ["Authorization": "Bearer \(adminSecret)"]
            let verifier = ["Authorization": "Bearer \(verifierSecret)"]
            var answers: [String] = []
            for body in [#"{"token":"\#(token)"}"#, #"{"token":"\#(forged)"}"#, #"{"tokens":["\#(token)","\#(forged)"]}"#] {
                answers.append(try await RawHTTP.request(port: port, method: "POST", path: "/v1/revoke", json: body))
            }
            answers.append(try await RawHTTP.request(port: port, method: "POST", path: "/v1/revoke", headers: ["Authorization": "Bearer \(forged)"], body: nil))
            answers.append(try await RawHTTP.request(
                port: port, method: "POST", path: "/oauth2/revoke",
                headers: ["Content-Type": "application/x-www-form-urlencoded"], body: "token=\(forged)"))
            answers.append(try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", headers: verifier, json: #"{"token":"\#(token)"}"#))
            answers.append(try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", headers: ["Authorization": "Bearer \(adminSecret)x"], json: "{}"))
            answers.append(try await RawHTTP.request(port: port, method: "GET", path: "/v1/audit", headers: verifier))
            answers.append(try await RawHTTP.request(
                port: port, method: "POST", path: "/v1/cutoffs", headers: admin, json: #"{"claim":"sub","value":"alice","reason":"test"}"#))
            answers.append(try await RawHTTP.request(port: port, method: "DELETE", path: "/v1/revocations/logged-jti", headers: admin))
            // A jti that tries to forge a log line of its own.
            answers.append(try await RawHTTP.request(
                port: port, method: "POST", path: "/v1/revocations", headers: admin,
                json: #"{"jti":"x\r\ncritical revoked: forged","expires_at":null}"#))
            // A token whose header's alg tries the same (the reason it is refused names its alg).
            let forgedAlg = Mint.token(header: #"{"alg":"HS256\r\ncritical revoked: alg","typ":"JWT"}"#, payload: Mint.claims()) { _ in [1, 2, 3] }
            answers.append(try await RawHTTP.request(port: port, method: "POST", path: "/v1/revoke", json: #"{"token":"\#(forgedAlg)"}"#))
            #expect(answers.map { String($0.prefix(12)) } == [
                "HTTP/1.1 200", "HTTP/1.1 401", "HTTP/1.1 200", "HTTP/1.1 401", "HTTP/1.1 200",
                "HTTP/1.1 200", "HTTP/1.1 401", "HTTP/1.1 403", "HTTP/1.1 201", "HTTP/1.1 204", "HTTP/1.1 201", "HTTP/1.1 401",
            ])
            redis.pause()
            _ = try await RawHTTP.request(port: port, method: "POST", path: "/v1/revoke", json: #"{"token":"\#(token)"}"#)
            redis.resume()
            await revoked.process.terminate()

            let log = revoked.log()
            #expect(log.contains("jti=logged-jti") && log.contains("action=cutoff"), "the log does not show the revocation and the cutoff: \(log)")
            // The logger's own metadata (the request's ID, set on each request) is in its lines.
            #expect(log.contains(" hb.request.id="), "the log lines lack the request ID: \(log)")
            #expect(!log.contains("\ncritical revoked: forged"), "a jti forged a log line")
            #expect(!log.contains("\ncritical revoked: alg"), "a token's alg forged a log line")
            let parts = token.split(separator: ".").map(String.init)
            for (name, secret) in [
                ("a token's signature", parts[2]), ("a forged signature", String(forged.split(separator: ".")[2])),
                ("a token's payload", parts[1]), ("the HMAC secret", testSecret), ("the admin key", adminSecret),
                ("the verifier key", verifierSecret), ("the Redis password", password),
            ] {
                #expect(!log.contains(secret), "the log holds \(name)")
            }
        }
    }
}
