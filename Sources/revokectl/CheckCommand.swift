import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

/// `revokectl check`: asks what a verifier asks.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask whether a token (or a jti, with claims) is revoked.",
        discussion: """
            POST /v1/check. Exit status 0 when revoked, 1 when not, as a script needs.

            Example:
              revokectl check - < token.txt
              revokectl check --jti 0b4e7a0e --claim sub=alice --iat 1763900000
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "A JWT, or - to read it from standard input.")
    var token: String?

    @Option(help: "The jti to check.")
    var jti: String?

    @Option(parsing: .unconditional, help: "When the token was issued (iat): \(Times.timeHelp).")
    var iat: String?

    @Option(help: "A claim of the token, name=value (repeatable), which cutoffs are matched against.")
    var claim: [String] = []

    func validate() throws {
        guard (token != nil) != (jti != nil || !claim.isEmpty) else { throw UsageError("give a token, or --jti and/or --claim") }
        guard token == nil || iat == nil else { throw UsageError("--iat goes with --jti / --claim; a token carries its own") }
        if let iat, Times.parse(iat) == nil { throw UsageError("--iat: \(Times.timeHelp)") }
        for pair in claim where !pair.contains("=") || pair.hasPrefix("=") { throw UsageError("--claim \(pair.debugDescription): give name=value") }
    }

    func run() async throws {
        var body: [String: JSONValue] = [:]
        if let token {
            body["token"] = .string(token == "-" ? try RevokeCommand.readToken() : token)
        } else {
            if let jti { body["jti"] = .string(jti) }
            if let iat { body["iat"] = .number(Double(Times.parse(iat)!)) }
            var claims: [String: JSONValue] = [:]
            for pair in claim {
                let (name, value) = (pair.prefix(while: { $0 != "=" }), pair.drop(while: { $0 != "=" }).dropFirst())
                claims[String(name)] = .string(String(value))
            }
            if !claims.isEmpty { body["claims"] = .object(claims) }
        }
        try await server.withAPI { api in
            let reply = try await api.call(.POST, "/v1/check", body: .object(body))
            guard reply.status == 200, case .bool(let revoked)? = reply.object["revoked"] else { throw API.refusal(reply, doing: "cannot check") }
            if server.json {
                Terminal.json(reply.body ?? .null)
            } else if revoked, case .string("cutoff")? = reply.object["reason"], case .string(let claim)? = reply.object["claim"] {
                print("revoked: a cutoff on \(claim)")
            } else {
                print(revoked ? "revoked: the jti" : "not revoked")
            }
            if !revoked { throw ExitCode(ExitStatus.refused) }
        }
    }
}
