#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A `redis-server` process this program started and owns: the embedded store of `revoked`
/// and the private server of every test that needs Redis.
///
/// It listens on loopback only, on a port nobody else holds, with a password generated for
/// it, and its settings are written to a `redis.conf` in its directory (readable by this user
/// only) rather than on a command line every local user could read.
public final class RedisServerProcess: Sendable {
    /// How to start the server.
    public struct Options: Sendable {
        /// Where the configuration, logs and data go; created if missing.
        public var directory: String
        /// The TCP port on 127.0.0.1; nil picks a free one.
        public var port: Int?
        /// Whether to keep an append-only file, fsynced before Redis answers a write
        /// (`appendfsync always`): an acknowledged write survives a crash of Redis itself.
        public var appendOnly: Bool
        /// `requirepass`; nil generates a random one.
        public var password: String?
        /// The executable, found on `PATH` unless it contains a slash.
        public var executable: String

        public init(
            directory: String, port: Int? = nil, appendOnly: Bool = true, password: String? = nil,
            executable: String = "redis-server"
        ) {
            self.directory = directory
            self.port = port
            self.appendOnly = appendOnly
            self.password = password
            self.executable = executable
        }
    }

    /// Why the server could not be started.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The options it was started with, with the port and password filled in.
    public let options: Options
    /// The process id.
    public var pid: Int32 { pidBox.withLock { $0 } }
    /// The port it listens on, on 127.0.0.1.
    public var port: Int { options.port! }
    private let exitStatus = Mutex<ExitState>(.running([]))

    private enum ExitState {
        case running([CheckedContinuation<Int32, Never>])
        case exited(Int32)
    }

    /// A configuration that reaches this server.
    public func configuration(commandTimeout: Duration = .seconds(1)) -> RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, password: options.password, commandTimeout: commandTimeout)
    }

    /// Starts `redis-server` and waits until it answers `PING`.
    /// - Throws: ``StartError`` when the executable is missing, or the server exits or does
    ///   not answer within `timeout`, with the tail of its log.
    public static func start(_ options: Options, timeout: Duration = .seconds(10)) async throws -> RedisServerProcess {
        guard let executable = findExecutable(options.executable) else {
            throw StartError(description: "\(options.executable) was not found on PATH (install Debian's redis-server)")
        }
        var lastError: (any Error)?
        // A free port can be taken by someone else before Redis binds it: try a few.
        for _ in 0..<(options.port == nil ? 3 : 1) {
            do {
                return try await launch(executable: executable, options: options, timeout: timeout)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    private static func launch(executable: String, options requested: Options, timeout: Duration) async throws -> RedisServerProcess {
        var options = requested
        if options.port == nil { options.port = try freeLoopbackPort() }
        if options.password == nil { options.password = randomPassword() }
        let directory = URL(fileURLWithPath: options.directory, isDirectory: true).standardizedFileURL.path
        options.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await stopLeftover(in: directory)

        let configPath = directory + "/redis.conf"
        let config = """
            # Written by Revoke at every start; edits here are overwritten.
            bind 127.0.0.1
            port \(options.port!)
            protected-mode yes
            daemonize no
            dir \(quoted(directory))
            pidfile \(quoted(directory + "/redis.pid"))
            logfile \(quoted(directory + "/redis.log"))
            requirepass \(quoted(options.password!))
            save ""
            appendonly \(options.appendOnly ? "yes" : "no")
            appendfsync always

            """
        guard FileManager.default.createFile(atPath: configPath, contents: Data(config.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw StartError(description: "could not write \(configPath)")
        }

        let server = RedisServerProcess(options: options)
        let pid = try spawn(executable, arguments: [configPath])
        server.pidBox.withLock { $0 = pid }
        // A thread of its own waits for the child: waitpid blocks, so it must not run on the
        // cooperative pool or an event loop.
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            server.exited(with: status)
        }
        reaper.name = "redis-server reaper"
        reaper.start()

        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if server.hasExited {
                throw StartError(description: "redis-server exited at start: \(server.logTail())")
            }
            if let connection = try? await RedisConnection.connect(to: server.configuration()) {
                connection.close()
                return server
            }
            if clock.now >= deadline {
                await server.kill()
                throw StartError(description: "redis-server did not answer within \(timeout): \(server.logTail())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private let pidBox = Mutex<Int32>(0)

    private init(options: Options) {
        self.options = options
    }

    /// Starts the executable with a clean signal mask and default signal dispositions (the
    /// caller's threads may block SIGTERM, and a child would inherit that), in a process group
    /// of its own (a Ctrl-C on the terminal reaches its owner, which stops it in order), with
    /// standard streams on /dev/null (Redis logs to its own file).
    private static func spawn(_ executable: String, arguments: [String]) throws -> pid_t {
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
        posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&files, 2, "/dev/null", O_WRONLY, 0)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &files, &attributes, argv, environ)
        guard result == 0 else {
            throw StartError(description: "could not start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
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

    /// Waits for the process to exit and returns its status.
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

    /// Asks Redis to shut down (SIGTERM: it flushes the append-only file) and waits.
    public func stop() async {
        signal(SIGCONT)
        signal(SIGTERM)
        await waitUntilExit()
    }

    /// Kills the process at once (SIGKILL), as a crash would, and waits.
    public func kill() async {
        signal(SIGKILL)
        await waitUntilExit()
    }

    /// Freezes the process (SIGSTOP): connections stay open and nothing answers.
    public func pause() { signal(SIGSTOP) }

    /// Thaws a paused process (SIGCONT).
    public func resume() { signal(SIGCONT) }

    private func signal(_ signal: Int32) {
        let pid = self.pid
        guard pid > 0, !hasExited else { return }
        _ = Foundation.kill(pid, signal)
    }

    /// The last lines of the server's log, for error messages.
    public func logTail(lines: Int = 5) -> String {
        guard let log = try? String(contentsOfFile: options.directory + "/redis.log", encoding: .utf8) else {
            return "(no log)"
        }
        return log.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }

    /// Stops a `redis-server` left running on this directory by an earlier owner that died
    /// without stopping it, so that two servers never write the same append-only file.
    private static func stopLeftover(in directory: String) async throws {
        let pidPath = directory + "/redis.pid"
        guard let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return }
        let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        guard cmdline.contains("redis-server"), cmdline.contains(directory) || cmdline.contains("redis.conf") else {
            try? FileManager.default.removeItem(atPath: pidPath)
            return
        }
        _ = Foundation.kill(pid, SIGTERM)
        for _ in 0..<200 where Foundation.kill(pid, 0) == 0 {
            try await Task.sleep(for: .milliseconds(25))
        }
        if Foundation.kill(pid, 0) == 0 {
            throw StartError(description: "an earlier redis-server (pid \(pid)) still runs on \(directory)")
        }
    }

    /// A value for `redis.conf` in double quotes, every byte outside printable ASCII (and the
    /// quote and backslash) as `\\xHH`, so no value can end its line or start another directive.
    private static func quoted(_ value: String) -> String {
        var result = "\""
        for byte in value.utf8 {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                result.append(Character(Unicode.Scalar(byte)))
            } else {
                let hex = String(byte, radix: 16)
                result += "\\x" + (byte < 16 ? "0" + hex : hex)
            }
        }
        return result + "\""
    }

    private static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"]
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// 32 random hex digits from the system's secure generator.
    public static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(UInt8.random(in: 0...15, using: &generator), radix: 16) }.joined()
    }

    /// Asks the kernel for a free port on 127.0.0.1.
    public static func freeLoopbackPort() throws -> Int {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw StartError(description: "socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw StartError(description: "could not find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
