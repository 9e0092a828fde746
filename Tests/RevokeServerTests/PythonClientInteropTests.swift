import Foundation
import RevokeCore
import RevokeSnapshot
import RevokeTestSupport
import Testing

/// The Python client (`clients/python`, installed into the tests' virtual environment by
/// `make test`) reads the snapshot this repository writes exactly as the Swift client does: the
/// same filter answers for 100,000 `jti`s, the same cutoffs, key blocks and cursor.
@Suite struct PythonClientInteropTests {
    static let script = """
        import json, sys
        from revoke_client import decode_snapshot
        snapshot = decode_snapshot(open(sys.argv[1], "rb").read())
        probes = open(sys.argv[2], encoding="utf-8").read().split("\\n")
        answers = "".join("1" if snapshot.filter.might_contain(jti) else "0" for jti in probes)
        print(json.dumps({
            "answers": answers, "cursor": snapshot.cursor, "revocations": snapshot.revocations,
            "cutoffs": [[c.claim, c.value, c.before, c.expires_at] for c in snapshot.cutoffs],
            "key_blocks": snapshot.key_blocks,
        }))
        """

    @Test func theSwiftAndPythonFiltersGiveTheSameAnswers() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "python-interop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let present = (0..<50_000).map { $0 % 7 == 0 ? "jti-ü-\($0)-é" : "jti-\($0)-\(UUID().uuidString)" }
        let absent = (0..<50_000).map { $0 % 7 == 0 ? "absent-日本-\($0)" : "absent-\($0)-\(UUID().uuidString)" }
        let filter = BloomFilter(capacity: present.count, falsePositiveRate: 0.01)
        for jti in present { filter.insert(jti) }
        let cutoffs = [
            Snapshot.Cutoff(claim: "sub", value: "alice", before: 1_795_000_000, expiresAt: 1_796_000_000),
            Snapshot.Cutoff(claim: "iss", value: "https://idp.example", before: 1_795_000_100, expiresAt: 1_796_000_100),
        ]
        let snapshot = Snapshot(
            createdAt: 1_795_000_200, cursor: "1795000200000-7", revocations: present.count, filter: filter, cutoffs: cutoffs,
            keyBlocks: ["leaked-1", "clé-2"])
        let snapshotPath = directory.appending(path: "snapshot").path
        let probesPath = directory.appending(path: "probes").path
        let scriptPath = directory.appending(path: "read.py").path
        try Data(snapshot.encoded()).write(to: URL(fileURLWithPath: snapshotPath))
        let probes = present + absent
        try probes.joined(separator: "\n").write(toFile: probesPath, atomically: true, encoding: .utf8)
        try Self.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)

        let run = try await ProcessRun.run(ProcessRun.python, [scriptPath, snapshotPath, probesPath])
        guard run.status == 0 else {
            throw SetupError("the Python client could not read the snapshot (is it installed? `make test` installs it): \(run)")
        }
        let answer = run.json
        guard case .string(let python)? = answer["answers"] else { throw SetupError("no answers: \(run)") }
        let swift = String(probes.map { filter.mightContain($0) ? "1" : "0" })
        #expect(python.count == probes.count)
        let disagreements = zip(swift, python).filter { $0 != $1 }.count
        #expect(disagreements == 0)
        #expect(python.prefix(present.count).allSatisfy { $0 == "1" })
        let falsePositives = python.suffix(absent.count).filter { $0 == "1" }.count
        #expect(falsePositives < absent.count / 20)
        #expect(answer["cursor"] == .string("1795000200000-7"))
        #expect(answer["revocations"] == .number(Double(present.count)))
        #expect(answer["key_blocks"] == .array([.string("leaked-1"), .string("clé-2")]))
        #expect(
            answer["cutoffs"]
                == .array(cutoffs.map { .array([.string($0.claim), .string($0.value), .number(Double($0.before)), .number(Double($0.expiresAt))]) }))
    }
}
