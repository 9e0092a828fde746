import Foundation
import HummingbirdTesting
import LoopbackHTTP
import RevokeServer
import RevokeTestSupport
import Testing

/// `POST /v1/check` is answered on the connection's event loop, every other request by
/// Hummingbird: on one connection, whatever the mix and however requests are pipelined, each
/// answer is the right one and they come back in request order.
@Suite struct DirectCheckTests {
    /// One request as written on the wire.
    private static func request(_ method: String, _ path: String, json: String? = nil, headers: [String] = []) -> String {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for header in headers { head += header + "\r\n" }
        guard let json else { return head + "\r\n" }
        if !headers.contains(where: { $0.lowercased().hasPrefix("content-type:") }) { head += "Content-Type: application/json\r\n" }
        return head + "Content-Length: \(json.utf8.count)\r\n\r\n" + json
    }

    /// The answers in `text`, each its status and body, split by their `Content-Length`.
    private static func answers(in text: String) throws -> [(status: Int, headers: String, body: String)] {
        var rest = Substring(text)
        var answers: [(Int, String, String)] = []
        while !rest.isEmpty {
            let end = try #require(rest.range(of: "\r\n\r\n"), "no end of head in \(rest.prefix(200))")
            let head = rest[..<end.lowerBound]
            let status = try #require(Int(head.dropFirst("HTTP/1.1 ".count).prefix(3)), "no status in \(head)")
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let body = rest[end.upperBound...].utf8.prefix(length)
            answers.append((status, String(head), String(decoding: body, as: UTF8.self)))
            rest = Substring(rest[end.upperBound...].utf8.dropFirst(length))
        }
        return answers
    }

    /// Writes every request at once, the last with `Connection: close`, and reads until the
    /// server closes. (The socket's 60 s is a guard against a hang, not a bound on the answer:
    /// with every suite running at once on a busy machine, 10 s was once not enough.)
    private static func pipeline(port: Int, _ requests: [String]) async throws -> String {
        try await RawHTTP.onThread {
            let socket = try LoopbackSocket(port: port, timeout: 60)
            try socket.write(requests.joined())
            return try socket.read()
        }
    }

    @Test func pipelinedChecksAndOtherRequestsAreAnsweredInOrder() async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            try await RawHTTP.revoke(port: port, jti: "pipelined-dead", key: "admin-secret")
            let close = ["Connection: close"]
            let requests = [
                Self.request("POST", "/v1/check", json: #"{"jti":"pipelined-dead"}"#),
                Self.request("GET", "/healthz"),
                Self.request("POST", "/v1/check", json: #"{"jti":"pipelined-alive"}"#),
                Self.request("POST", "/v1/check/batch", json: #"{"checks":[{"jti":"pipelined-dead"},{"jti":"x"}]}"#),
                Self.request("POST", "/v1/check", json: #"{"jti":5}"#),
                Self.request("POST", "/v1/check", json: #"{"jti":"x"}"#, headers: ["Content-Type: text/plain"]),
                Self.request("GET", "/v1/check"),
                Self.request("POST", "/v1/check?from=pipeline", json: #"{"jti":"pipelined-dead"}"#),
                Self.request("GET", "/v1/revocations/pipelined-dead", headers: ["Authorization: Bearer admin-secret"]),
                Self.request("POST", "/v1/check", json: #"{"jti":"pipelined-dead"}"#, headers: close),
            ]
            let answers = try Self.answers(in: try await Self.pipeline(port: port, requests))
            try #require(answers.count == requests.count, "\(answers.map(\.status))")
            #expect(answers.map(\.status) == [200, 200, 200, 200, 400, 415, 405, 200, 200, 200])
            #expect(answers[0].body == #"{"reason":"jti","revoked":true}"#)
            #expect(answers[1].body.contains(#""status""#))
            #expect(answers[2].body == #"{"revoked":false}"#)
            #expect(answers[3].body == #"{"results":[{"reason":"jti","revoked":true},{"revoked":false}]}"#)
            #expect(answers[4].body == #"{"error":"invalid_request","message":"jti must be a string"}"#)
            #expect(answers[5].body.contains(#""error":"unsupported_media_type""#))
            #expect(answers[6].headers.contains("Allow: POST"))
            #expect(answers[7].body == #"{"reason":"jti","revoked":true}"#)
            #expect(answers[8].body.contains(#""jti":"pipelined-dead""#))
            #expect(answers[9].body == #"{"reason":"jti","revoked":true}"#)
            // Every answer carries the headers Hummingbird writes on its own.
            for answer in answers {
                #expect(answer.headers.contains("\r\nDate: ") && answer.headers.contains("\r\nServer: revoked"), "\(answer.headers)")
                #expect(answer.headers.contains("\r\nContent-Type: application/json; charset=utf-8"), "\(answer.headers)")
            }
        }
    }

    @Test func aCheckBehindARequestHummingbirdStillAnswersWaitsItsTurn() async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            try await RawHTTP.revoke(port: port, jti: "behind-dead", key: "admin-secret")
            // A revocation whose body is not all there yet: Hummingbird has begun it and cannot
            // answer it. A check written behind it on the same connection must wait.
            let revoke = Self.request(
                "POST", "/v1/revocations", json: #"{"jti":"behind-new","expires_at":null}"#, headers: ["Authorization: Bearer admin-secret"])
            let check = Self.request("POST", "/v1/check", json: #"{"jti":"behind-new"}"#, headers: ["Connection: close"])
            let text = try await RawHTTP.onThread {
                let socket = try LoopbackSocket(port: port, timeout: 60)
                try socket.write(String(revoke.dropLast()))
                // The rest of the revocation and the check behind it come later, in one write.
                Thread.sleep(forTimeInterval: 0.1)
                try socket.write(String(revoke.last!) + check)
                return try socket.read()
            }
            let answers = try Self.answers(in: text)
            #expect(answers.map(\.status) == [201, 200])
            // The check saw the revocation written before it.
            #expect(answers.last?.body == #"{"reason":"jti","revoked":true}"#)
        }
    }

    @Test func aConnectionGoesOnAfterARefusedCheck() async throws {
        try await withRevoked(configure: { $0.verifierKeys = [.init(name: "gateway", secret: "verify-me", role: .verifier)] }) {
            (client, _, _) async throws in
            let port = try #require(client.port)
            let oversized = #"{"jti":""# + String(repeating: "x", count: 70_000) + #""}"#
            let requests = [
                Self.request("POST", "/v1/check", json: #"{"jti":"x"}"#),
                Self.request("POST", "/v1/check", json: oversized, headers: ["Authorization: Bearer verify-me"]),
                Self.request("POST", "/v1/check", json: "{not json", headers: ["Authorization: Bearer verify-me"]),
                Self.request("POST", "/v1/check", json: #"{"jti":"x"}"#, headers: ["Authorization: Bearer verify-me", "Connection: close"]),
            ]
            let answers = try Self.answers(in: try await Self.pipeline(port: port, requests))
            #expect(answers.map(\.status) == [401, 413, 400, 200])
            #expect(answers[0].headers.contains("WWW-Authenticate: Bearer"))
            #expect(answers[0].body.contains(#""error":"unauthorized""#))
            #expect(answers[1].body.contains(#""error":"payload_too_large""#))
            #expect(answers[2].body.contains(#""error":"invalid_request""#))
            #expect(answers[3].body == #"{"revoked":false}"#)
        }
    }

    @Test func aBrokenRequestBehindACheckEndsTheConnectionAfterTheCheckIsAnswered() async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            let text = try await Self.pipeline(
                port: port, [Self.request("POST", "/v1/check", json: #"{"jti":"x"}"#), "NOT HTTP AT ALL\r\n\r\n"])
            let answers = try Self.answers(in: text)
            #expect(answers.map(\.status) == [200, 400])
            #expect(answers.first?.body == #"{"revoked":false}"#)
        }
    }
}
