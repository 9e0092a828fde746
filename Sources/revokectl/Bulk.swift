import Foundation
import RevokeCore

/// Many subjects or `jti`s at once, from a file or standard input: one per line; blank lines
/// and lines starting with `#` are skipped. Runs a few requests at a time, shows progress on a
/// terminal, reports every refusal on its own line, and stops at the first sign that the
/// server cannot be reached (every operation is idempotent: running the file again is safe).
struct Bulk {
    /// What one item came to.
    enum Outcome: Sendable {
        case done(JSONValue?)
        /// Not done, said the server (or the item is not revoked), with why.
        case refused(String, JSONValue?)
    }

    static let concurrency = 16

    /// The items of `path` (`-` for standard input).
    static func items(from path: String) throws -> [String] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw CLIError.usage("cannot read \(path)")
            }
            data = contents
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError.usage("\(path) is not UTF-8 text") }
        return text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// Runs `operation` on every item; prints a summary (or one JSON line per item) and throws
    /// the exit status: 1 when any item was refused, 3 when the server went away.
    static func run(
        _ items: [String], noun: String, verb: String, json: Bool,
        _ operation: @escaping @Sendable (String) async throws -> Outcome
    ) async throws {
        guard !items.isEmpty else { throw CLIError.usage("no \(noun) given") }
        var done = 0, refused = 0, finished = 0
        var stopped: CLIError?
        let progress = Terminal.showsProgress && items.count > 1
        try await withThrowingTaskGroup(of: (String, Result<Outcome, CLIError>).self) { group in
            var next = 0
            func startNext() {
                guard next < items.count, stopped == nil else { return }
                let item = items[next]
                next += 1
                group.addTask {
                    do { return (item, .success(try await operation(item))) } catch let error as CLIError { return (item, .failure(error)) }
                }
            }
            for _ in 0..<min(concurrency, items.count) { startNext() }
            while let (item, result) = try await group.next() {
                finished += 1
                switch result {
                case .success(.done(let body)):
                    done += 1
                    if json { Terminal.json(.object(["item": .string(item), "ok": .bool(true), "result": body ?? .null])) }
                case .success(.refused(let why, let body)):
                    refused += 1
                    if progress { Terminal.endProgress() }
                    if json {
                        Terminal.json(.object(["item": .string(item), "ok": .bool(false), "error": .string(why), "result": body ?? .null]))
                    } else {
                        Terminal.error("\(item): \(why)")
                    }
                case .failure(let error) where error.code == ExitStatus.unreachable:
                    stopped = stopped ?? error
                case .failure(let error):
                    refused += 1
                    if progress { Terminal.endProgress() }
                    Terminal.error("\(item): \(error.message)")
                }
                if progress { Terminal.progress("\(verb): \(finished)/\(items.count), \(refused) refused") }
                startNext()
            }
        }
        if progress { Terminal.endProgress() }
        let summary = "\(items.count) \(noun): \(done) \(verb), \(refused) refused, \(items.count - done - refused) not done"
        if json { FileHandle.standardError.write(Data("\(summary)\n".utf8)) } else { print(summary) }
        if let stopped {
            throw CLIError(message: "\(stopped.message); stopped (running the same input again is safe)", code: ExitStatus.unreachable)
        }
        if refused > 0 { throw CLIError(message: "\(refused) of \(items.count) \(noun) refused", code: ExitStatus.refused) }
    }
}
