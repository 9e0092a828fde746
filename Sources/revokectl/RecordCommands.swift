import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

/// Which record a command names: a `jti`, a cutoff, or a key block.
struct Target: ParsableArguments {
    @Option(help: "A revoked jti.")
    var jti: String?

    @Option(help: "A blocked key's kid.")
    var kid: String?

    @Option(help: "A cutoff's claim (with --value).")
    var claim: String?

    @Option(help: "A cutoff's value (with --claim).")
    var value: String?

    func validate() throws {
        let given = [jti != nil, kid != nil, claim != nil || value != nil].filter { $0 }.count
        guard given == 1 else { throw UsageError("give --jti, --kid, or --claim and --value") }
        guard claim == nil && value == nil || (claim != nil && value != nil) else { throw UsageError("--claim and --value go together") }
    }

    var path: String {
        if let jti { return "/v1/revocations/\(API.segment(jti))" }
        if let kid { return "/v1/key-blocks/\(API.segment(kid))" }
        return "/v1/cutoffs/\(API.segment(claim!))/\(API.segment(value!))"
    }

    var name: String {
        if let jti { return "jti \(jti.debugDescription)" }
        if let kid { return "key \(kid.debugDescription)" }
        return "cutoff \(claim!) \(value!.debugDescription)"
    }

    /// The fields of the record, in the order a table shows them.
    var order: [String] {
        if jti != nil { return ["jti", "revoked", "expires_at", "revoked_at", "reason"] }
        if kid != nil { return KeyBlocks.order }
        return Cutoffs.order
    }
}

/// `revokectl unrevoke`: undoes a revocation or a cutoff.
struct Unrevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove a revocation (--jti), a key block (--kid) or a cutoff (--claim, --value).",
        discussion: """
            DELETE /v1/revocations/{jti}, /v1/key-blocks/{kid} or /v1/cutoffs/{claim}/{value} (admin key). Exit status 1 when \
            there was nothing to remove.

            Example:
              revokectl unrevoke --jti 0b4e7a0e --reason "revoked by mistake"
              revokectl unrevoke --claim sub --value alice --reason "INC-4121 closed"
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var target: Target

    @Option(help: "Why, for the audit log.")
    var reason: String?

    func run() async throws {
        try await server.withAPI { api in
            let query = reason.map { "?reason=\(API.segment($0))" } ?? ""
            let reply = try await api.call(.DELETE, target.path + query)
            switch reply.status {
            case 204:
                if server.json { Terminal.json(.object(["removed": .bool(true)])) } else { print("removed \(target.name)") }
            case 404: throw CLIError(message: "\(target.name) is not revoked: nothing to remove", code: ExitStatus.refused)
            default: throw API.refusal(reply, doing: "not removed")
            }
        }
    }
}

/// `revokectl show`: one record.
struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a revocation (--jti), a key block (--kid) or a cutoff (--claim, --value).",
        discussion: """
            Exit status 1 when there is none.

            Example:
              revokectl show --jti 0b4e7a0e
              revokectl show --kid 2026-signing-1
              revokectl show --claim sub --value alice --json
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var target: Target

    func run() async throws {
        try await server.withAPI { api in
            let reply = try await api.call(.GET, target.path)
            switch reply.status {
            case 200:
                try RevokeCommand.single(.done(reply.body), json: server.json, order: target.order)
            case 404: throw CLIError(message: "\(target.name) is not revoked", code: ExitStatus.refused)
            default: throw API.refusal(reply, doing: "cannot show \(target.name)")
            }
        }
    }
}
