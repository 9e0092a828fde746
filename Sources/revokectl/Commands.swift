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

/// Which record a command names: a `jti`, or a cutoff.
struct Target: ParsableArguments {
    @Option(help: "A revoked jti.")
    var jti: String?

    @Option(help: "A cutoff's claim (with --value).")
    var claim: String?

    @Option(help: "A cutoff's value (with --claim).")
    var value: String?

    func validate() throws {
        guard (jti != nil) != (claim != nil || value != nil) else { throw UsageError("give --jti, or --claim and --value") }
        guard jti != nil || (claim != nil && value != nil) else { throw UsageError("--claim and --value go together") }
    }

    var path: String {
        if let jti { return "/v1/revocations/\(API.segment(jti))" }
        return "/v1/cutoffs/\(API.segment(claim!))/\(API.segment(value!))"
    }

    var name: String { jti.map { "jti \($0.debugDescription)" } ?? "cutoff \(claim!) \(value!.debugDescription)" }
}

/// `revokectl unrevoke`: undoes a revocation or a cutoff.
struct Unrevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove a revocation (--jti) or a cutoff (--claim, --value).",
        discussion: """
            DELETE /v1/revocations/{jti} or /v1/cutoffs/{claim}/{value} (admin key). Exit status 1 when \
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
        abstract: "Show a revocation (--jti) or a cutoff (--claim, --value).",
        discussion: """
            Exit status 1 when there is none.

            Example:
              revokectl show --jti 0b4e7a0e
              revokectl show --claim sub --value alice --json
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var target: Target

    func run() async throws {
        try await server.withAPI { api in
            let reply = try await api.call(.GET, target.path)
            switch reply.status {
            case 200:
                try RevokeCommand.single(
                    .done(reply.body), json: server.json,
                    order: target.jti != nil ? ["jti", "revoked", "expires_at", "revoked_at", "reason"] : Cutoffs.order)
            case 404: throw CLIError(message: "\(target.name) is not revoked", code: ExitStatus.refused)
            default: throw API.refusal(reply, doing: "cannot show \(target.name)")
            }
        }
    }
}

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

/// `revokectl audit`: who did what, newest first.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the audit log, newest first.",
        discussion: """
            Example:
              revokectl audit --limit 20
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: "How many entries (1 to 1000).")
    var limit: Int = 100

    func validate() throws {
        guard (1...1000).contains(limit) else { throw UsageError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        try await server.withAPI { api in
            let reply = try await api.call(.GET, "/v1/audit?limit=\(limit)")
            guard reply.status == 200, case .array(let entries)? = reply.object["entries"] else { throw API.refusal(reply, doing: "cannot read the audit log") }
            if server.json {
                Terminal.json(reply.body ?? .null)
                return
            }
            let columns = ["at", "actor", "action", "target", "reason"]
            var rows = [columns.map { $0.uppercased() }]
            for case .object(let entry) in entries {
                rows.append(columns.map { column in entry[column].map { Terminal.text($0, name: column) } ?? "-" })
            }
            if entries.isEmpty { print("the audit log is empty") } else { Terminal.table(rows) }
        }
    }
}

/// `revokectl status`: is the server up, is Redis there, how much is revoked.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether the server and its Redis are up, and how much is revoked.",
        discussion: """
            /healthz and /readyz need no key; the counts and Redis details (GET /v1/status) need the \
            admin key. Exit status 0 when ready, 3 when the server or its Redis cannot serve.

            Example:
              revokectl status
            """)

    @OptionGroup var server: ServerOptions

    func run() async throws {
        try await server.withAPI { api in
            let health = try await api.call(.GET, "/healthz", authenticated: false)
            let ready = try await api.call(.GET, "/readyz", authenticated: false, unavailableThrows: false)
            let isReady = ready.status == 200
            var details: Reply?
            if isReady, api.key != nil {
                let reply = try await api.call(.GET, "/v1/status")
                guard reply.status == 200 else { throw API.refusal(reply, doing: "cannot read the status") }
                details = reply
            }
            if server.json {
                Terminal.json(.object([
                    "url": .string(api.baseURL), "healthy": .bool(health.status == 200), "ready": .bool(isReady),
                    "status": details?.body ?? .null,
                ]))
            } else {
                var rows: [[String]] = [
                    ["server", api.baseURL],
                    ["healthy", health.status == 200 ? "yes" : "no (HTTP \(health.status))"],
                    ["ready", isReady ? "yes: Redis answers" : "no: \(ready.error?.message ?? "HTTP \(ready.status)")"],
                ]
                let object = details?.object ?? [:]
                if case .object(let redis)? = object["redis"] {
                    let text = { (name: String) in redis[name].map { Terminal.text($0, name: name) } ?? "?" }
                    let megabytes: String = if case .number(let bytes)? = redis["used_memory_bytes"] { String(format: "%.1f MB used", bytes / 1e6) } else { "?" }
                    rows.append(["redis", "\(text("version")), \(text("role")), append-only \(redis["append_only"] == .bool(true) ? "on" : "off"), \(megabytes)"])
                    if redis["last_save_ok"] == .bool(false) { rows.append(["warning", "Redis' last background save failed"]) }
                }
                if let revocations = object["revocations"], let cutoffs = object["cutoffs"] {
                    let age = object["counted_seconds_ago"].map { Terminal.text($0, name: "age") } ?? "0"
                    rows.append(["revoked jtis", "\(Terminal.text(revocations, name: "count")) (counted \(age) s ago)"])
                    rows.append(["cutoffs", Terminal.text(cutoffs, name: "count")])
                } else if isReady {
                    rows.append(["counts", "set REVOKE_ADMIN_KEY to see them"])
                }
                Terminal.table(rows)
            }
            if !isReady { throw CLIError(message: "the server is not ready", code: ExitStatus.unreachable) }
        }
    }
}
