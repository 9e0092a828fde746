import BenchmarkSupport
import ChildProcess
import Crypto
import CryptoExtras
import Foundation
import LoopbackHTTP
import RedisSupervisor
import RevokeCore

/// `make bench` (gateway part): `/v1/forward-auth` against `POST /v1/check` on the same
/// `revoked`, with a repeating set of 1,000 tokens each of HS256, RS256 and ES256, once with the
/// verified-token cache and once without it (`REVOKE_VERIFIED_TOKEN_CACHE=0`); nginx with the
/// shipped `auth_request` recipe (`config/gateways/nginx.conf`) in front of a static upstream
/// against the same nginx proxying that upstream directly; and the time from a revocation's
/// `200` to the first `401` at the gateway. Everything is started here, on loopback, in one run,
/// with the same wrk settings.
@main
struct GatewayBenchmark {
    typealias Result = Wrk.Result

    static let gatewayKey = "bench-gateway-key-0123456789"
    static let adminKey = "bench-admin-key-1234"

    static func main() async throws {
        let option = commandLineOption
        let seconds = Int(option("--seconds", "10")) ?? 10
        let connections = Int(option("--connections", "50")) ?? 50
        let trials = Int(option("--trials", "200")) ?? 200
        let here = FileManager.default.currentDirectoryPath
        let scripts = option("--scripts", here + "/Benchmarks/wrk")
        let recipe = option("--recipe", here + "/config/gateways/nginx.conf")
        let work = FileManager.default.temporaryDirectory.appending(path: "revoke-gateway-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: work) }

        // The issuer's keys: an HMAC secret, an RSA key (PEM) and an EC key (JWKS, with a kid).
        let hmacSecret = RedisServerProcess.randomPassword() + RedisServerProcess.randomPassword()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let ec = P256.Signing.PrivateKey()
        try rsa.publicKey.pemRepresentation.write(toFile: work + "/rsa.pem", atomically: true, encoding: .utf8)
        let point = Array(ec.publicKey.x963Representation)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","x":"\#(Base64URL.encode(point[1...32]))","y":"\#(Base64URL.encode(point[33...64]))"}]}"#
        try jwks.write(toFile: work + "/jwks.json", atomically: true, encoding: .utf8)
        let signers: [(name: String, header: String, sign: (Data) throws -> [UInt8])] = [
            ("HS256", #"{"alg":"HS256","typ":"JWT"}"#, { Array(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Array(hmacSecret.utf8)))) }),
            ("RS256", #"{"alg":"RS256","typ":"JWT"}"#, { Array(try rsa.signature(for: $0, padding: .insecurePKCS1v1_5).rawRepresentation) }),
            ("ES256", #"{"alg":"ES256","typ":"JWT","kid":"ec-1"}"#, { Array(try ec.signature(for: $0).rawRepresentation) }),
        ]
        var tokenFiles: [String: String] = [:]
        for signer in signers {
            let tokens = try (0..<1000).map { try Self.mint(header: signer.header, jti: "bench-\(signer.name)-\($0)", sign: signer.sign) }
            tokenFiles[signer.name] = work + "/tokens-\(signer.name).txt"
            try (tokens.joined(separator: "\n") + "\n").write(toFile: tokenFiles[signer.name]!, atomically: true, encoding: .utf8)
        }

        var owned: [ChildProcess] = []
        var results: [Result] = []
        var runs = 0
        func wrk(_ name: String, script: String, port: Int, extra: [String: String] = [:]) async throws -> Result {
            runs += 1
            let run = try Wrk.start(
                script: script, port: port, connections: connections, seconds: seconds, output: work + "/wrk-\(runs).txt", environment: extra)
            let result = try await run.finish(name)
            print(String(format: "  %@: %.0f req/s, p50 %.2f ms, p99 %.2f ms, non-2xx %d", name, result.rps, result.p50, result.p99, result.non2xx))
            results.append(result)
            return result
        }
        func startRevoked(_ name: String, extra: [String: String] = [:]) async throws -> Int {
            var environment = [
                "REVOKE_ADMIN_KEYS": "bench:\(adminKey)", "REVOKE_VERIFIER_KEYS": "gateway:\(gatewayKey)",
                "REVOKE_HMAC_SECRET": hmacSecret, "REVOKE_PUBLIC_KEY_FILE": work + "/rsa.pem", "REVOKE_JWKS_FILE": work + "/jwks.json",
            ]
            environment.merge(extra) { $1 }
            let started = try await startRevokedOnOwnRedis(
                directory: work + "/redis-\(name)", environment: environment, log: work + "/revoked-\(name).log")
            owned += [started.redis.process, started.revoked]
            return started.port
        }

        var latencies: [Double] = []
        var extraRequests = 0
        do {
            print("wrk -t2 -c\(connections) -d\(seconds)s on 127.0.0.1, one target at a time; every target started here, now")
            let port = try await startRevoked("cached")
            // The answers are real: every kind of token passes, and a revoked one does not.
            for signer in signers {
                let token = try String(contentsOfFile: tokenFiles[signer.name]!, encoding: .utf8).split(separator: "\n")[0]
                let answer = try Self.forward(port: port, token: String(token))
                guard answer.hasPrefix("HTTP/1.1 200"), answer.contains("Revoke-Jti: bench-\(signer.name)-0") else {
                    throw BenchmarkError("forward-auth refused a valid \(signer.name) token: \(answer.prefix(300))")
                }
            }
            let revokedToken = try Self.mint(header: signers[0].header, jti: "bench-revoked", sign: signers[0].sign)
            _ = try LoopbackSocket.exchange(port: port, method: "POST", path: "/v1/revoke", headers: ["Content-Type": "application/json"], body: #"{"token":"\#(revokedToken)"}"#)
            guard try Self.forward(port: port, token: revokedToken).hasPrefix("HTTP/1.1 401") else {
                throw BenchmarkError("forward-auth let a revoked token through")
            }

            let check = try await wrk("POST /v1/check", script: scripts + "/check.lua", port: port, extra: ["REVOKE_VERIFIER_KEY": gatewayKey])
            var cached: [String: Result] = [:]
            for signer in signers {
                cached[signer.name] = try await wrk(
                    "forward-auth \(signer.name)", script: scripts + "/forward_auth.lua", port: port,
                    extra: ["TOKENS_FILE": tokenFiles[signer.name]!, "REVOKE_GATEWAY_KEY": gatewayKey])
            }
            let uncachedPort = try await startRevoked("uncached", extra: ["REVOKE_VERIFIED_TOKEN_CACHE": "0"])
            var uncached: [String: Result] = [:]
            for signer in signers {
                uncached[signer.name] = try await wrk(
                    "forward-auth \(signer.name), no cache", script: scripts + "/forward_auth.lua", port: uncachedPort,
                    extra: ["TOKENS_FILE": tokenFiles[signer.name]!, "REVOKE_GATEWAY_KEY": gatewayKey])
            }

            // nginx with the shipped recipe, a direct proxy beside it, and the static upstream.
            guard let nginx = ChildProcess.findExecutable("nginx") else { throw BenchmarkError("nginx is missing (apt-get install nginx)") }
            let gatewayPort = try RedisServerProcess.freeLoopbackPort()
            let directPort = try RedisServerProcess.freeLoopbackPort()
            let apiPort = try RedisServerProcess.freeLoopbackPort()
            var server = try String(contentsOfFile: recipe, encoding: .utf8)
            for (placeholder, value) in [
                ("server 127.0.0.1:8080;", "server 127.0.0.1:\(port);"), ("server 127.0.0.1:9000;", "server 127.0.0.1:\(apiPort);"),
                ("listen 127.0.0.1:8000;", "listen 127.0.0.1:\(gatewayPort);"), ("REPLACE-WITH-THE-GATEWAY-VERIFIER-KEY", gatewayKey),
            ] {
                guard server.contains(placeholder) else { throw BenchmarkError("the recipe \(recipe) has no \(placeholder)") }
                server = server.replacingOccurrences(of: placeholder, with: value)
            }
            let config = nginxConfiguration(
                directory: work, workerConnections: 4096,
                http: """
                    \(server)
                    # The same upstream, proxied without asking Revoke.
                    server {
                        listen 127.0.0.1:\(directPort);
                        location / { proxy_pass http://api; }
                    }
                    # The static upstream.
                    server {
                        listen 127.0.0.1:\(apiPort);
                        location / { return 200 "0123456789abcdefghi\\n"; }
                    }
                    """)
            try config.write(toFile: work + "/nginx.conf", atomically: true, encoding: .utf8)
            let gateway = try ChildProcess.spawn(nginx, arguments: ["-c", work + "/nginx.conf", "-p", work], standardError: work + "/nginx-start.log")
            owned.append(gateway)
            try await waitForHTTP(port: directPort, path: "/", what: "nginx")
            let hsTokens = ["TOKENS_FILE": tokenFiles["HS256"]!, "FORWARD_PATH": "/"]
            let direct = try await wrk("nginx proxying the upstream", script: scripts + "/forward_auth.lua", port: directPort, extra: hsTokens)
            let guarded = try await wrk("nginx auth_request, HS256", script: scripts + "/forward_auth.lua", port: gatewayPort, extra: hsTokens)

            // A revocation to the first 401 at the gateway: a session's token passes, its logout
            // is acknowledged, then the gateway is asked until it refuses the token.
            for trial in 0..<trials {
                let token = try Self.mint(header: signers[0].header, jti: "bench-logout-\(trial)", sign: signers[0].sign)
                guard try Self.forward(port: gatewayPort, path: "/", token: token, key: nil).hasPrefix("HTTP/1.1 200") else {
                    throw BenchmarkError("the gateway refused a valid token")
                }
                let logout = try LoopbackSocket.exchange(
                    port: port, method: "POST", path: "/v1/revoke", headers: ["Content-Type": "application/json"], body: #"{"token":"\#(token)"}"#)
                guard logout.hasPrefix("HTTP/1.1 200") else { throw BenchmarkError("the logout failed: \(logout.prefix(200))") }
                let acknowledged = ContinuousClock.now
                var asked = 0
                while true {
                    asked += 1
                    if try Self.forward(port: gatewayPort, path: "/", token: token, key: nil).hasPrefix("HTTP/1.1 401") { break }
                    if asked > 10_000 { throw BenchmarkError("the gateway kept passing a revoked token") }
                }
                latencies.append(Double((ContinuousClock.now - acknowledged) / .microseconds(1)) / 1000)
                extraRequests += asked - 1
            }
            latencies.sort()

            for process in owned.reversed() { await process.terminate() }
            owned.removeAll()

            print("")
            print("target".padding(toLength: 40, withPad: " ", startingAt: 0) + "     req/s   p50 ms   p99 ms  non-2xx  errors")
            for result in results {
                print(
                    result.name.padding(toLength: 40, withPad: " ", startingAt: 0)
                        + String(format: "%10.0f %8.2f %8.2f %8d %7d", result.rps, result.p50, result.p99, result.non2xx, result.socketErrors))
            }
            print("")
            for signer in signers {
                let target = signer.name == "HS256" ? 80.0 : 60.0
                print(String(
                    format: "forward-auth %@ vs POST /v1/check:      %3.0f%% (target >= %.0f%%); without the verified-token cache %3.0f%%, so the cache gives %.1fx",
                    signer.name, 100 * cached[signer.name]!.rps / check.rps, target, 100 * uncached[signer.name]!.rps / check.rps,
                    cached[signer.name]!.rps / uncached[signer.name]!.rps))
            }
            print(String(format: "nginx auth_request vs nginx proxying directly:  %3.0f%% (target >= 35%%)", 100 * guarded.rps / direct.rps))
            func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)] }
            print(String(
                format: "a revocation to the first 401 at the gateway, %d logouts: p50 %.2f ms, p99 %.2f ms (target <= 5), max %.2f ms; requests passed after the acknowledgement: %d",
                latencies.count, percentile(0.5), percentile(0.99), latencies.last ?? 0, extraRequests))
        } catch {
            for process in owned.reversed() { await process.terminate() }
            throw error
        }
    }

    /// A compact JWS with `header`, for `jti`, valid for an hour, signed by `sign`.
    static func mint(header: String, jti: String, sign: (Data) throws -> [UInt8]) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let input = Base64URL.encode(Array(header.utf8)) + "."
            + Base64URL.encode(Array(#"{"jti":"\#(jti)","sub":"user-\#(jti)","iat":\#(now),"exp":\#(now + 3600)}"#.utf8))
        return input + "." + Base64URL.encode(try sign(Data(input.utf8)))
    }

    /// One forwarded request (its own connection), as a gateway sends it.
    static func forward(port: Int, path: String = "/v1/forward-auth", token: String, key: String? = gatewayKey) throws -> String {
        var headers = ["Authorization": "Bearer \(token)"]
        if let key { headers["Revoke-Key"] = key }
        return try LoopbackSocket.exchange(port: port, method: "GET", path: path, headers: headers)
    }
}
