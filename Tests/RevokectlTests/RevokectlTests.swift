import ChildProcess
import Foundation
import HummingbirdTesting
import Redis
import RedisSupervisor
import RedisTestSupport
import RevokeCore
import RevokeServer
import RevokeTestSupport
import Testing

@Suite struct RevokectlTests {
    /// Every error is one line on standard error, starting with the program's name.
    func expectOneLine(_ run: Revokectl.Run, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.error.hasPrefix("revokectl: ") && run.error.split(separator: "\n").count == 1, "\(run.error)", sourceLocation: sourceLocation)
        #expect(run.error.contains(text), "\(run.error)", sourceLocation: sourceLocation)
    }

    @Test func everySubcommandWithItsExitCodesAndJSON() async throws {
        try await withRevoked { configuration in
            configuration.snapshotMaximumAge = 0
        } _: { (client, _, _) async throws in
            let ctl = Revokectl(url: "http://localhost:\(try #require(client.port))")

            // status, with and without the admin key.
            var anonymous = ctl
            anonymous.key = nil
            let open = try await anonymous("status")
            #expect(open.status == 0 && open.output.contains("ready") && open.output.contains("set REVOKE_ADMIN_KEY"), "\(open)")
            let status = try await ctl("status", "--json")
            #expect(status.status == 0 && status.json["ready"] == .bool(true), "\(status)")

            // revoke <token> (logout, the token on standard input), then check it.
            let token = Mint.hmac(payload: Mint.claims(jti: "ctl-logout"))
            let logout = try await anonymous("revoke", "-", "--json", input: token + "\n")
            #expect(logout.status == 0 && logout.json["jti"] == .string("ctl-logout"), "\(logout)")
            let checked = try await ctl("check", "-", input: token)
            #expect(checked.status == 0 && checked.output == "revoked: the jti\n", "\(checked)")
            let forged = try await anonymous("revoke", String(token.dropLast(4)) + "AAAA")
            #expect(forged.status == 1)
            expectOneLine(forged, "invalid_token")

            // revoke --jti, show, unrevoke (twice: the second finds nothing).
            let revoked = try await ctl("revoke", "--jti", "ctl-1", "--expires-at", "+1h", "--reason", "pasted in a ticket")
            #expect(revoked.status == 0 && revoked.output.contains("pasted in a ticket"), "\(revoked)")
            let shown = try await ctl("show", "--jti", "ctl-1", "--json")
            #expect(shown.status == 0 && shown.json["reason"] == .string("pasted in a ticket"), "\(shown)")
            #expect(try await ctl("unrevoke", "--jti", "ctl-1", "--reason", "mistake").status == 0)
            let again = try await ctl("unrevoke", "--jti", "ctl-1")
            #expect(again.status == 1)
            expectOneLine(again, "not revoked")
            #expect(try await ctl("show", "--jti", "ctl-1").status == 1)
            let expired = try await ctl("revoke", "--jti", "ctl-old", "--expires-at", "1000")
            #expect(expired.status == 1)
            expectOneLine(expired, "already expired")

            // revoke-user and cutoff; check by claims; an unknown claim is refused.
            let user = try await ctl("revoke-user", "alice", "--reason", "laptop stolen", "--json")
            #expect(user.status == 0 && user.json["claim"] == .string("sub") && user.json["value"] == .string("alice"), "\(user)")
            let cut = try await ctl("check", "--jti", "any", "--claim", "sub=alice", "--iat", "-1h", "--json")
            #expect(cut.status == 0 && cut.json["reason"] == .string("cutoff"), "\(cut)")
            let clean = try await ctl("check", "--jti", "any", "--claim", "sub=bob")
            #expect(clean.status == 1 && clean.output == "not revoked\n", "\(clean)")
            #expect(try await ctl("cutoff", "--claim", "sid", "--value", "s-1", "--before", "now").status == 0)
            #expect(try await ctl("show", "--claim", "sid", "--value", "s-1").output.contains("s-1"))
            let unknownClaim = try await ctl("cutoff", "--claim", "email", "--value", "a@example.com")
            #expect(unknownClaim.status == 1)
            expectOneLine(unknownClaim, "claim must be one of")
            #expect(try await ctl("unrevoke", "--claim", "sid", "--value", "s-1").status == 0)

            // audit: newest first, as a table or JSON.
            let audit = try await ctl("audit", "--limit", "2", "--json")
            guard case .array(let entries)? = audit.json["entries"] else {
                Issue.record("no entries: \(audit)")
                return
            }
            #expect(entries.count == 2)
            #expect(entries.first.flatMap { if case .object(let entry) = $0 { entry["action"] } else { nil } } == .string("uncutoff"))
            let table = try await ctl("audit")
            #expect(table.status == 0 && table.output.hasPrefix("AT ") && table.output.contains("laptop stolen"), "\(table)")
            let counted = try await ctl("status", "--json")
            guard case .object(let details)? = counted.json["status"] else {
                Issue.record("no status details: \(counted)")
                return
            }
            #expect(details["revocations"] == .number(1) && details["cutoffs"] == .number(1), "\(counted)")

            // Usage errors: exit 2 and one line; --help: exit 0 with an example.
            for arguments in [["frobnicate"], ["revoke"], ["revoke", "--jti", "x"], ["revoke", "--jti", "x", "--expires-at", "soon"], ["audit", "--limit", "0"],
                ["check", "--claim", "novalue"], ["show", "--claim", "sub"]]
            {
                let run = try await ctl(arguments)
                #expect(run.status == 2, "\(arguments): \(run)")
                expectOneLine(run, "(see revokectl --help)")
            }
            for command in ["revoke", "revoke-user", "cutoff", "unrevoke", "check", "show", "audit", "status"] {
                let help = try await ctl(command, "--help")
                #expect(help.status == 0 && help.output.contains("Example:"), "\(command)")
            }

            // Wrong key: refused (1), with the hint.
            var wrongKey = ctl
            wrongKey.key = "nope"
            let refused = try await wrongKey("revoke-user", "mallory")
            #expect(refused.status == 1)
            expectOneLine(refused, "set REVOKE_ADMIN_KEY")
        }
    }

    @Test func bulkRevokesThousandsFromAFileOrStandardInput() async throws {
        try await withRevoked { (client, redis, _) async throws in
            let ctl = Revokectl(url: "http://localhost:\(try #require(client.port))")
            let users = (0..<1000).map { "user-\($0)" }
            let file = FileManager.default.temporaryDirectory.appending(path: "users-\(UUID().uuidString).txt").path
            defer { try? FileManager.default.removeItem(atPath: file) }
            // A comment, a blank line, and one value too long for the server.
            try (["# INC-4121"] + users + ["", String(repeating: "x", count: 300)]).joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let run = try await ctl("revoke-user", "--from", file, "--reason", "INC-4121")
            #expect(run.status == 1, "\(run)")
            #expect(run.output == "1001 users: 1000 cut off, 1 refused, 0 not done\n", "\(run)")
            #expect(run.error.contains("at most 256"))
            let keys = try await redis.send(RedisCommand("KEYS", "revoke:cut:sub:user-*"))
            #expect(keys.array?.count == 1000)

            // From standard input, as JSON lines; running it again is harmless.
            let json = try await ctl("revoke-user", "--from", "-", "--json", input: users.prefix(10).joined(separator: "\n"))
            #expect(json.status == 0, "\(json)")
            #expect(json.jsonLines.count == 10 && json.jsonLines.allSatisfy { $0["ok"] == .bool(true) })
            let jtis = try await ctl("revoke", "--from", "-", "--expires-at", "never", input: "j-1\nj-2\nj-3\n")
            #expect(jtis.status == 0 && jtis.output == "3 jtis: 3 revoked, 0 refused, 0 not done\n", "\(jtis)")
            #expect(try await ctl("check", "--jti", "j-2").status == 0)
        }
    }

    @Test func anUnreachableServerOrStoreExits3() async throws {
        try await withRevoked { (client, _, server) async throws in
            let ctl = Revokectl(url: "http://localhost:\(try #require(client.port))")
            server.pause()
            let storeDown = try await ctl("revoke-user", "alice")
            server.resume()
            #expect(storeDown.status == 3)
            expectOneLine(storeDown, "store_unavailable")
        }
        let nowhere = Revokectl(url: "http://127.0.0.1:\(try RedisServerProcess.freeLoopbackPort())")
        let run = try await nowhere("status")
        #expect(run.status == 3)
        expectOneLine(run, "connection refused")
        let bulk = try await nowhere("revoke-user", "--from", "-", input: "a\nb\nc\n")
        #expect(bulk.status == 3 && bulk.error.contains("running the same input again is safe"), "\(bulk)")
        let badURL = try await Revokectl(url: "ftp://example")("status")
        #expect(badURL.status == 2)
    }
}
