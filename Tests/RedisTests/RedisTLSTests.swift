import Foundation
import Redis
import RedisSupervisor
import RedisTestSupport
import Testing

/// `rediss://` against Debian's `redis-server` serving TLS with certificates made for the test:
/// the server's certificate is verified, its name or address checked, a client certificate sent
/// when asked; anything else is a refused connection, never a downgrade and never a crash.
@Suite struct RedisTLSTests {
    /// A TLS `redis-server` (plain port too, for the harness), with the certificates.
    func withTLSServer(
        certificate: (TestCertificates) -> (String, String) = { ($0.serverCertificate, $0.serverKey) },
        clientCertificates: Bool = false,
        _ body: (RedisServerProcess, Int, TestCertificates) async throws -> Void
    ) async throws {
        let parent = FileManager.default.temporaryDirectory.appending(path: "revoke-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let certificates = try await TestCertificates.make(in: parent)
        let tlsPort = try RedisServerProcess.freeLoopbackPort()
        let (file, key) = certificate(certificates)
        try await withRedisServer(extraConfiguration: { _ in
            certificates.serverDirectives(port: tlsPort, certificate: file, key: key, clientCertificates: clientCertificates)
        }) { server in
            try await body(server, tlsPort, certificates)
        }
    }

    func configuration(_ server: RedisServerProcess, host: String = "127.0.0.1", port: Int, tls: RedisTLS?) -> RedisConfiguration {
        var configuration = server.configuration()
        configuration.host = host
        configuration.port = port
        configuration.tls = tls
        return configuration
    }

    func expectRefused(_ configuration: RedisConfiguration, _ why: Comment) async {
        do {
            let connection = try await RedisConnection.connect(to: configuration)
            connection.close()
            Issue.record("connected: \(why)")
        } catch let error as RedisError {
            #expect(error.code == .connectionFailed, "\(error)")
        } catch {
            Issue.record("not a RedisError: \(error)")
        }
    }

    @Test func aServerSignedByTheConfiguredAuthorityAnswers() async throws {
        try await withTLSServer { server, tlsPort, certificates in
            for host in ["127.0.0.1", "localhost"] {
                let connection = try await RedisConnection.connect(
                    to: configuration(server, host: host, port: tlsPort, tls: RedisTLS(caFile: certificates.caFile)))
                defer { connection.close() }
                #expect(try await connection.send(RedisCommand("SET", "over-tls", host)) == .simpleString("OK"))
                #expect(try await connection.send(RedisCommand("GET", "over-tls")).string == host)
            }
            // The URL's scheme turns TLS on.
            let parsed = try RedisConfiguration(url: "rediss://:\(server.options.password!)@127.0.0.1:\(tlsPort)/0")
            #expect(parsed.tls == RedisTLS())
        }
    }

    @Test func anotherAuthorityIsRefused() async throws {
        try await withTLSServer { server, tlsPort, certificates in
            await expectRefused(
                configuration(server, port: tlsPort, tls: RedisTLS(caFile: certificates.otherCAFile)), "a server signed by another CA")
            // The system's trust store does not know the test's CA either.
            await expectRefused(configuration(server, port: tlsPort, tls: RedisTLS()), "a server the system store does not trust")
        }
    }

    @Test func aCertificateForAnotherHostIsRefused() async throws {
        try await withTLSServer(certificate: { ($0.elsewhereCertificate, $0.elsewhereKey) }) { server, tlsPort, certificates in
            for host in ["127.0.0.1", "localhost"] {
                await expectRefused(
                    configuration(server, host: host, port: tlsPort, tls: RedisTLS(caFile: certificates.caFile)),
                    "a certificate for elsewhere.example accepted for \(host)")
            }
        }
    }

    @Test func aServerThatAsksForAClientCertificateGetsOne() async throws {
        try await withTLSServer(clientCertificates: true) { server, tlsPort, certificates in
            await expectRefused(
                configuration(server, port: tlsPort, tls: RedisTLS(caFile: certificates.caFile)), "no client certificate, yet connected")
            let connection = try await RedisConnection.connect(
                to: configuration(
                    server, port: tlsPort,
                    tls: RedisTLS(caFile: certificates.caFile, certificateFile: certificates.clientCertificate, keyFile: certificates.clientKey)))
            defer { connection.close() }
            #expect(try await connection.send(RedisCommand("PING")) == .simpleString("PONG"))
        }
    }

    @Test func plainTextAndTLSNeverMeetHalfway() async throws {
        try await withTLSServer { server, tlsPort, certificates in
            // redis:// to the TLS port, rediss:// to the plain one: refused, and nothing crashes.
            await expectRefused(configuration(server, port: tlsPort, tls: nil), "clear text to a TLS port")
            await expectRefused(
                configuration(server, port: server.port, tls: RedisTLS(caFile: certificates.caFile)), "TLS to a clear-text port")
            // The server is still fine.
            let connection = try await RedisConnection.connect(to: configuration(server, port: tlsPort, tls: RedisTLS(caFile: certificates.caFile)))
            connection.close()
        }
    }

    @Test func unusableFilesAreConfigurationErrors() async throws {
        let parent = FileManager.default.temporaryDirectory.appending(path: "revoke-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let certificates = try await TestCertificates.make(in: parent)
        try "not a certificate".write(toFile: parent + "/junk.pem", atomically: true, encoding: .utf8)
        for settings in [
            RedisTLS(caFile: parent + "/missing.pem"), RedisTLS(caFile: parent + "/junk.pem"),
            RedisTLS(certificateFile: certificates.clientCertificate, keyFile: parent + "/junk.pem"),
            RedisTLS(certificateFile: certificates.clientCertificate),
        ] {
            #expect(throws: RedisError.self) { try RedisTLSContext(settings) }
        }
        #expect(throws: Never.self) { try RedisTLSContext(RedisTLS(caFile: certificates.caFile)) }
    }
}
