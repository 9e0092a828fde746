// libFuzzer entry points for every parser that takes outside bytes. `make fuzz` builds this
// with `-sanitize=fuzzer,address` and runs each target (REVOKE_FUZZ_TARGET) from its corpus in
// Fuzz/corpus/<target>. A target fails by crashing: a trap, an overflow, a sanitizer report,
// or a broken invariant checked below.

@testable import Redis
import RevokeCore
import RevokeSnapshot

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's own driver (`-sanitize=fuzzer` links it): it parses the flags, runs the corpus,
/// mutates, and calls back with each input.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

let name = getenv("REVOKE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
guard Targets.all[name] != nil else {
    let message = "REVOKE_FUZZ_TARGET must be one of \(Targets.all.keys.sorted().joined(separator: ", ")), not \"\(name)\"\n"
    _ = message.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    exit(2)
}
setenv("REVOKE_FUZZ_CHOSEN", name, 1)

/// Each input, to the chosen target. (libFuzzer's runtime also looks for it by this name.)
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // Checked above; read again here, as a C callback captures nothing.
    let chosen = Targets.all[String(cString: getenv("REVOKE_FUZZ_CHOSEN"))]!
    chosen(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv, testOneInput))

enum Targets {
    static let all: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    // The strict JSON parser: anything it accepts serializes and parses back to itself.
    "json": { bytes in
        guard let value = try? JSONValue(parsing: bytes) else { return }
        let again = value.serialized()
        guard let reparsed = try? JSONValue(parsing: again), reparsed.serialized() == again else {
            fatalError("JSON that parsed does not round-trip")
        }
    },
    // The claims of a compact JWS, as a check or a logout reads them.
    "jws": { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? TokenClaims(compactJWS: text)
        _ = try? CheckQuery(compactJWS: text)
    },
    // The snapshot decoder: a snapshot it accepts encodes back to the same bytes (one of the
    // current version), or to one that decodes to the same content (one of an older version).
    "snapshot": { bytes in
        guard let snapshot = try? Snapshot(decoding: bytes) else { return }
        let encoded = snapshot.encoded()
        if bytes[bytes.startIndex + 4] == Snapshot.version {
            guard encoded == Array(bytes) else { fatalError("a decoded snapshot does not encode to its bytes") }
            return
        }
        guard let again = try? Snapshot(decoding: encoded), again.cursor == snapshot.cursor, again.cutoffs == snapshot.cutoffs,
            again.keyBlocks == snapshot.keyBlocks, again.revocations == snapshot.revocations, again.encoded() == encoded
        else { fatalError("an older snapshot does not survive being written as the current version") }
    },
    // The client's event-stream reader, fed in two pieces split at the first byte's value.
    "sse": { bytes in
        var parser = EventStreamParser()
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        _ = parser.feed(bytes[..<split])
        _ = parser.feed(bytes[split...])
    },
    // hiredis' reply reader and its conversion to RedisValue.
    "resp": { bytes in
        guard let reader = try? HiredisReader() else { return }
        do {
            try reader.feed(bytes)
            while try reader.next() != nil {}
        } catch {}
    },
    // `redis://` URLs.
    "redis-url": { bytes in
        _ = try? RedisConfiguration(url: String(decoding: bytes, as: UTF8.self))
    },
    // `REVOKE_CUTOFF_CLAIMS`.
    "cutoff-claims": { bytes in
        _ = try? CutoffClaims(parsing: String(decoding: bytes, as: UTF8.self))
    },
]
}
