import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

/// Cutoffs: every token whose claim has this value, issued up to a time.
enum Cutoffs {
    static let order = ["claim", "value", "before", "expires_at", "created_at", "reason"]

    static func operation(api: API, claim: String, before: Int64?, reason: String?) -> @Sendable (String) async throws -> Bulk.Outcome {
        var body: [String: JSONValue] = ["claim": .string(claim)]
        if let before { body["before"] = .number(Double(before)) }
        if let reason { body["reason"] = .string(reason) }
        return { [body] value in
            var body = body
            body["value"] = .string(value)
            let reply = try await api.call(.POST, "/v1/cutoffs", body: .object(body))
            // 200: a cutoff that reaches as far already stands.
            guard reply.status == 201 || reply.status == 200 else { return .refused(API.refusal(reply, doing: "refused").message, reply.body) }
            return .done(reply.body)
        }
    }

    static func run(server: ServerOptions, claim: String, values: [String], options: CutoffOptions, noun: String) async throws {
        let (from, reason) = (options.from, options.reason)
        let cutoffTime = try options.before.map { text in
            guard let time = Times.parse(text) else { throw CLIError.usage("--before: \(Times.timeHelp)") }
            return time
        }
        try await server.withAPI { api in
            let operation = operation(api: api, claim: claim, before: cutoffTime, reason: reason)
            if from == nil && values.count == 1 {
                try await RevokeCommand.single(operation(values[0]), json: server.json, order: order)
            } else {
                let items = try values + (from.map(Bulk.items(from:)) ?? [])
                try await Bulk.run(items, noun: noun, verb: "cut off", json: server.json, operation)
            }
        }
    }
}

/// What `revoke-user` and `cutoff` share: where many values come from, up to when, and why.
struct CutoffOptions: ParsableArguments {
    @Option(help: "Also the values of this file, one per line (- for standard input).")
    var from: String?

    @Option(parsing: .unconditional, help: "Revoke tokens issued up to this time (default now): \(Times.timeHelp).")
    var before: String?

    @Option(help: "Why, for the audit log.")
    var reason: String?
}

/// `revokectl revoke-user`: every token of one or many users (a cutoff on `sub`).
struct RevokeUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke-user",
        abstract: "Revoke every token of users (sub) issued until now, or until --before.",
        discussion: """
            POST /v1/cutoffs with claim sub (admin key). Tokens minted later are not affected. Running it \
            again is harmless.

            Example:
              revokectl revoke-user alice --reason "laptop stolen"
              revokectl revoke-user --from compromised-users.txt --reason INC-4121
              cut -d, -f1 users.csv | revokectl revoke-user --from - --json
            """)

    @OptionGroup var server: ServerOptions

    @Argument(help: "The users' sub values.")
    var subjects: [String] = []

    @OptionGroup var cutoff: CutoffOptions

    func validate() throws {
        guard !subjects.isEmpty || cutoff.from != nil else { throw UsageError("give users, or --from a file") }
    }

    func run() async throws {
        try await Cutoffs.run(server: server, claim: "sub", values: subjects, options: cutoff, noun: "users")
    }
}

/// `revokectl cutoff`: every token with a claim's value (a session, a client).
struct CutoffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cutoff",
        abstract: "Revoke every token whose claim has a value (sub, sid, client_id), issued until now or --before.",
        discussion: """
            POST /v1/cutoffs (admin key). The server accepts the claims of REVOKE_CUTOFF_CLAIMS.

            Example:
              revokectl cutoff --claim sid --value s-8c1f --reason "session hijacked"
              revokectl cutoff --claim client_id --value legacy-app --before 2026-11-20T00:00:00Z
              revokectl cutoff --claim sid --from sessions.txt
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: "The claim: sub, sid, client_id, or another of REVOKE_CUTOFF_CLAIMS.")
    var claim: String

    @Option(help: "The claim's value.")
    var value: [String] = []

    @OptionGroup var cutoff: CutoffOptions

    func validate() throws {
        guard !value.isEmpty || cutoff.from != nil else { throw UsageError("give --value, or --from a file") }
    }

    func run() async throws {
        try await Cutoffs.run(server: server, claim: claim, values: value, options: cutoff, noun: "values")
    }
}
