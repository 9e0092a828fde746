import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RevokeCore
import RevokeHTTP
import RevokeStore

extension HTTPField.Name {
    /// The gateway's own API key on `/v1/forward-auth` (the user's token is in `Authorization`).
    static let revokeKey = Self("Revoke-Key")!
    /// The accepted token's `sub`, for the gateway to pass upstream.
    static let revokeSubject = Self("Revoke-Subject")!
    /// The accepted token's `jti`, for the gateway to pass upstream.
    static let revokeJTI = Self("Revoke-Jti")!
}

/// Forward authentication: `/v1/forward-auth` and every path under it, any method, no body
/// read, for gateways that ask a service before they proxy a request (nginx `auth_request`,
/// Caddy `forward_auth`, Traefik `ForwardAuth`, Envoy and Istio `ext_authz`).
///
/// The forwarded `Authorization: Bearer <jwt>` is verified as a token to revoke is
/// (``TokenVerifier``: the algorithm pinned by the key, `iss` and `aud`), judged at the current
/// time (``TokenVerifier/Verified/refusal(at:policy:)``: `nbf`/`exp` with the skew), and checked
/// (`jti`, cutoffs, key blocks) with the single check's round trip. 200 carries `Revoke-Subject`
/// and `Revoke-Jti`; anything else is 401 with RFC 6750's `WWW-Authenticate`, 403 without the
/// gateway's key (`Revoke-Key`, when verifier keys are configured), 503 while the store cannot
/// answer. Every answer is `Cache-Control: no-store`: a gateway that caches one would accept a
/// token after its revocation.
///
/// A token verified before is taken from ``VerifiedTokens`` without a task; only a token not
/// seen yet is verified in one. The answer is given on the event loop the request came in on,
/// whether ``CheckChannelHandler`` or the router asked.
struct ForwardAuth: Sendable {
    let store: RevocationStore
    let verifier: TokenVerifier
    let keyring: APIKeyring
    let logger: Logger
    let storeErrors: StoreErrorCounters

    /// The route's template, as metrics name it.
    static let route = "/v1/forward-auth"

    /// An answer: its status, headers and body (none on a 200; none written for `HEAD`).
    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: JSONValue?

        init(_ status: HTTPResponse.Status, headers: HTTPFields, body: JSONValue?) {
            self.status = status
            self.headers = headers
            self.body = body
            self.headers[.cacheControl] = "no-store"
        }

        init(_ error: APIError) {
            self.init(error.status, headers: error.headers, body: error.body)
        }

        var response: Response {
            guard let body else { return Response(status: status, headers: headers) }
            let bytes = body.serialized()
            var headers = headers
            headers[.contentType] = MediaType.jsonAnswer
            // Said here, so that the answer to a HEAD keeps it (RFC 9110 8.6).
            headers[.contentLength] = String(bytes.count)
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// Whether a request path is `/v1/forward-auth` or under it, with or without a query.
    static func serves(path: String) -> Bool {
        let route = Self.route.utf8
        let path = path.utf8
        guard path.starts(with: route) else { return false }
        let next = path.dropFirst(route.count).first
        return next == nil || next == UInt8(ascii: "/") || next == UInt8(ascii: "?")
    }

    /// Answers a forwarded request from its header fields, calling `completion` on `eventLoop`
    /// (at once when nothing needs waiting for).
    func answer(_ fields: HTTPFields, on eventLoop: any EventLoop, completion: @escaping @Sendable (Answer) -> Void) {
        if keyring.verifierKeysConfigured {
            guard let secret = fields[.revokeKey], keyring.key(forSecret: Substring(secret)) != nil else {
                return completion(Answer(APIError(.forbidden, code: "forbidden", message: "the gateway's verifier key is required in Revoke-Key")))
            }
        }
        let token: Substring
        switch BearerCredential(fields) {
        case .token(let credential): token = credential
        case .none, .otherScheme: return completion(Self.noToken)
        case .unreadable: return completion(Self.invalid("the Authorization header is not one bearer token"))
        }
        let key = VerifiedTokens.key(token)
        if let verified = verifier.recentlyVerified(key) {
            return check(verified, on: eventLoop, completion: completion)
        }
        let promise = eventLoop.makePromise(of: TokenVerifier.Verified.self)
        let verifier = verifier
        let text = String(token)
        promise.completeWithTask { try await verifier.verify(text, key: key) }
        promise.futureResult.whenComplete { result in
            switch result {
            case .success(let verified):
                check(verified, on: eventLoop, completion: completion)
            case .failure(let error):
                let message = (error as? TokenVerifier.Failure)?.message ?? "the token does not verify"
                // The reason may quote the token's own header (its alg, its kid): logged escaped.
                logger.debug("forward-auth: token refused", metadata: ["reason": .client(message)])
                completion(Self.invalid(message))
            }
        }
    }

    private func check(_ verified: TokenVerifier.Verified, on eventLoop: any EventLoop, completion: @escaping @Sendable (Answer) -> Void) {
        if let refusal = verified.refusal(at: store.currentTime, policy: store.policy) { return completion(Self.invalid(refusal)) }
        let query = CheckQuery(verified.claims, cutoffClaims: store.cutoffClaims, kid: verified.kid)
        store.check(query, on: eventLoop) { [logger, storeErrors] result in
            switch result {
            case .success(.allowed):
                completion(Self.allowed(verified.claims))
            case .success:
                logger.debug("forward-auth: revoked", metadata: ["jti": .client(verified.claims.jti ?? "")])
                completion(Self.invalid("the token has been revoked"))
            case .failure(let error):
                completion(Answer(APIError(answering: error, logger: logger, counters: storeErrors)))
            }
        }
    }

    /// 200 with `Revoke-Subject` and `Revoke-Jti`, each empty when the token has no such claim:
    /// always sent, so that a gateway replacing the client's headers with them (nginx, Traefik,
    /// Envoy) replaces them all, and Caddy 2.6 never passes its own unresolved placeholder (its
    /// `copy_headers` skips an empty one; the recipe deletes the client's first). No body:
    /// nginx's `auth_request` reads none, and keeps its connection to `revoked` only for an
    /// answer without one.
    private static func allowed(_ claims: TokenClaims) -> Answer {
        let headers: HTTPFields = [
            .revokeSubject: claims.strings["sub"].map(headerValue) ?? "",
            .revokeJTI: claims.jti.map(headerValue) ?? "",
        ]
        return Answer(.ok, headers: headers, body: nil)
    }

    /// 401 with `WWW-Authenticate: Bearer` alone (RFC 6750 section 3.1: no error code for a
    /// request that carries no token).
    private static let noToken = Answer(
        .unauthorized, headers: [.wwwAuthenticate: "Bearer"],
        body: APIError(.unauthorized, code: "invalid_token", message: "a bearer token is required (Authorization: Bearer <jwt>)").body)

    /// 401 `invalid_token` with the reason in `error_description`.
    private static func invalid(_ message: String) -> Answer {
        Answer(
            .unauthorized, headers: [.wwwAuthenticate: #"Bearer error="invalid_token", error_description=""# + description(message) + #"""#],
            body: APIError(.unauthorized, code: "invalid_token", message: message).body)
    }

    /// A reason as RFC 6750 allows it in `error_description` (%x20-21 / %x23-5B / %x5D-7E):
    /// anything else (a quote or a byte from the token's own header) becomes `?`.
    static func description(_ message: String) -> String {
        String(String.UnicodeScalarView(message.unicodeScalars.prefix(200).map { scalar in
            (0x20...0x7E).contains(scalar.value) && scalar != "\"" && scalar != "\\" ? scalar : "?"
        }))
    }

    /// A claim as a header value: visible ASCII but `%` as it is, every other byte of its UTF-8
    /// (spaces, controls, non-ASCII, `%`) percent-encoded, so that no claim can end the header
    /// or add another, and any claim reads back unchanged by percent-decoding.
    static func headerValue(_ claim: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(claim.utf8.count)
        for byte in claim.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(digits[Int(byte >> 4)])
                encoded.unicodeScalars.append(digits[Int(byte & 0xF)])
            }
        }
        return encoded
    }

    /// The routes, for a forwarded request that ``CheckChannelHandler`` handed on (one
    /// pipelined behind a request the router answers). Every method, as the handler serves it.
    func addRoutes(to open: some RouterMethods<RevokeRequestContext>) {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!]
        for path in [Self.route, Self.route + "/**"] {
            for method in methods {
                open.on(RouterPath(path), method: method) { request, context -> Response in
                    let promise = context.channel.eventLoop.makePromise(of: Answer.self)
                    answer(request.headers, on: context.channel.eventLoop) { promise.succeed($0) }
                    let response = try await promise.futureResult.get().response
                    return request.method == .head ? response.createHeadResponse() : response
                }
            }
        }
    }
}
