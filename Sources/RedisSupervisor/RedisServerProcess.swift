#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ChildProcess
import Foundation
import Redis
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
        /// Where the configuration, logs and data go; created if missing, and always mode 0700.
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
        /// Whether to run as a sentinel (`--sentinel`); ``extraConfiguration`` then holds its
        /// `sentinel monitor ...` lines.
        public var sentinel: Bool
        /// Directives appended to `redis.conf` as given (TLS, `replicaof`, `sentinel ...`):
        /// written by this program's own callers, never from outside input.
        public var extraConfiguration: [String]

        public init(
            directory: String, port: Int? = nil, appendOnly: Bool = true, password: String? = nil,
            executable: String = "redis-server", sentinel: Bool = false, extraConfiguration: [String] = []
        ) {
            self.directory = directory
            self.port = port
            self.appendOnly = appendOnly
            self.password = password
            self.executable = executable
            self.sentinel = sentinel
            self.extraConfiguration = extraConfiguration
        }
    }

    /// Why the server could not be started.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The options it was started with, with the port and password filled in.
    public let options: Options
    /// The process.
    public let process: ChildProcess
    /// The process id.
    public var pid: Int32 { process.pid }
    /// The port it listens on, on 127.0.0.1.
    public var port: Int { options.port! }

    /// A configuration that reaches this server.
    public func configuration(commandTimeout: Duration = .seconds(1)) -> RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, password: options.password, commandTimeout: commandTimeout)
    }

    /// Starts `redis-server` and waits until it answers `PING`.
    /// - Throws: ``StartError`` when the executable is missing, or the server exits or does
    ///   not answer within `timeout`, with the tail of its log.
    public static func start(_ options: Options, timeout: Duration = .seconds(10)) async throws -> RedisServerProcess {
        guard let executable = ChildProcess.findExecutable(options.executable) else {
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
        try makePrivateDirectory(directory)
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
            \(options.extraConfiguration.joined(separator: "\n"))

            """
        try writePrivateFile(configPath, contents: Array(config.utf8))

        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(executable, arguments: options.sentinel ? [configPath, "--sentinel"] : [configPath])
        } catch {
            throw StartError(description: "\(error)")
        }
        let server = RedisServerProcess(options: options, process: process)

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

    private init(options: Options, process: ChildProcess) {
        self.options = options
        self.process = process
    }

    /// Whether the process has exited.
    public var hasExited: Bool { process.hasExited }

    /// Waits for the process to exit and returns its status.
    @discardableResult
    public func waitUntilExit() async -> Int32 { await process.waitUntilExit() }

    /// Asks Redis to shut down (SIGTERM: it flushes the append-only file) and waits.
    public func stop() async { await process.terminate() }

    /// Starts the same server again (after ``kill()`` or ``stop()``), with the same options and
    /// directory: on the same port, with the same password and, with an append-only file, data.
    public func restart(timeout: Duration = .seconds(10)) async throws -> RedisServerProcess {
        try await Self.start(options, timeout: timeout)
    }

    /// Kills the process at once (SIGKILL), as a crash would, and waits.
    public func kill() async { await process.kill() }

    /// Freezes the process (SIGSTOP): connections stay open and nothing answers.
    public func pause() { process.signal(SIGSTOP) }

    /// Thaws a paused process (SIGCONT).
    public func resume() { process.signal(SIGCONT) }

    /// The last lines of the server's log, for error messages.
    public func logTail(lines: Int = 5) -> String {
        guard let log = try? String(contentsOfFile: options.directory + "/redis.log", encoding: .utf8) else {
            return "(no log)"
        }
        return log.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }

    /// Creates `path` (and its parents) with mode 0700, or makes an existing directory 0700: it holds the password (`redis.conf`) and the data (audit reasons, key names),
    /// which no other local user may read. Fails when that cannot be made so.
    private static func makePrivateDirectory(_ path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw StartError(description: "cannot create \(parent): \(error.localizedDescription)")
            }
        }
        // 0700 from the first instant, whatever the umask (it can only remove bits).
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw StartError(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw StartError(description: "\(path) is not a directory")
        }
        // chmod fails on a directory of another user: that is refused too.
        if status.st_mode & 0o077 != 0 && chmod(path, 0o700) != 0 {
            throw StartError(description: "cannot make \(path) private (chmod 0700): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `contents` to `path` readable and writable by this user only, from the moment
    /// the file exists (an existing file is made 0600 before anything is written to it).
    private static func writePrivateFile(_ path: String, contents: [UInt8]) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StartError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fchmod(descriptor, 0o600) == 0 else {
            throw StartError(description: "cannot make \(path) private (chmod 0600): \(String(cString: strerror(errno)))")
        }
        var offset = 0
        while offset < contents.count {
            let written = contents[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw StartError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += written
        }
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

    /// 32 random hex digits from the system's secure generator.
    public static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(UInt8.random(in: 0...15, using: &generator), radix: 16) }.joined()
    }

    /// Ports handed out by this process, never handed out again: two callers at once must not
    /// get the same free port before either listens on it.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A free port on 127.0.0.1 for a server to listen on, below the kernel's ephemeral range
    /// (`ip_local_port_range`): a port the kernel picked from that range is free only until an
    /// outgoing connection takes it as its own, which a busy test run does within moments
    /// ("Address already in use" when the server starts). Random in 10000 up to that range,
    /// checked by binding it; the kernel's pick only when no such port is found.
    public static func freeLoopbackPort() throws -> Int {
        let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
        if ephemeralStart > 10_001 {
            for _ in 0..<200 {
                let port = Int.random(in: 10_000..<ephemeralStart)
                let claimed = handedOut.withLock { $0.insert(port).inserted }
                guard claimed else { continue }
                if (try? bindLoopback(port: port)) != nil { return port }
            }
        }
        let port = try bindLoopback(port: 0)
        handedOut.withLock { _ = $0.insert(port) }
        return port
    }

    /// Binds a socket to 127.0.0.1:`port` (0: the kernel picks), with `SO_REUSEADDR` as servers
    /// bind, and returns the port it got; the socket is closed again.
    private static func bindLoopback(port: Int) throws -> Int {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw StartError(description: "socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw StartError(description: "could not bind 127.0.0.1:\(port): errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
