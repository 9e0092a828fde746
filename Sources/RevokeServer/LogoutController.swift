import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import RevokeCore
import RevokeHTTP
import RevokeStore

/// Logout flows: `POST /v1/revoke` and RFC 7009's `POST /oauth2/revoke`. No API key: holding
/// a token that verifies is the authority to revoke it.
struct LogoutController: Sendable {
    let store: RevocationStore
    let verifier: TokenVerifier
    let revocations: Counter

    func addRoutes(to open: some RouterMethods<RevokeRequestContext>) {
        open.post("/v1/revoke") { request, context -> Response in
            var request = request
            let body = try await request.collectBody(upTo: context.maxUploadSize)
            if body.readableBytes == 0 {
                // An empty body revokes the token that authenticates the request itself.
                guard let token = BearerCredential(request.headers).token else {
                    throw APIError.invalidRequest("send {\"token\": \"<jwt>\"}, {\"tokens\": [...]}, or an empty body with Authorization: Bearer <jwt>")
                }
                return try await answer(for: String(token), logger: context.logger)
            }
            try request.requireMediaType(MediaType.json)
            let object = try Request.jsonObject(from: body)
            if object["tokens"] != nil && object["token"] != nil {
                throw APIError.invalidRequest("send token or tokens, not both")
            }
            if let tokens = object["tokens"] {
                guard case .array(let list) = tokens else { throw APIError.invalidRequest("tokens must be an array of strings") }
                guard !list.isEmpty else { throw APIError.invalidRequest("tokens is empty") }
                guard list.count <= Limits.maximumTokensPerRevoke else {
                    throw APIError.invalidRequest("at most \(Limits.maximumTokensPerRevoke) tokens per request, not \(list.count)")
                }
                var results: [LogoutResult] = []
                for item in list {
                    guard case .string(let token) = item, !token.isEmpty else {
                        results.append(.error(.invalidRequest("each token must be a non-empty string")))
                        continue
                    }
                    do {
                        results.append(try await revoke(token, logger: context.logger))
                    } catch let error as APIError where error.status != .serviceUnavailable {
                        results.append(.error(error))
                    }
                }
                return try jsonResponse(["results": results])
            }
            guard case .string(let token)? = object["token"] else {
                throw APIError.invalidRequest("token must be a string (or send tokens: [...])")
            }
            return try await answer(for: token, logger: context.logger)
        }

        open.post("/oauth2/revoke") { request, context -> Response in
            var request = request
            let token = try await request.formField("token", context: context)
            do {
                _ = try await revoke(token, logger: context.logger)
            } catch let error as APIError where error.status != .serviceUnavailable {
                // RFC 7009 section 2.2: an invalid token is answered 200 as well.
            }
            return Response(status: .ok, headers: [.cacheControl: "no-store"])
        }
    }

    private func answer(for token: String, logger: Logger) async throws -> Response {
        guard !token.isEmpty else { throw APIError.invalidRequest("token is empty") }
        switch try await revoke(token, logger: logger) {
        case .revoked(let body): return try jsonResponse(body)
        case .expired: return try jsonResponse(NotStored())
        case .error(let error): throw error
        }
    }

    /// Verifies and revokes one token. The log names the `jti`, or why the token was refused
    /// (never the token).
    private func revoke(_ token: String, logger: Logger) async throws -> LogoutResult {
        let claims: TokenClaims
        do {
            claims = try await verifier.verify(token)
        } catch {
            // The reason may quote the token's own header (its alg, its kid): logged escaped.
            logger.debug("token refused", metadata: ["reason": .client(error.message)])
            switch error {
            case .invalidToken(let message): throw APIError(.unauthorized, code: "invalid_token", message: message)
            case .invalidRequest(let message): throw APIError.invalidRequest(message)
            }
        }
        let jti = claims.jti!  // the verifier refuses tokens without one
        switch try await store.revoke(jti: jti, expiresAt: claims.expiresAtSeconds) {
        case .revoked(let record):
            revocations.increment()
            logger.debug("revoked", metadata: ["jti": .client(jti), "source": "logout", "expires_at": "\(record.expiresAt.map(String.init) ?? "never")"])
            // The token's exp, as the contract answers; the record may last longer (an
            // administrator's "never" stays), never shorter.
            return .revoked(LogoutRevoked(jti: jti, expiresAt: claims.expiresAtSeconds))
        case .alreadyExpired:
            logger.debug("not revoked: already expired", metadata: ["jti": .client(jti), "source": "logout"])
            return .expired
        }
    }
}

/// `{"revoked": true, "jti": "...", "expires_at": <exp or null>}`.
struct LogoutRevoked: Encodable {
    var revoked = true
    var jti: String
    var expiresAt: Int64?

    enum CodingKeys: String, CodingKey {
        case revoked, jti
        case expiresAt = "expires_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(revoked, forKey: .revoked)
        try container.encode(jti, forKey: .jti)
        try container.encode(expiresAt, forKey: .expiresAt)
    }
}

/// One answer of a logout request.
enum LogoutResult: Encodable {
    case revoked(LogoutRevoked)
    case expired
    case error(APIError)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .revoked(let body): try body.encode(to: encoder)
        case .expired: try NotStored().encode(to: encoder)
        case .error(let error): try error.body.encode(to: encoder)
        }
    }
}

/// `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte); the first value of a
/// repeated name wins.
enum FormURLEncoded {
    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : "") else { continue }
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    /// One name or value: `+` is a space, `%XX` a byte; nil for a malformed escape.
    static func decode(_ part: Substring) -> String? {
        part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
