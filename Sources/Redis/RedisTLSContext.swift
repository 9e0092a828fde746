#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOSSL

/// The TLS context of `rediss://` connections, built once from ``RedisTLS``: TLS 1.2 or later,
/// the server's certificate verified against the configured authorities (or the system's), its
/// name or IP address checked, and the client certificate presented when one is configured.
public final class RedisTLSContext: Sendable {
    let context: NIOSSLContext

    /// Reads the files and builds the context.
    /// - Throws: ``RedisError`` with code ``RedisError/Code/invalidConfiguration`` naming the
    ///   file that cannot be used.
    public init(_ settings: RedisTLS) throws(RedisError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            do {
                let authorities = try NIOSSLCertificate.fromPEMFile(caFile)
                guard !authorities.isEmpty else {
                    throw RedisError(.invalidConfiguration, "\(caFile) holds no PEM certificate")
                }
                configuration.trustRoots = .certificates(authorities)
            } catch let error as RedisError {
                throw error
            } catch {
                throw RedisError(.invalidConfiguration, "cannot read the CA certificates in \(caFile): \(error)")
            }
        }
        switch (settings.certificateFile, settings.keyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            } catch {
                throw RedisError(.invalidConfiguration, "cannot read the client certificate in \(certificateFile): \(error)")
            }
            guard !configuration.certificateChain.isEmpty else {
                throw RedisError(.invalidConfiguration, "\(certificateFile) holds no PEM certificate")
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw RedisError(.invalidConfiguration, "cannot read the client key in \(keyFile): \(error)")
            }
        default:
            throw RedisError(.invalidConfiguration, "a client certificate needs both its certificate file and its key file")
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisError(.invalidConfiguration, "the TLS settings cannot be used: \(error)")
        }
    }

    /// Whether `host` is an IPv4 or IPv6 address (checked against IP SANs, never sent as SNI).
    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return host.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }

    /// The TLS error under `error`, if the connection failed in TLS (a certificate that does not
    /// verify, a server that does not speak TLS, a handshake refused).
    static func tlsFailure(in error: any Error) -> (any Error)? {
        var current: (any Error)? = error
        while let error = current {
            if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError { return error }
            current = (error as? RedisError)?.underlying
        }
        return nil
    }
}
