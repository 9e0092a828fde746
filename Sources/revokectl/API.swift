import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RevokeCore

/// One answer of the server: its status and JSON body.
struct Reply: Sendable {
    var status: Int
    var body: JSONValue?

    var object: [String: JSONValue] {
        if case .object(let object)? = body { return object }
        return [:]
    }

    /// The contract's error code and message, when the body is an error.
    var error: (code: String, message: String)? {
        guard case .string(let code)? = object["error"] else { return nil }
        if case .string(let message)? = object["message"] { return (code, message) }
        return (code, "")
    }
}

/// The Revoke HTTP API, as `revokectl` calls it.
struct API: Sendable {
    let baseURL: String
    let key: String?
    let timeout: TimeAmount
    let http: HTTPClient

    init(baseURL: String, key: String?, timeout: Double) throws {
        guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()), url.host != nil else {
            throw CLIError.usage("the server URL \(baseURL.debugDescription) is not http(s)://host[:port]")
        }
        self.baseURL = baseURL
        self.key = key
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: self.timeout, read: self.timeout)
        // A refused connection is reported at once, not retried until the timeout: the
        // operator learns in a second that the URL is wrong or the server is down.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Bulk.concurrency
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async throws { try await http.shutdown() }

    /// Calls the server. Transport failures and 503 become ``CLIError`` with exit status 3;
    /// every other answer, error or not, is returned.
    func call(
        _ method: HTTPMethod, _ path: String, body: JSONValue? = nil, authenticated: Bool = true, unavailableThrows: Bool = true
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: "revokectl")
        if authenticated, let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        }
        let status: Int
        let bytes: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            bytes = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw CLIError(message: "cannot reach \(baseURL): \(Self.describe(error))", code: ExitStatus.unreachable)
        }
        let reply = Reply(status: status, body: try? JSONValue(parsing: bytes.readableBytesView))
        if status == 503 && unavailableThrows {
            let detail = reply.error.map { "\($0.code): \($0.message)" } ?? "503 Service Unavailable"
            throw CLIError(message: "the server cannot serve this now (\(detail))", code: ExitStatus.unreachable)
        }
        return reply
    }

    /// A refusal of the server as the error `revokectl` exits with (status 1).
    static func refusal(_ reply: Reply, doing what: String) -> CLIError {
        let detail: String
        if let error = reply.error {
            detail = error.message.isEmpty ? error.code : "\(error.code): \(error.message)"
        } else {
            detail = "HTTP \(reply.status)"
        }
        var message = "\(what): \(detail)"
        if reply.status == 401 && reply.error?.code == "unauthorized" { message += " (set REVOKE_ADMIN_KEY)" }
        return CLIError(message: message, code: ExitStatus.refused)
    }

    /// A path segment, percent-encoded.
    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectTimeout") { return "connection timed out" }
        if text.contains("readTimeout") || text.contains("deadlineExceeded") { return "no answer in time" }
        if text.contains("remoteConnectionClosed") { return "the connection closed" }
        return text
    }
}
