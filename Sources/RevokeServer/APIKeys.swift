import Crypto
import Foundation
import RevokeCore

/// An API key: a name (shown in the audit trail and logs) and a secret (never shown).
public struct APIKey: Sendable, Equatable {
    /// What a key may do.
    public enum Role: String, Sendable {
        /// Everything.
        case admin
        /// Checks, reading revocations and cutoffs, snapshot, events; not the audit.
        case verifier
    }

    public var name: String
    public var secret: String
    public var role: Role

    public init(name: String, secret: String, role: Role) {
        self.name = name
        self.secret = secret
        self.role = role
    }

    /// A new random admin key, for an embedded-mode start with none configured.
    public static func generatedAdmin() -> APIKey {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return APIKey(name: "generated-admin", secret: Base64URL.encode(bytes), role: .admin)
    }
}

/// The configured keys, and the one question asked of them: whose key is this?
struct APIKeyring: Sendable {
    private struct Entry: Sendable {
        var name: String
        var role: APIKey.Role
        var digest: [UInt8]
    }

    private let entries: [Entry]
    /// Whether verifier endpoints need a key at all (they are open when none is configured).
    let verifierKeysConfigured: Bool

    init(admin: [APIKey], verifier: [APIKey]) {
        entries = (admin + verifier).map { Entry(name: $0.name, role: $0.role, digest: Array(SHA256.hash(data: Array($0.secret.utf8)))) }
        verifierKeysConfigured = !verifier.isEmpty
    }

    /// The key matching a presented secret, comparing against every key in constant time
    /// (digests of equal length, no early exit), so timing tells nothing about any secret.
    func key(forSecret secret: Substring) -> (name: String, role: APIKey.Role)? {
        let presented = Array(SHA256.hash(data: Array(secret.utf8)))
        var found: Entry?
        for entry in entries {
            var difference: UInt8 = 0
            for (a, b) in zip(entry.digest, presented) { difference |= a ^ b }
            if difference == 0 { found = entry }
        }
        return found.map { ($0.name, $0.role) }
    }
}
