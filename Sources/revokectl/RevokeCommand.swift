import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

/// `revokectl revoke`: one token (logout), one `jti`, or many `jti`s.
struct RevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a token (as a logout does), or jtis by id.",
        discussion: """
            With a token: POST /v1/revoke verifies its signature and revokes its jti until it expires; \
            no admin key is needed. Give - to read the token from standard input, which keeps it out of \
            the shell history and the process list.
            With --jti or --from: POST /v1/revocations (admin key); --expires-at is required: \
            \(Times.timeHelp), or never.

            Example:
              revokectl revoke - < token.txt
              revokectl revoke --jti 0b4e7a0e --expires-at +24h --reason "token pasted in a ticket"
              revokectl revoke --from leaked-jtis.txt --expires-at +30d --reason INC-4121
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "A JWT, or - to read it from standard input.")
    var token: String?

    @Option(help: "Revoke this jti (admin).")
    var jti: String?

    @Option(help: "Revoke the jtis of this file, one per line (- for standard input).")
    var from: String?

    @Option(parsing: .unconditional, help: "When the revocation of --jti / --from ends: \(Times.timeHelp), or never.")
    var expiresAt: String?

    @Option(help: "Why, for the audit log (with --jti / --from).")
    var reason: String?

    func validate() throws {
        guard [token != nil, jti != nil, from != nil].filter({ $0 }).count == 1 else {
            throw UsageError("give exactly one of: a token, --jti, --from")
        }
        if token != nil {
            guard expiresAt == nil, reason == nil else {
                throw UsageError("a token is revoked until its own exp, and POST /v1/revoke takes no reason; use --jti for those")
            }
        } else {
            guard let expiresAt else { throw UsageError("--expires-at is required with --jti and --from (a time, or never)") }
            guard expiresAt == "never" || Times.parse(expiresAt) != nil else { throw UsageError("--expires-at: \(Times.timeHelp), or never") }
        }
    }

    func run() async throws {
        try await server.withAPI { api in
            if let token {
                try await revoke(token: token == "-" ? Self.readToken() : token, api: api)
                return
            }
            let expires: JSONValue = expiresAt == "never" ? .null : .number(Double(Times.parse(expiresAt!)!))
            var body: [String: JSONValue] = ["expires_at": expires]
            if let reason { body["reason"] = .string(reason) }
            let operation: @Sendable (String) async throws -> Bulk.Outcome = { [body] jti in
                var body = body
                body["jti"] = .string(jti)
                let reply = try await api.call(.POST, "/v1/revocations", body: .object(body))
                switch reply.status {
                case 201: return .done(reply.body)
                case 200: return .refused("not revoked: it has already expired", reply.body)
                default: return .refused(API.refusal(reply, doing: "refused").message, reply.body)
                }
            }
            if let jti {
                try await Self.single(operation(jti), json: server.json, order: ["jti", "revoked", "expires_at", "revoked_at", "reason"])
            } else {
                try await Bulk.run(try Bulk.items(from: from!), noun: "jtis", verb: "revoked", json: server.json, operation)
            }
        }
    }

    func revoke(token: String, api: API) async throws {
        let reply = try await api.call(.POST, "/v1/revoke", body: .object(["token": .string(token)]), authenticated: false)
        guard reply.status == 200 else { throw API.refusal(reply, doing: "the token was refused") }
        if reply.object["revoked"] == .bool(true) {
            try Self.single(.done(reply.body), json: server.json, order: ["revoked", "jti", "expires_at"])
        } else {
            try Self.single(.refused("not revoked: the token has already expired", reply.body), json: server.json, order: [])
        }
    }

    static func readToken() throws -> String {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw CLIError.usage("no token on standard input") }
        return token
    }

    /// Prints one outcome and throws exit status 1 when it was refused.
    static func single(_ outcome: Bulk.Outcome, json: Bool, order: [String]) throws {
        switch outcome {
        case .done(let body):
            if json { Terminal.json(body ?? .null) } else if case .object(let object)? = body { Terminal.record(object, order: order) }
        case .refused(let why, let body):
            if json, let body { Terminal.json(body) }
            throw CLIError(message: why, code: ExitStatus.refused)
        }
    }
}
