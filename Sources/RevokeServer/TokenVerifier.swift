import CoreMetrics
import Foundation
import JWTKit
import RevokeCore

/// Verifies the tokens that logout flows post for revocation: the signature against the
/// configured issuer keys, with the algorithm pinned by the key, then `iss` and `aud`.
///
/// jwt-kit chooses the algorithm from the key, not from the token's header, and falls back to
/// its default key for a missing or unknown `kid`. So this type reads the header itself,
/// chooses the key itself (by `kid`, or, without one, the only key that accepts the header's
/// algorithm), refuses any algorithm the key does not accept, and only then lets jwt-kit check
/// the signature with a collection that holds that one key for that one algorithm.
///
/// A token that verified is remembered (``VerifiedTokens``) until its `exp`, so the same token
/// presented again is not verified again.
public final class TokenVerifier: Sendable {
    /// Why a token was refused.
    public enum Failure: Error, Equatable {
        /// 401 `invalid_token`: bad signature, malformed, unknown key, wrong `iss`/`aud`.
        case invalidToken(String)
        /// 400 `invalid_request`: a valid token Revoke cannot store (no `jti`, `jti` too long).
        case invalidRequest(String)

        /// The explanation, for the error body and the log; it never quotes the token.
        public var message: String {
            switch self {
            case .invalidToken(let message), .invalidRequest(let message): message
            }
        }
    }

    private struct IssuerKey: Sendable {
        var kid: String?
        /// The only algorithms this key verifies, each with a collection holding just this key.
        var verifiers: [String: JWTKeyCollection]
    }

    private let keys: [IssuerKey]
    private let issuer: String?
    private let audience: String?
    /// Tokens these keys verified, by their SHA-256.
    let verifiedTokens: VerifiedTokens

    /// Whether any issuer key is configured (without one, every token is refused).
    public var hasKeys: Bool { !keys.isEmpty }
    /// Whether tokens must be for a configured audience (`REVOKE_AUDIENCE`).
    public var checksAudience: Bool { audience != nil }

    /// Loads the keys of a configuration.
    /// - Parameters:
    ///   - configuration: The keys, `iss` and `aud`, and how many verified tokens to remember.
    ///   - now: The current time in Unix seconds (a remembered token is forgotten at its `exp`).
    ///   - metricsFactory: Where the verified tokens' counters are kept.
    /// - Throws: ``ServerConfiguration/Error`` naming the variable whose key cannot be used.
    public static func make(
        _ configuration: ServerConfiguration, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
    ) async throws(ServerConfiguration.Error) -> TokenVerifier {
        var keys: [IssuerKey] = []
        if let secret = configuration.hmacSecret {
            let key = HMACKey(from: secret)
            var verifiers: [String: JWTKeyCollection] = [:]
            // RFC 7518 section 3.2: the key must be at least as long as the hash output.
            let length = secret.utf8.count
            for (name, digest, minimum) in [("HS256", DigestAlgorithm.sha256, 32), ("HS384", .sha384, 48), ("HS512", .sha512, 64)]
            where length >= minimum {
                verifiers[name] = await JWTKeyCollection().add(hmac: key, digestAlgorithm: digest)
            }
            keys.append(IssuerKey(kid: nil, verifiers: verifiers))
        }
        if let pem = configuration.publicKeyPEM {
            do throws(KeyError) {
                keys.append(try await pemKey(pem))
            } catch {
                throw ServerConfiguration.Error(variable: "REVOKE_PUBLIC_KEY_FILE", problem: error.message)
            }
        }
        if let jwks = configuration.jwks {
            do throws(KeyError) {
                let loaded = try await jwksKeys(jwks)
                for key in loaded where key.kid != nil && keys.contains(where: { sameKID($0.kid, key.kid) }) {
                    throw KeyError("the kid \"\(key.kid!)\" is used twice")
                }
                keys += loaded
            } catch {
                throw ServerConfiguration.Error(variable: "REVOKE_JWKS_FILE", problem: error.message)
            }
        }
        let verifiedTokens = VerifiedTokens(
            capacity: configuration.verifiedTokenCacheSize, now: { Int64(now().rounded(.down)) }, factory: metricsFactory)
        return TokenVerifier(keys: keys, issuer: configuration.issuer, audience: configuration.audience, verifiedTokens: verifiedTokens)
    }

    private init(keys: [IssuerKey], issuer: String?, audience: String?, verifiedTokens: VerifiedTokens) {
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.verifiedTokens = verifiedTokens
    }

    /// A token whose signature verified with an issuer key (and whose `iss` and `aud` match
    /// when configured): its claims as Revoke reads them, the whole payload, and the `kid` of
    /// the key that verified it (nil for a key without one), which is its header's `kid` when
    /// it names one, and for a token without `kid` the one key that accepts its algorithm.
    public struct Verified: Sendable {
        public var claims: TokenClaims
        public var payload: [String: JSONValue]
        public var kid: String?
    }

    /// Verifies a compact JWS and returns its claims, which must hold a `jti` (the logout
    /// flows revoke by it). Expiry is not judged here: an expired token that verifies is
    /// answered as expired by the caller, not refused as invalid.
    public func verify(_ token: String) async throws(Failure) -> TokenClaims {
        let claims = try await verifySignature(token).claims
        guard let jti = claims.jti else { throw .invalidRequest("the token has no jti, so it cannot be revoked by ID") }
        do {
            try validateIdentifier(jti, field: "jti")
        } catch {
            throw .invalidRequest(error.message)
        }
        return claims
    }

    /// Verifies a compact JWS's signature with the issuer keys (the algorithm pinned by the
    /// key), and `iss` and `aud` when configured. Nothing else about its claims is judged.
    /// A token these keys verified before and whose `exp` has not passed is not verified again.
    public func verifySignature(_ token: String) async throws(Failure) -> Verified {
        let key = VerifiedTokens.key(token)
        if let verified = verifiedTokens.lookup(key) { return verified }
        return try await verify(token, key: key)
    }

    /// Verifies a token not remembered (its key is ``VerifiedTokens/key(_:)`` of it), and
    /// remembers it when it verifies.
    func verify(_ token: String, key: VerifiedTokens.Key) async throws(Failure) -> Verified {
        assert(key == VerifiedTokens.key(token), "a verification remembered under another token's key")
        let verified = try await verifyAnew(token)
        verifiedTokens.insert(key, verified)
        return verified
    }

    /// The verification of a token these keys verified before, if it is remembered and its
    /// `exp` has not passed: no signature check, no suspension.
    func recentlyVerified(_ key: VerifiedTokens.Key) -> Verified? {
        verifiedTokens.lookup(key)
    }

    private func verifyAnew(_ token: String) async throws(Failure) -> Verified {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]),
            case .object(let header)? = try? JSONValue(parsing: headerBytes)
        else { throw .invalidToken("the token is not a compact JWS") }
        guard case .string(let algorithm)? = header["alg"] else { throw .invalidToken("the token's header has no alg") }
        if header["crit"] != nil { throw .invalidToken("the token's header has critical extensions Revoke does not support") }
        let kid: String?
        switch header["kid"] {
        case nil: kid = nil
        case .string(let text)?: kid = text
        default: throw .invalidToken("the token's kid is not a string")
        }

        let key: IssuerKey
        if let kid {
            // Byte for byte, as key blocks are stored: a canonically equivalent spelling is
            // another kid, never a way to use a key while missing its block.
            guard let found = keys.first(where: { sameKID($0.kid, kid) }) else { throw .invalidToken("unknown kid") }
            key = found
        } else {
            let candidates = keys.filter { $0.verifiers[algorithm] != nil }
            guard candidates.count == 1 else {
                throw .invalidToken(candidates.isEmpty ? "no key accepts \(algorithm)" : "the token needs a kid to choose its key")
            }
            key = candidates[0]
        }
        guard let verifier = key.verifiers[algorithm] else { throw .invalidToken("the key does not accept \(algorithm)") }

        let payload: RawClaims
        do {
            payload = try await verifier.verify(token, as: RawClaims.self)
        } catch {
            throw .invalidToken("the signature does not verify")
        }
        let claims: TokenClaims
        do {
            claims = try TokenClaims(claims: payload.claims)
        } catch {
            throw .invalidToken(error.message)
        }
        if let issuer, payload.claims["iss"] != .string(issuer) { throw .invalidToken("the token's iss is not the configured issuer") }
        if let audience {
            let matches: Bool
            switch payload.claims["aud"] {
            case .string(let value)?: matches = value == audience
            case .array(let values)?: matches = values.contains(.string(audience))
            default: matches = false
            }
            if !matches { throw .invalidToken("the token is not for the configured audience") }
        }
        // The kid of the key that verified it, which a header without kid does not name: key
        // blocks are looked up by it.
        return Verified(claims: claims, payload: payload.claims, kid: key.kid)
    }

    // MARK: - Loading keys

    private struct KeyError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    private static let rsaAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]

    private static func rsaVerifiers(_ key: Insecure.RSA.PublicKey, only: String?) async throws(KeyError) -> [String: JWTKeyCollection] {
        if let only, !rsaAlgorithms.contains(only) { throw KeyError("an RSA key cannot use \(only)") }
        var verifiers: [String: JWTKeyCollection] = [:]
        for name in rsaAlgorithms where only == nil || only == name {
            let digest: DigestAlgorithm = name.hasSuffix("256") ? .sha256 : name.hasSuffix("384") ? .sha384 : .sha512
            let collection = JWTKeyCollection()
            if name.hasPrefix("PS") {
                await collection.add(pss: key, digestAlgorithm: digest)
            } else {
                await collection.add(rsa: key, digestAlgorithm: digest)
            }
            verifiers[name] = collection
        }
        return verifiers
    }

    private static func pemKey(_ pem: String) async throws(KeyError) -> IssuerKey {
        if let rsa = try? Insecure.RSA.PublicKey(pem: pem) {
            return IssuerKey(kid: nil, verifiers: try await rsaVerifiers(rsa, only: nil))
        }
        if let key = try? ES256PublicKey(pem: pem) { return IssuerKey(kid: nil, verifiers: ["ES256": await JWTKeyCollection().add(ecdsa: key)]) }
        if let key = try? ES384PublicKey(pem: pem) { return IssuerKey(kid: nil, verifiers: ["ES384": await JWTKeyCollection().add(ecdsa: key)]) }
        if let key = try? ES512PublicKey(pem: pem) { return IssuerKey(kid: nil, verifiers: ["ES512": await JWTKeyCollection().add(ecdsa: key)]) }
        if let key = try? EdDSA.PublicKey(pem: pem) { return IssuerKey(kid: nil, verifiers: ["EdDSA": await JWTKeyCollection().add(eddsa: key)]) }
        throw KeyError("not a PEM public key of RSA, EC (P-256, P-384, P-521) or Ed25519 (a private key is refused too)")
    }

    private static func jwksKeys(_ json: String) async throws(KeyError) -> [IssuerKey] {
        guard case .object(let document)? = try? JSONValue(parsing: json.utf8),
            case .array(let entries)? = document["keys"]
        else { throw KeyError("not a JWKS document ({\"keys\": [...]})") }
        var keys: [IssuerKey] = []
        for (index, entry) in entries.enumerated() {
            guard case .object(let jwk) = entry else { throw KeyError("key \(index + 1) is not an object") }
            func field(_ name: String) -> String? {
                if case .string(let value)? = jwk[name] { return value }
                return nil
            }
            if field("use") == "enc" { continue }
            let kid = field("kid")
            let alg = field("alg")
            let label = kid.map { "key \"\($0)\"" } ?? "key \(index + 1)"
            if let kid, keys.contains(where: { sameKID($0.kid, kid) }) { throw KeyError("the kid \"\(kid)\" is used twice") }
            if entries.count > 1 && kid == nil { throw KeyError("\(label) has no kid; with several keys each needs one") }
            if jwk["d"] != nil { throw KeyError("\(label) is a private key; give the public key only") }
            var verifiers: [String: JWTKeyCollection] = [:]
            switch field("kty") {
            case "RSA":
                guard let n = field("n"), let e = field("e"), let key = try? Insecure.RSA.PublicKey(modulus: n, exponent: e) else {
                    throw KeyError("\(label): an RSA key needs valid n and e")
                }
                verifiers = try await rsaVerifiers(key, only: alg)
            case "EC":
                guard let x = field("x"), let y = field("y") else { throw KeyError("\(label): an EC key needs x and y") }
                let name: String
                do {
                    switch field("crv") {
                    case "P-256":
                        name = "ES256"
                        verifiers[name] = await JWTKeyCollection().add(ecdsa: try ES256PublicKey(parameters: (x, y)))
                    case "P-384":
                        name = "ES384"
                        verifiers[name] = await JWTKeyCollection().add(ecdsa: try ES384PublicKey(parameters: (x, y)))
                    case "P-521":
                        name = "ES512"
                        verifiers[name] = await JWTKeyCollection().add(ecdsa: try ES512PublicKey(parameters: (x, y)))
                    default: throw KeyError("\(label): the EC curve must be P-256, P-384 or P-521")
                    }
                } catch let error as KeyError {
                    throw error
                } catch {
                    throw KeyError("\(label): x and y are not a point of the curve")
                }
                if let alg, alg != name { throw KeyError("\(label): a \(field("crv")!) key cannot use \(alg)") }
            case "OKP":
                guard field("crv") == "Ed25519", let x = field("x"), let key = try? EdDSA.PublicKey(x: x, curve: .ed25519) else {
                    throw KeyError("\(label): an OKP key must be Ed25519 with a valid x")
                }
                if let alg, alg != "EdDSA" && alg != "Ed25519" { throw KeyError("\(label): an Ed25519 key cannot use \(alg)") }
                verifiers["EdDSA"] = await JWTKeyCollection().add(eddsa: key)
            case "oct":
                throw KeyError("\(label): HMAC keys come only from REVOKE_HMAC_SECRET, never from a JWKS")
            default:
                throw KeyError("\(label): kty must be RSA, EC or OKP")
            }
            keys.append(IssuerKey(kid: kid, verifiers: verifiers))
        }
        return keys
    }
}

extension TokenVerifier.Verified {
    /// Why a token that verified must still not be accepted at `now`, or nil when it may be:
    /// past its `exp` or before its `nbf` (each with `REVOKE_CLOCK_SKEW`, the policy's own
    /// expiry test), or a `jti` or `kid` that no record could name. Whether it is revoked is
    /// the store's question, asked next.
    func refusal(at now: Int64, policy: RevocationPolicy) -> String? {
        if policy.lifetime(expiresAt: claims.expiresAtSeconds, now: Double(now)) == .expired { return "the token has expired" }
        if case .number(let notBefore)? = payload["nbf"], notBefore - Double(policy.clockSkew) > Double(now) {
            return "the token is not valid yet (nbf)"
        }
        if let jti = claims.jti, (try? validateIdentifier(jti, field: "jti")) == nil { return "the token's jti is not a valid identifier" }
        if let kid, (try? validateIdentifier(kid, field: "kid")) == nil { return "the token's kid is not a valid identifier" }
        return nil
    }
}

/// A token's payload as it is, for `TokenClaims` to read; jwt-kit's own claim checks are not
/// used (an expired token is answered as expired, not as invalid).
private struct RawClaims: JWTPayload {
    var claims: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Whether two kids are the same bytes (Swift's `==` on strings treats canonically equivalent
/// Unicode as equal; kids are opaque, as the contract says of identifiers).
private func sameKID(_ a: String?, _ b: String?) -> Bool {
    switch (a, b) {
    case (nil, nil): true
    case (let a?, let b?): a.utf8.elementsEqual(b.utf8)
    default: false
    }
}
