import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

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
