import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

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
                    // A server that counts as of the request says 0; an older one counted a while ago.
                    let age = object["counted_seconds_ago"].map { Terminal.text($0, name: "age") } ?? "0"
                    rows.append(["revoked jtis", Terminal.text(revocations, name: "count") + (age == "0" ? "" : " (counted \(age) s ago)")])
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
