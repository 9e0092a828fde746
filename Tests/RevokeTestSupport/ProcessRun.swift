import ChildProcess
import Foundation
import RevokeCore

/// A program run to its end: its exit status and what it printed.
public struct ProcessRun: Sendable, CustomStringConvertible {
    public var status: Int32
    public var output: String
    public var error: String

    public var description: String { "exit \(status)\nstdout: \(output.prefix(2000))\nstderr: \(error.prefix(2000))" }

    public var json: [String: JSONValue] {
        guard case .object(let object)? = try? JSONValue(parsing: Array(output.utf8)) else { return [:] }
        return object
    }

    /// The lines of standard output, each parsed as JSON.
    public var jsonLines: [[String: JSONValue]] {
        output.split(separator: "\n").compactMap {
            guard case .object(let object)? = try? JSONValue(parsing: Array($0.utf8)) else { return nil }
            return object
        }
    }

    /// The Python with the tests' tools (`make test` sets `REVOKE_TEST_PYTHON` to .build/pyenv's).
    public static var python: String { ProcessInfo.processInfo.environment["REVOKE_TEST_PYTHON"] ?? "python3" }

    /// Runs `executable` with `environment` (PATH added), `input` as its standard input.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) async throws -> ProcessRun {
        let directory = FileManager.default.temporaryDirectory.appending(path: "run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (inputPath, outputPath, errorPath) = (directory.appending(path: "in").path, directory.appending(path: "out").path, directory.appending(path: "err").path)
        if let input { try input.write(toFile: inputPath, atomically: true, encoding: .utf8) }
        var environment = environment
        environment["PATH"] = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let process = try ChildProcess.spawn(
            executable, arguments: arguments, environment: environment,
            standardInput: input == nil ? nil : inputPath, standardOutput: outputPath, standardError: errorPath)
        let status = ChildProcess.exitCode(of: await process.waitUntilExit()) ?? -1
        return ProcessRun(
            status: status, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            error: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
    }
}

/// A test's own tooling failed (a program missing or exiting badly), as opposed to an expectation.
public struct SetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
