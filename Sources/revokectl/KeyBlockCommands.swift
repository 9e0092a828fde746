import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

/// Key blocks: every token signed with a leaked key, whatever its `iat`.
enum KeyBlocks {
    static let order = ["kid", "created_at", "reason"]
}

/// `revokectl block-key`: every token whose header names this `kid` is refused.
struct BlockKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block-key",
        abstract: "Revoke every token signed with a key (its kid), whatever its iat.",
        discussion: """
            POST /v1/key-blocks (admin key). For a leaked signing key: a thief can mint any iat, so a \
            cutoff is not enough. The block has no expiry; remove it with unblock-key once no token \
            signed with that key can be valid. Blocking a key already blocked changes nothing.

            Example:
              revokectl block-key 2026-signing-1 --reason "INC-4200: key leaked in a CI log"
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "The key's kid, as in the tokens' header.")
    var kid: String

    @Option(help: "Why, for the audit log.")
    var reason: String?

    func run() async throws {
        var body: [String: JSONValue] = ["kid": .string(kid)]
        if let reason { body["reason"] = .string(reason) }
        try await server.withAPI { [body] api in
            let reply = try await api.call(.POST, "/v1/key-blocks", body: .object(body))
            // 200: the key was blocked already.
            guard reply.status == 201 || reply.status == 200 else {
                try RevokeCommand.single(.refused(API.refusal(reply, doing: "not blocked").message, reply.body), json: server.json, order: KeyBlocks.order)
                return
            }
            try RevokeCommand.single(.done(reply.body), json: server.json, order: KeyBlocks.order)
        }
    }
}

/// `revokectl unblock-key`: tokens of that key are accepted again (unless revoked otherwise).
struct UnblockKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unblock-key",
        abstract: "Remove a key block.",
        discussion: """
            DELETE /v1/key-blocks/{kid} (admin key). Exit status 1 when the key was not blocked.

            Example:
              revokectl unblock-key 2026-signing-1 --reason "every token of that key has expired"
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "The key's kid.")
    var kid: String

    @Option(help: "Why, for the audit log.")
    var reason: String?

    func run() async throws {
        try await server.withAPI { api in
            let query = reason.map { "?reason=\(API.segment($0))" } ?? ""
            let reply = try await api.call(.DELETE, "/v1/key-blocks/\(API.segment(kid))" + query)
            switch reply.status {
            case 204:
                if server.json { Terminal.json(.object(["removed": .bool(true)])) } else { print("unblocked key \(kid.debugDescription)") }
            case 404: throw CLIError(message: "the key \(kid.debugDescription) is not blocked: nothing to remove", code: ExitStatus.refused)
            default: throw API.refusal(reply, doing: "not unblocked")
            }
        }
    }
}
