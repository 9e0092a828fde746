import HummingbirdTesting
import RevokeTestSupport
import Testing

/// A body over 64 KiB is answered 413 with the JSON error body, and the client reads it: the
/// server goes on reading what the client sends instead of resetting the connection under it,
/// however large the body and however slowly it arrives.
@Suite struct LargeBodyTests {
    @Test(arguments: [RawHTTP.Framing.contentLength, .chunked])
    func aSlowOversizedBodyIsAnswered413NotReset(_ framing: RawHTTP.Framing) async throws {
        try await withRevoked { (client, _, _) async throws in
            let port = try #require(client.port)
            for path in ["/v1/check", "/v1/revoke", "/v1/check/batch"] {
                // 1 MiB in 16 KiB pieces, 2 ms apart: the way a slow client uploads.
                let answer = try await RawHTTP.upload(
                    port: port, path: path, framing: framing, total: 1 << 20, piece: 16 << 10, pause: 0.002)
                #expect(answer.hasPrefix("HTTP/1.1 413"), "\(path): \(answer.prefix(120))")
                #expect(answer.contains(#""error":"payload_too_large""#), "\(path): \(answer.prefix(300))")
            }
        }
    }
}
