#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A process this program started and owns, by pid: `revoked`'s embedded `redis-server`, and
/// the processes tests and benchmarks run.
///
/// It is started with `posix_spawn`, with a clean signal mask and default signal dispositions
/// (the caller's threads may block SIGTERM, as libdispatch's do, and a child would inherit
/// that and ignore it), in a process group of its own (a Ctrl-C on the terminal reaches its
/// owner, which stops it in order). A thread of its own reaps it: `waitpid` blocks, so it must
/// not run on the cooperative pool or an event loop.
public final class ChildProcess: Sendable {
    /// Why the process could not be started.
    public struct SpawnError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The process id.
    public let pid: pid_t
    private let exitStatus = Mutex<ExitState>(.running([]))

    private enum ExitState {
        case running([CheckedContinuation<Int32, Never>])
        case exited(Int32)
    }

    /// Starts `executable` (a path, or a name looked up on `PATH`).
    /// - Parameters:
    ///   - environment: the whole environment of the child; nil inherits this process's.
    ///   - standardInput, standardOutput, standardError: files for the streams (created or
    ///     truncated for output); nil is `/dev/null`.
    public static func spawn(
        _ executable: String, arguments: [String] = [], environment: [String: String]? = nil,
        standardInput: String? = nil, standardOutput: String? = nil, standardError: String? = nil
    ) throws -> ChildProcess {
        guard let path = findExecutable(executable) else {
            throw SpawnError(description: "\(executable) was not found on PATH")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        posix_spawn_file_actions_addopen(&files, 0, standardInput ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&files, 1, standardOutput ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&files, 2, standardError ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }
        var pid: pid_t = 0
        let result = envp.map { posix_spawn(&pid, path, &files, &attributes, argv, $0) }
            ?? posix_spawn(&pid, path, &files, &attributes, argv, environ)
        guard result == 0 else {
            throw SpawnError(description: "could not start \(path): \(String(cString: strerror(result)))")
        }
        let child = ChildProcess(pid: pid)
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(child.pid, &status, 0) == -1 && errno == EINTR {}
            child.exited(with: status)
        }
        reaper.name = "reaper of \(URL(fileURLWithPath: path).lastPathComponent)"
        reaper.start()
        return child
    }

    private init(pid: pid_t) {
        self.pid = pid
    }

    private func exited(with status: Int32) {
        let waiters = exitStatus.withLock { state -> [CheckedContinuation<Int32, Never>] in
            defer { state = .exited(status) }
            if case .running(let waiters) = state { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    /// Whether the process has exited.
    public var hasExited: Bool {
        exitStatus.withLock { state in
            if case .exited = state { return true }
            return false
        }
    }

    /// Waits for the process to exit and returns its raw `waitpid` status (see
    /// ``exitCode(of:)``).
    @discardableResult
    public func waitUntilExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = exitStatus.withLock { state -> Int32? in
                switch state {
                case .exited(let status): return status
                case .running(var waiters):
                    waiters.append(continuation)
                    state = .running(waiters)
                    return nil
                }
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// The exit code of a raw `waitpid` status, or nil when a signal ended the process.
    public static func exitCode(of status: Int32) -> Int32? {
        status & 0x7f == 0 ? (status >> 8) & 0xff : nil
    }

    /// Sends `signal`, unless the process has already exited (its pid may then be reused).
    public func signal(_ signal: Int32) {
        guard !hasExited else { return }
        _ = Foundation.kill(pid, signal)
    }

    /// Asks the process to stop (SIGCONT, then SIGTERM) and waits for it.
    @discardableResult
    public func terminate() async -> Int32 {
        signal(SIGCONT)
        signal(SIGTERM)
        return await waitUntilExit()
    }

    /// Kills the process at once (SIGKILL), as a crash would, and waits.
    @discardableResult
    public func kill() async -> Int32 {
        signal(SIGKILL)
        return await waitUntilExit()
    }

    /// The path of `name`: itself when it contains a slash, else the first match on `PATH`.
    public static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"]
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
