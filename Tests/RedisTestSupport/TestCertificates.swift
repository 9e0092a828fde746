import ChildProcess
import Foundation

/// A private certificate authority and certificates made with the `openssl` command for one
/// test: a server certificate for 127.0.0.1 and localhost, one for another host, a client
/// certificate, and a second authority that signed none of them.
public struct TestCertificates: Sendable {
    public let directory: String
    public var caFile: String { directory + "/ca.crt" }
    public var otherCAFile: String { directory + "/other-ca.crt" }
    public var serverCertificate: String { directory + "/server.crt" }
    public var serverKey: String { directory + "/server.key" }
    /// Signed by ``caFile`` for `elsewhere.example` only.
    public var elsewhereCertificate: String { directory + "/elsewhere.crt" }
    public var elsewhereKey: String { directory + "/elsewhere.key" }
    public var clientCertificate: String { directory + "/client.crt" }
    public var clientKey: String { directory + "/client.key" }

    /// Makes everything in a new folder under `parent`. P-256 keys: quick to make.
    public static func make(in parent: String) async throws -> TestCertificates {
        let certificates = TestCertificates(directory: parent + "/tls")
        try FileManager.default.createDirectory(atPath: certificates.directory, withIntermediateDirectories: true)
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "Revoke test CA"), ("other-ca", "Another CA")] {
            try await certificates.openssl(
                ["req", "-x509"] + key + [
                    "-keyout", certificates.path("\(name).key"), "-out", certificates.path("\(name).crt"), "-days", "2", "-subj", "/CN=\(subject)",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ])
        }
        for (name, names, usage) in [
            ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1", "serverAuth"),
            ("elsewhere", "subjectAltName=DNS:elsewhere.example", "serverAuth"),
            ("client", "subjectAltName=DNS:revoked.test", "clientAuth"),
        ] {
            try await certificates.openssl(
                ["req"] + key + ["-keyout", certificates.path("\(name).key"), "-out", certificates.path("\(name).csr"), "-subj", "/CN=\(name)"])
            try "\(names)\nextendedKeyUsage=\(usage)\nbasicConstraints=CA:FALSE\n"
                .write(toFile: certificates.directory + "/\(name).ext", atomically: true, encoding: .utf8)
            try await certificates.openssl([
                "x509", "-req", "-in", certificates.path("\(name).csr"), "-CA", certificates.caFile, "-CAkey", certificates.path("ca.key"),
                "-CAcreateserial", "-out", certificates.path("\(name).crt"), "-days", "2", "-extfile", certificates.path("\(name).ext"),
            ])
        }
        return certificates
    }

    /// `tls-*` directives for a `redis-server` that serves TLS on `port` with `certificate`,
    /// and asks clients for a certificate signed by the CA when `clientCertificates`.
    public func serverDirectives(port: Int, certificate: String? = nil, key: String? = nil, clientCertificates: Bool = false) -> [String] {
        [
            "tls-port \(port)", "tls-cert-file \(certificate ?? serverCertificate)", "tls-key-file \(key ?? serverKey)",
            "tls-ca-cert-file \(caFile)", "tls-auth-clients \(clientCertificates ? "yes" : "no")",
            "tls-replication yes",
        ]
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    private func openssl(_ arguments: [String]) async throws {
        let log = directory + "/openssl.log"
        let process = try ChildProcess.spawn(
            "openssl", arguments: arguments, standardOutput: log, standardError: log)
        let status = await process.waitUntilExit()
        guard ChildProcess.exitCode(of: status) == 0 else {
            throw OpenSSLError(description: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }

    struct OpenSSLError: Error, CustomStringConvertible {
        var description: String
    }
}
