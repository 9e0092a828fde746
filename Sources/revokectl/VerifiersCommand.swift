import ArgumentParser
import Foundation
import NIOHTTP1
import RevokeCore

/// `revokectl verifiers`: every event stream an instance serves, and how far behind each is.
struct Verifiers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show who follows the revocation events of an instance, and how far behind each is.",
        discussion: """
            GET /v1/verifiers (admin key): one row per open /v1/events stream, with the verifier key's \
            name (else the client's User-Agent), its address, when it connected, the last event it was \
            sent, and the events and seconds it is behind. A verifier that has not got the latest \
            revocation shows lag above 0. Each revoked instance shows its own streams.

            Example:
              revokectl verifiers
              revokectl verifiers --json
            """)

    @OptionGroup var server: ServerOptions

    func run() async throws {
        try await server.withAPI { api in
            let reply = try await api.call(.GET, "/v1/verifiers")
            guard reply.status == 200, case .object(let body)? = reply.body, case .array(let streams)? = body["streams"] else {
                throw API.refusal(reply, doing: "cannot list the verifiers")
            }
            if server.json {
                Terminal.json(.object(body))
                return
            }
            if streams.isEmpty {
                print("no event streams open on this instance")
                return
            }
            let columns = ["name", "address", "connected_at", "position", "lag_events", "lag_seconds"]
            let rows = streams.compactMap { stream -> [String]? in
                guard case .object(let row) = stream else { return nil }
                return columns.map { column in row[column].map { Terminal.text($0, name: column) } ?? "-" }
            }
            Terminal.table([columns.map { $0.replacingOccurrences(of: "_", with: " ") }] + rows)
        }
    }
}
