import ChildProcess
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import LoopbackHTTP
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeClient
import RevokeCore
import RevokeHummingbird
@testable import RevokeServer
import RevokeSync
import RevokeTestSupport
import Testing

/// Each test sends what an attacker would send (docs/security.md), and proves it is refused.
@Suite struct SecurityTests {
    // MARK: - A credential read as leniently as the authenticator behind the middleware

    /// `Authorization: Bearer<TAB><revoked>` is a legal header that `split()`-based authenticators
    /// accept: the middleware must check that token, and refuse any `Authorization` it cannot read.
    @Test func theMiddlewareReadsEveryBearerFormTheAuthenticatorBehindItAccepts() async throws {
        try await withRevoked { (server, _, _) async throws in
            let port = try #require(server.port)
            let revoked = Mint.hmac(payload: Mint.claims(jti: "sec-tab"))
            #expect(try await server.call(.post, "/v1/revoke", json: #"{"token":"\#(revoked)"}"#).status == .ok)
            let revoke = RevokeClient(configuration: .init(url: "http://127.0.0.1:\(port)"), logger: Logger(label: "test.client"))
            let router = Router()
            router.add(middleware: RevocationMiddleware(client: revoke))
            router.get("/me") { _, _ in "ok" }
            let app = Application(router: router, logger: Logger(label: "test.verifier"))
            try await app.test(.router) { client in
                func get(_ values: [String]) async throws -> Reply {
                    var headers: HTTPFields = [:]
                    for value in values { headers.append(HTTPField(name: .authorization, value: value)) }
                    return try await client.call(.get, "/me", headers: headers)
                }
                for form in ["Bearer\t\(revoked)", "Bearer  \(revoked)", "bearer \(revoked)", "BEARER \t \(revoked)", " Bearer \(revoked) "] {
                    let answer = try await get([form])
                    #expect(answer.status == .unauthorized && answer.error == "invalid_token", "\(form.debugDescription): \(answer.status)")
                }
                // What the middleware cannot read as one bearer credential is refused, never passed on.
                for values in [["Bearer"], ["Bearer \t "], ["Bearer a b"], ["Bearer \(revoked)", "Bearer \(revoked)"], ["Basic eA==", "Bearer \(revoked)"], ["Basic eA==, Bearer \(revoked)"], ["Bearer:\(revoked)"]] {
                    let answer = try await get(values)
                    #expect(answer.status == .unauthorized && answer.error == "invalid_token", "\(values): \(answer.status)")
                }
                // No credential, or another scheme's, is the authenticator's to judge.
                #expect(try await get([]).text == "ok")
                #expect(try await get(["Basic dXNlcjpwYXNz"]).text == "ok")
            }
        }
    }

    // MARK: - The kid of the key that verified the token

    static func ecJWKS(_ key: P256.Signing.PrivateKey, kid: String) -> String {
        let x963 = Array(key.publicKey.x963Representation)
        return #"{"keys":[{"kty":"EC","crv":"P-256","kid":"\#(kid)","alg":"ES256","x":"\#(Mint.b64(x963[1...32]))","y":"\#(Mint.b64(x963[33...64]))"}]}"#
    }

    /// A token without `kid` is verified by the only key for its algorithm: a block on that key
    /// must refuse it, at introspection and at a check told which key verified it.
    @Test func aKeyBlockRefusesATokenWithoutKidVerifiedByTheBlockedKey() async throws {
        let ec = P256.Signing.PrivateKey()
        try await withRevoked { configuration in
            configuration.jwks = Self.ecJWKS(ec, kid: "ec-1")
        } _: { (client, _, _) async throws in
            let token = try Mint.es256(ec, payload: Mint.claims(jti: "sec-nokid", extra: #""sub":"alice""#))
            let form = "token=\(token)"
            func introspect() async throws -> Reply {
                try await client.call(.post, "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: form)
            }
            #expect(try await introspect().json["active"] == .bool(true))
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"ec-1","reason":"leaked"}"#, key: "admin-secret").status == .created)
            let after = try await introspect()
            #expect(after.json == ["active": .bool(false)], "\(after.text)")
            // /v1/check does not verify signatures: the verifier says which key verified the token.
            let checked = try await client.call(.post, "/v1/check", json: #"{"token":"\#(token)","kid":"ec-1"}"#)
            #expect(checked.json["reason"] == .string("key") && checked.json["kid"] == .string("ec-1"), "\(checked.text)")
            let batch = try await client.call(.post, "/v1/check/batch", json: #"{"checks":[{"token":"\#(token)","kid":"ec-1"}]}"#)
            #expect(batch.text.contains(#""reason":"key""#), "\(batch.text)")
            // A kid other than the header's cannot hide a block on the header's.
            let named = try Mint.es256(ec, payload: Mint.claims(jti: "sec-named"), kid: "ec-1")
            let other = try await client.call(.post, "/v1/check", json: #"{"token":"\#(named)","kid":"ec-2"}"#)
            #expect(other.status == .badRequest && other.error == "invalid_request", "\(other.text)")
            #expect(try await client.call(.post, "/v1/check", json: #"{"token":"\#(named)"}"#).json["reason"] == .string("key"))
            let revoke = RevokeClient(configuration: .init(url: "http://127.0.0.1:\(try #require(client.port))"), logger: Logger(label: "test.client"))
            #expect(await revoke.check(token: token, kid: "ec-1").reason == .key(kid: "ec-1"))
            #expect(await revoke.check(token: named, kid: "ec-2").revoked)
        }
    }

    /// kids are compared byte for byte, as blocks are stored: a canonically equivalent spelling
    /// is another kid, so a token cannot borrow the key while dodging its block.
    @Test func kidsAreComparedByteForByte() async throws {
        let ec = P256.Signing.PrivateKey()
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
        try await withRevoked { configuration in
            configuration.jwks = Self.ecJWKS(ec, kid: composed)
        } _: { (client, _, _) async throws in
            #expect(try await client.call(.post, "/v1/key-blocks", json: #"{"kid":"\#(composed)"}"#, key: "admin-secret").status == .created)
            let token = try Mint.es256(ec, payload: Mint.claims(jti: "sec-nfd"), kid: decomposed)
            let answer = try await client.call(.post, "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token=\(token)")
            #expect(answer.json == ["active": .bool(false)], "\(answer.text)")
        }
    }

    // MARK: - Back-channel logout: no replay writes, exp required, the audience required

    static let issuer = "https://op.example"
    static let audience = "revoke-tests"
    static let event = #""events":{"http://schemas.openid.net/event/backchannel-logout":{}}"#

    func postLogout(_ client: some TestClientProtocol, _ token: String) async throws -> Reply {
        try await client.call(.post, "/v1/backchannel-logout", contentType: "application/x-www-form-urlencoded", body: "logout_token=\(token)")
    }

    @Test func aReplayedLogoutTokenWritesNothingAndCannotUndoAnAdministrator() async throws {
        try await withRevoked { configuration in
            configuration.issuer = Self.issuer
            configuration.audience = Self.audience
        } _: { (client, redis, _) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let tokens = try await pyjwtTokens([
                #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now - 5),"exp":\#(now + 300),"jti":"bcl-1","sub":"mallory",\#(Self.event)}"#
            ])
            #expect(try await postLogout(client, tokens[0]).status == .ok)
            #expect(try await client.call(.post, "/v1/cutoffs", json: #"{"claim":"sub","value":"zed","reason":"INC-7"}"#, key: "admin-secret").status == .created)
            let audit = try await redis.send(RedisCommand("LLEN", "revoke:audit")).integer
            let events = try await redis.send(RedisCommand("XLEN", "revoke:events")).integer
            for _ in 0..<5 { #expect(try await postLogout(client, tokens[0]).status == .ok) }
            #expect(try await redis.send(RedisCommand("LLEN", "revoke:audit")).integer == audit, "a replay wrote to the audit")
            #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")).integer == events)
            // An administrator lifts the cutoff; a replay of the logout token must not put it back.
            #expect(try await client.call(.delete, "/v1/cutoffs/sub/mallory", key: "admin-secret").status == .noContent)
            #expect(try await postLogout(client, tokens[0]).status == .ok)
            #expect(try await client.call(.get, "/v1/cutoffs/sub/mallory").status == .notFound)
            let entries = try await client.call(.get, "/v1/audit?limit=10", key: "admin-secret")
            #expect(entries.text.contains("INC-7"), "\(entries.text)")
        }
    }

    @Test func aLogoutTokenNeedsExpAndAConfiguredAudience() async throws {
        let now = Int(Date().timeIntervalSince1970)
        let tokens = try await pyjwtTokens([
            #"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","iat":\#(now - 5),"jti":"bcl-noexp","sub":"eve",\#(Self.event)}"#,
            #"{"iss":"\#(Self.issuer)","aud":"another-app","iat":\#(now - 5),"exp":\#(now + 300),"jti":"bcl-other","sub":"eve",\#(Self.event)}"#,
        ])
        try await withRevoked { configuration in
            configuration.issuer = Self.issuer
            configuration.audience = Self.audience
        } _: { (client, _, _) async throws in
            let answer = try await postLogout(client, tokens[0])
            #expect(answer.status == .badRequest && answer.error == "invalid_request", "\(answer.text)")
        }
        // Without REVOKE_AUDIENCE, a logout token issued to any application would be accepted.
        try await withRevoked { configuration in
            configuration.issuer = Self.issuer
        } _: { (client, redis, _) async throws in
            let answer = try await postLogout(client, tokens[1])
            #expect(answer.status == .badRequest && answer.error == "invalid_request", "\(answer.text)")
            #expect(try await redis.send(RedisCommand("EXISTS", "revoke:cut:sub:eve")).integer == 0)
        }
    }

    // MARK: - A logout never weakens what an administrator recorded

    @Test func aLogoutCannotEraseAnIncidentRecord() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let admin = try await client.call(
                .post, "/v1/revocations", json: #"{"jti":"inc-42","expires_at":null,"reason":"INC-42"}"#, key: "admin-secret")
            #expect(admin.status == .created)
            let before = try await client.call(.get, "/v1/revocations/inc-42").json
            let token = Mint.hmac(payload: Mint.claims(jti: "inc-42", lifetime: 600))
            let logout = try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(token)"}"#)
            #expect(logout.status == .ok && logout.json["revoked"] == .bool(true), "\(logout.text)")
            let after = try await client.call(.get, "/v1/revocations/inc-42").json
            #expect(after == before, "\(after) was \(before)")
            #expect(try await redis.send(RedisCommand("TTL", "revoke:jti:inc-42")).integer == -1)

            // A record that ends sooner than the token is made longer, its reason kept.
            let soon = Int64(Date().timeIntervalSince1970) + 60
            #expect(try await client.call(
                .post, "/v1/revocations", json: #"{"jti":"inc-43","expires_at":\#(soon),"reason":"INC-43"}"#, key: "admin-secret").status == .created)
            let later = Int64(Date().timeIntervalSince1970) + 3600
            let longer = Mint.hmac(payload: Mint.claims(jti: "inc-43", expiresAt: later))
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(longer)"}"#).status == .ok)
            let extended = try await client.call(.get, "/v1/revocations/inc-43").json
            #expect(extended["reason"] == .string("INC-43") && extended["expires_at"] == .number(Double(later)), "\(extended)")
            // A shorter token changes nothing.
            let events = try await redis.send(RedisCommand("XLEN", "revoke:events")).integer
            let shorter = Mint.hmac(payload: Mint.claims(jti: "inc-43", lifetime: 30))
            #expect(try await client.call(.post, "/v1/revoke", json: #"{"token":"\#(shorter)"}"#).status == .ok)
            #expect(try await client.call(.get, "/v1/revocations/inc-43").json == extended)
            #expect(try await redis.send(RedisCommand("XLEN", "revoke:events")).integer == events)
        }
    }

    // MARK: - Replays never share the checks' connection; one client cannot take every stream

    /// Redis' MONITOR names the connection of every command: the connection that answers checks
    /// (`EXISTS`) must never carry a replay's read of the log.
    @Test func aFullReplayRunsOnAConnectionOfItsOwn() async throws {
        try await withRevokedProcess(environment: ["REVOKE_ADMIN_KEYS": "ops:\(Self.adminSecret)"]) { server, redis in
            let port = server.port
            for index in 0..<600 { try await RawHTTP.revoke(port: port, jti: "replayed-\(index)", key: Self.adminSecret) }
            let monitor = try await RawHTTP.onThread { () throws -> HeldSockets in
                let socket = try LoopbackSocket(port: redis.port, timeout: 60)
                try socket.write("AUTH \(redis.options.password!)\r\nMONITOR\r\n")
                _ = try socket.read(until: { $0.components(separatedBy: "+OK").count > 2 })
                return HeldSockets([socket])
            }
            let marker = "monitor-marker-\(UUID().uuidString)"
            _ = try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", json: #"{"jti":"\#(marker)-1"}"#)
            // A full replay, read until the stream has caught up (its first heartbeat).
            _ = try await RawHTTP.onThread {
                let socket = try LoopbackSocket(port: port, timeout: 60)
                try socket.write("GET /v1/events?since=0-0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return try socket.read(until: { $0.contains(": heartbeat") })
            }
            _ = try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", json: #"{"jti":"\#(marker)-2"}"#)
            let seen = try await RawHTTP.onThread { try monitor.sockets[0].read(until: { $0.contains("\(marker)-2") }) }
            // `<time> [<db> <address>] "COMMAND" ...`
            func addresses(of command: String) -> Set<String> {
                Set(seen.split(whereSeparator: \.isNewline).filter { $0.contains("] \"\(command)\"") || $0.contains("] \"\(command.lowercased())\"") }.compactMap { line in
                    line.split(separator: "[").dropFirst().first?.split(separator: "]").first?.split(separator: " ").last.map(String.init)
                })
            }
            let checks = addresses(of: "EXISTS")
            // A replay reads pages of 500 (the keeper that follows the log reads 1000).
            #expect(Replays.pageSize != EventHub.pageSize)
            // A page and its proof are one script: `EVALSHA <sha> 2 revoke:events revoke:events:trim (<cursor> 500`.
            let replays = Set(seen.split(whereSeparator: \.isNewline).filter { $0.contains(#""revoke:events:trim""#) && $0.hasSuffix(#" "\#(Replays.pageSize)""#) }.compactMap { line in
                line.split(separator: "[").dropFirst().first?.split(separator: "]").first?.split(separator: " ").last.map(String.init)
            })
            #expect(!checks.isEmpty && !replays.isEmpty, "\(seen.suffix(2000))")
            #expect(
                checks.isDisjoint(with: replays),
                "checks on \(checks), replays on \(replays): \(seen.split(whereSeparator: \.isNewline).filter { $0.contains("revoke:events") || $0.contains("EXISTS") })")
        }
    }

    static let adminSecret = "security-tests-admin-key-0123456789"

    /// One client (by address when no verifier key is configured) may hold only so many
    /// streams: the next answers 429 with Retry-After, and the rest of the instance is untouched.
    @Test func oneClientCannotTakeEveryStream() async throws {
        try await withRevokedProcess(environment: ["REVOKE_MAX_STREAMS_PER_CLIENT": "2"]) { server, redis in
            let port = server.port
            // Opened once the instance follows the log (until then a stream answers 503, which
            // holds nothing): /readyz says Redis answers, not that the hub has read the log yet.
            let open = [try await OpenStream.live(port: port, path: "/v1/events"), try await OpenStream.live(port: port, path: "/v1/events")]
            // Only the head and what follows it at once: a stream that was let in never ends.
            let refused = try await RawHTTP.onThread { () throws -> String in
                let socket = try LoopbackSocket(port: port, timeout: 60)
                try socket.write("GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return try socket.read(until: { $0.hasPrefix("HTTP/1.1 200") ? $0.contains("\r\n\r\n") : $0.contains("}") })
            }
            #expect(refused.hasPrefix("HTTP/1.1 429"), "\(refused)")
            #expect(refused.lowercased().contains("retry-after:") && refused.contains(#""error":"too_many_requests""#), "\(refused)")
            // Checks go on.
            let check = try await RawHTTP.request(port: port, method: "POST", path: "/v1/check", json: #"{"jti":"x"}"#)
            #expect(check.hasPrefix("HTTP/1.1 200"))
            #expect(open.count == 2)
        }
    }

    // MARK: - Bodies have a deadline; connections are bounded

    /// `Content-Length: 65536` and a byte now and then must not hold a connection for weeks.
    @Test func aTrickledBodyIsAnswered408() async throws {
        try await withRevokedProcess(environment: ["REVOKE_BODY_TIMEOUT": "1"]) { server, redis in
            let port = server.port
            let answer = try await RawHTTP.onThread { () throws -> String in
                let socket = try LoopbackSocket(port: port, timeout: 60)
                try socket.write("POST /v1/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{")
                // A byte at a time until the server answers (the deadline is 1 s; the trickle
                // outlasts any plausible delay, and stops the moment an answer arrives).
                var answer = ""
                for _ in 0..<600 {
                    var ready = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
                    if poll(&ready, 1, 100) > 0 {
                        answer = try socket.read(until: { $0.contains("}") })
                        break
                    }
                    do { try socket.write(" ") } catch { break }
                }
                return answer
            }
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
            #expect(answer.contains(#""error":"request_timeout""#), "\(answer)")
        }
    }

    @Test func connectionsBeyondTheLimitAreAnswered503AndTheOthersServed() async throws {
        try await withRevokedProcess(environment: ["REVOKE_MAX_CONNECTIONS": "4"]) { server, _ in
            let port = server.port
            // Four connections served: the limit is reached. (Until the server has let go of the
            // connection that saw it ready, one of them may be refused: then hold them again.)
            var held = HeldSockets([])
            try await waitUntil("four connections are served at once") {
                held = HeldSockets([])
                let sockets = try? await RawHTTP.onThread { () throws -> HeldSockets in
                    HeldSockets(try (0..<4).map { _ in
                        let socket = try LoopbackSocket(port: port, timeout: 60)
                        try socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                        let answer = try socket.read(until: { $0.contains("\r\n\r\n") && $0.hasSuffix("}") })
                        guard answer.hasPrefix("HTTP/1.1 200") else { throw SetupError("refused: \(answer)") }
                        return socket
                    })
                }
                guard let sockets else { return false }
                held = sockets
                return true
            }
            let refused = try await RawHTTP.request(port: port, path: "/healthz")
            #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused)")
            #expect(refused.contains(#""error":"overloaded""#) && refused.lowercased().contains("retry-after:"), "\(refused)")
            // One held connection goes (its socket closes as it is dropped): a new one is served again.
            held.sockets.removeLast()
            try await waitUntil("a connection is served once one of the limit's goes") {
                ((try? await RawHTTP.request(port: port, path: "/healthz")) ?? "").hasPrefix("HTTP/1.1 200")
            }
            #expect(held.sockets.count == 3)
        }
    }

    // MARK: - The embedded Redis's files are private from the start

    @Test func theEmbeddedRedisFilesArePrivate() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "revoke-private-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A configuration file left readable by an older version is made private too.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        FileManager.default.createFile(atPath: directory + "/redis.conf", contents: Data("old".utf8), attributes: [.posixPermissions: 0o644])
        let server = try await RedisServerProcess.start(.init(directory: directory, appendOnly: true))
        await server.stop()
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        }
        #expect(try mode(directory) == 0o700)
        #expect(try mode(directory + "/redis.conf") == 0o600)
        let fresh = FileManager.default.temporaryDirectory.appending(path: "revoke-private-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: fresh) }
        let second = try await RedisServerProcess.start(.init(directory: fresh + "/data", appendOnly: true))
        await second.stop()
        #expect(try mode(fresh + "/data") == 0o700)
    }

    // MARK: - Smaller ones

    @Test func shortAPIKeysAreRefusedAtStartAndSecretsComeFromFiles() throws {
        for variable in ["REVOKE_ADMIN_KEYS", "REVOKE_VERIFIER_KEYS"] {
            #expect(throws: ServerConfiguration.Error.self) { try ServerConfiguration(variables: [variable: "a:b"]) }
            do {
                _ = try ServerConfiguration(variables: [variable: "ops:short-secret"])
                Issue.record("\(variable) accepted a 12-byte secret")
            } catch {
                #expect(error.variable == variable && error.description.contains("16"), "\(error)")
                #expect(!error.description.contains("short-secret"), "the error quotes the secret")
            }
        }
        let path = FileManager.default.temporaryDirectory.appending(path: "keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "ops:\(Self.adminSecret)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try ServerConfiguration(variables: ["REVOKE_ADMIN_KEYS_FILE": path])
        #expect(configuration.adminKeys == [APIKey(name: "ops", secret: Self.adminSecret, role: .admin)])
        #expect(throws: ServerConfiguration.Error.self) {
            try ServerConfiguration(variables: ["REVOKE_ADMIN_KEYS_FILE": path, "REVOKE_ADMIN_KEYS": "ops:\(Self.adminSecret)"])
        }
    }

    /// A secret given as a flag is in the process list for every local user to read: said at
    /// start, as `revokectl` does; and open verifier endpoints are said too.
    @Test func revokedWarnsOfSecretFlagsAndOpenVerifierEndpoints() async throws {
        try await withRevokedProcess(arguments: ["--hmac-secret", testSecret]) { server, _ in
            let log = server.log()
            #expect(log.contains("--hmac-secret") && log.contains("REVOKE_HMAC_SECRET_FILE"), "\(log)")
            #expect(!log.contains(testSecret))
            #expect(log.contains("verifier endpoints are open"), "\(log)")
        }
    }

}

/// `revoked` as a user runs it (the executable, its environment and flags) on a private
/// redis-server, once ready; killed after `body`.
func withRevokedProcess(
    environment: [String: String] = [:], arguments: [String] = [], _ body: (Revoked, RedisServerProcess) async throws -> Void
) async throws {
    try await withRedisServer { redis in
        let url = "redis://:\(redis.options.password!)@127.0.0.1:\(redis.port)/0"
        // A free port can be taken by another test before revoked binds it: try another.
        var attempt = 0
        while true {
            attempt += 1
            let server = try Revoked.start(
                port: try RedisServerProcess.freeLoopbackPort(), redisURL: url, environment: environment, arguments: arguments)
            defer { server.process.signal(SIGKILL) }
            do {
                try await server.waitUntilReady()
            } catch let error as Revoked.ReadinessError where attempt < 3 && error.log.contains("Address already in use") {
                continue
            }
            try await body(server, redis)
            return
        }
    }
}

/// Sockets a test holds open across awaits. `@unchecked Sendable`: one task uses them at a time,
/// each step awaited before the next.
final class HeldSockets: @unchecked Sendable {
    var sockets: [LoopbackSocket]
    init(_ sockets: [LoopbackSocket]) { self.sockets = sockets }
}
