import EventLoopExecutor
import Foundation
import NIOCore
import NIOPosix
import Redis
import RedisSupervisor

/// `make bench` (Redis part): EXISTS throughput of our Redis layer with 1, 16 and 64
/// concurrent callers, against `redis-benchmark` on the same private server in the same run:
/// callers on Swift's global pool, then on the connection's event loop (where `revoked`'s
/// request handlers run, each on its HTTP connection's loop), then callers that are no tasks
/// but callbacks on that loop, as `revoked` answers `POST /v1/check`.
@main
struct RedisBenchmark {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let seconds = arguments.firstIndex(of: "--seconds").map { Double(arguments[$0 + 1]) ?? 3 } ?? 3
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("revoke-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await RedisServerProcess.start(.init(directory: directory, appendOnly: false))
        // Stopped before the process ends, whether the measurements ran or failed.
        do {
            try await measure(server, seconds: seconds)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    /// Every measurement, on `server`.
    static func measure(_ server: RedisServerProcess, seconds: Double) async throws {
        print("redis-server \(server.pid) on 127.0.0.1:\(server.port); \(seconds) s per measurement; EXISTS key:<random of 100000>")

        // Some keys exist, most do not, like revocation checks.
        let seeding = try await RedisConnection.connect(to: server.configuration())
        _ = try await seeding.send(batch: (0..<1000).map { RedisCommand("SET", "key:\(String(format: "%012d", $0 * 100))", "1") })
        seeding.close()

        let requests = Int(seconds * 60_000)
        let reference1 = try redisBenchmark(server, clients: 1, pipeline: 1, requests: requests / 4)
        let reference64 = try redisBenchmark(server, clients: 64, pipeline: 1, requests: requests)
        let ours1 = try await ourThroughput(server, callers: 1, seconds: seconds)
        let ours16 = try await ourThroughput(server, callers: 16, seconds: seconds)
        let ours64 = try await ourThroughput(server, callers: 64, seconds: seconds)
        let onLoop16 = try await ourThroughput(server, callers: 16, seconds: seconds, onLoop: true)

        // The target rows, in three rounds: each round measures `redis-benchmark -c 64 -P 16`,
        // then the task callers and the callbacks right after it, so that each ratio compares
        // figures taken a few seconds apart (a shared machine's speed drifts more than that
        // over the whole run). The median round is reported. Each round also measures
        // `redis-benchmark -c 4 -P 16` (64 commands in flight, as many as 64 callers can have;
        // `-c 64 -P 16` has 1024) and `redis-benchmark -c 1 -P 64` (the same 64 on one connection,
        // as our client has), and how many commands Redis took per read from each.
        var rounds: [(reference: Double, tasks: Double, callbacks: Double, sameInFlight: Double, oneConnection: Double)] = []
        for round in 1...3 {
            let reference = try await perRead(server) { try redisBenchmark(server, clients: 64, pipeline: 16, requests: requests * 6) }
            let sameInFlight = try await perRead(server) { try redisBenchmark(server, clients: 4, pipeline: 16, requests: requests * 4) }
            let oneConnection = try await perRead(server) { try redisBenchmark(server, clients: 1, pipeline: 64, requests: requests * 3) }
            let tasks = try await perRead(server) { try await ourThroughput(server, callers: 64, seconds: seconds, onLoop: true) }
            let callbacks = try await perRead(server) { try await callbackThroughput(server, callers: 64, seconds: seconds) }
            rounds.append((reference.rate, tasks.rate, callbacks.rate, sameInFlight.rate, oneConnection.rate))
            print(
                String(
                    format: "round %d: redis-benchmark -c 64 -P 16 %.0f ops/s, -c 4 -P 16 %.0f, -c 1 -P 64 %.0f; 64 task callers on the loop %.0f (%.0f%%); 64 callbacks on the loop %.0f (%.0f%%); commands per read by Redis %.1f, %.1f, %.1f, %.1f, %.1f",
                    round, reference.rate, sameInFlight.rate, oneConnection.rate, tasks.rate, 100 * tasks.rate / reference.rate, callbacks.rate,
                    100 * callbacks.rate / reference.rate, reference.commandsPerRead, sameInFlight.commandsPerRead, oneConnection.commandsPerRead,
                    tasks.commandsPerRead, callbacks.commandsPerRead))
        }
        // The round of median ratio, for each kind of caller.
        let byTasks = rounds.sorted { $0.tasks / $0.reference < $1.tasks / $1.reference }[rounds.count / 2]
        let byCallbacks = rounds.sorted { $0.callbacks / $0.reference < $1.callbacks / $1.reference }[rounds.count / 2]
        let reference64P16 = rounds.map(\.reference).sorted()[rounds.count / 2]

        func row(_ name: String, _ value: Double, _ against: String, _ reference: Double) {
            let ratio = value / reference
            print(
                name.padding(toLength: 34, withPad: " ", startingAt: 0)
                    + String(format: "%12.0f", value) + "   "
                    + against.padding(toLength: 30, withPad: " ", startingAt: 0)
                    + String(format: "%12.0f %8.2fx", reference, ratio))
        }
        print("")
        print(
            "measurement".padding(toLength: 34, withPad: " ", startingAt: 0) + "       ops/s   "
                + "reference".padding(toLength: 30, withPad: " ", startingAt: 0) + "       ops/s    ratio")
        row("RedisClient, 1 caller", ours1, "redis-benchmark -c 1", reference1)
        row("RedisClient, 16 callers", ours16, "redis-benchmark -c 64", reference64)
        row("RedisClient, 64 callers", ours64, "redis-benchmark -c 64", reference64)
        row("RedisClient, 64 callers", ours64, "redis-benchmark -c 64 -P 16", reference64P16)
        row("16 callers on the loop", onLoop16, "redis-benchmark -c 64", reference64)
        row("64 callers on the loop (median)", byTasks.tasks, "redis-benchmark -c 64 -P 16", byTasks.reference)
        row("64 callbacks on the loop (median)", byCallbacks.callbacks, "redis-benchmark -c 64 -P 16", byCallbacks.reference)
        row("64 callbacks on the loop (median)", byCallbacks.callbacks, "redis-benchmark -c 4 -P 16", byCallbacks.sameInFlight)
        row("64 callbacks on the loop (median)", byCallbacks.callbacks, "redis-benchmark -c 1 -P 64", byCallbacks.oneConnection)
        print("")
        print(
            String(
                format: "round trip, 1 caller: ours %.1f us, redis-benchmark -c 1 %.1f us (%.2fx)",
                1e6 / ours1, 1e6 / reference1, reference1 / ours1))
        print(
            String(
                format: "64 callers reach %.0f%% of redis-benchmark -c 64 -P 16 on the connection's event loop (median of 3 rounds), %.0f%% from the global pool (target >= 70%%)",
                100 * byTasks.tasks / byTasks.reference, 100 * ours64 / reference64P16))
        print(
            String(
                format: "64 callers answered by callbacks on the loop, as single checks call it, reach %.0f%% (median of 3 rounds; target >= 70%%); %.0f%% of redis-benchmark on one connection with as many in flight (-c 1 -P 64)",
                100 * byCallbacks.callbacks / byCallbacks.reference, 100 * byCallbacks.callbacks / byCallbacks.oneConnection))
    }

    /// Runs `measure` (which returns operations per second) and counts how many commands Redis
    /// processed per read of a socket meanwhile (`INFO stats`): the fewer, the more system calls
    /// and wakeups each command costs on both sides.
    static func perRead(
        _ server: RedisServerProcess, _ measure: () async throws -> Double
    ) async throws -> (rate: Double, commandsPerRead: Double) {
        let before = try await readStatistics(server)
        let rate = try await measure()
        let after = try await readStatistics(server)
        // (The few commands and reads of the statistics' own connections are lost in millions.)
        let commands = after.commands - before.commands
        let reads = after.reads - before.reads
        return (rate, reads > 0 ? Double(commands) / Double(reads) : 0)
    }

    /// Redis' counts of commands processed and of reads from client sockets.
    static func readStatistics(_ server: RedisServerProcess) async throws -> (commands: Int, reads: Int) {
        let connection = try await RedisConnection.connect(to: server.configuration())
        defer { connection.close() }
        let info = try await connection.send(RedisCommand("INFO", "stats")).string ?? ""
        func field(_ name: String) throws -> Int {
            for line in info.split(separator: "\r\n") where line.hasPrefix(name + ":") {
                if let value = Int(line.dropFirst(name.count + 1)) { return value }
            }
            throw BenchmarkError(description: "INFO stats has no \(name)")
        }
        return (try field("total_commands_processed"), try field("total_reads_processed"))
    }

    /// Runs `redis-benchmark` and returns its requests per second.
    static func redisBenchmark(_ server: RedisServerProcess, clients: Int, pipeline: Int, requests: Int) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "redis-benchmark", "-h", "127.0.0.1", "-p", "\(server.port)", "-a", server.options.password ?? "",
            "-c", "\(clients)", "-P", "\(pipeline)", "-n", "\(requests)", "-r", "100000", "--csv",
            "EXISTS", "key:__rand_int__",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // CSV: a header line, then "EXISTS key:__rand_int__","<rps>",...
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("\"EXISTS") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count > 1, let rps = Double(fields[1]) { return rps }
        }
        throw BenchmarkError(description: "could not read redis-benchmark's output (is redis-tools installed?)")
    }

    /// Runs `body` with a `RedisClient` connected on one event loop of the group and 4096
    /// `EXISTS` of random keys, 500 of them sent first to warm up (connection, allocator, caches).
    static func withClient(
        _ server: RedisServerProcess, _ body: @Sendable (RedisClient, any EventLoop, [RedisCommand]) async throws -> Double
    ) async throws -> Double {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let client = RedisClient(configuration: server.configuration(commandTimeout: .seconds(10)), eventLoopGroup: loop)
        return try await withThrowingTaskGroup(of: Double.self) { group in
            group.addTask {
                try await client.run()
                return 0
            }
            try await client.waitUntilConnected()
            let commands = (0..<4096).map { _ in RedisCommand("EXISTS", "key:\(String(format: "%012d", Int.random(in: 0..<100_000)))") }
            for command in commands.prefix(500) { _ = try await client.send(command) }
            let rate = try await body(client, loop, commands)
            group.cancelAll()
            return rate
        }
    }

    /// Operations per second.
    static func rate(_ count: Int, over elapsed: Duration) -> Double {
        Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Runs `callers` tasks sending EXISTS through one `RedisClient` for `seconds`, on Swift's
    /// global pool or on the event loop of the client's connection.
    static func ourThroughput(_ server: RedisServerProcess, callers: Int, seconds: Double, onLoop: Bool = false) async throws -> Double {
        try await withClient(server) { client, loop, commands in
            let clock = ContinuousClock()
            let started = clock.now
            let deadline = started + .milliseconds(Int(seconds * 1000))
            let counts = try await withThrowingTaskGroup(of: Int.self) { callersGroup in
                for caller in 0..<callers {
                    callersGroup.addTask(executorPreference: onLoop ? EventLoopTaskExecutor(loop) : nil) {
                        var count = 0
                        var index = caller * 61
                        while true {
                            for _ in 0..<64 {
                                _ = try await client.send(commands[index & 4095])
                                index &+= 1
                            }
                            count += 64
                            if clock.now >= deadline { return count }
                        }
                    }
                }
                return try await callersGroup.reduce(0, +)
            }
            return rate(counts, over: clock.now - started)
        }
    }

    /// Runs `callers` chains of EXISTS through one `RedisClient` for `seconds`, each a callback on
    /// the connection's event loop that sends its next command when the last one is answered
    /// (`send(batch:timeout:on:completion:)`): no task, as `CheckChannelHandler` asks.
    static func callbackThroughput(_ server: RedisServerProcess, callers: Int, seconds: Double) async throws -> Double {
        try await withClient(server) { client, loop, commands in
            try await loop.flatSubmit {
                CallbackCallers(client: client, commands: commands, loop: loop).run(callers: callers, seconds: seconds)
            }.get()
        }
    }

    /// The callers of ``callbackThroughput(_:callers:seconds:)``, all on one event loop.
    final class CallbackCallers {
        let client: RedisClient
        let commands: [RedisCommand]
        let loop: any EventLoop
        let clock = ContinuousClock()
        var count = 0
        var running = 0
        var deadline: ContinuousClock.Instant
        var started: ContinuousClock.Instant
        let done: EventLoopPromise<Double>

        init(client: RedisClient, commands: [RedisCommand], loop: any EventLoop) {
            self.client = client
            self.commands = commands
            self.loop = loop
            self.started = clock.now
            self.deadline = started
            self.done = loop.makePromise()
        }

        func run(callers: Int, seconds: Double) -> EventLoopFuture<Double> {
            started = clock.now
            deadline = started + .milliseconds(Int(seconds * 1000))
            running = callers
            for caller in 0..<callers { send(caller * 61) }
            return done.futureResult
        }

        private func send(_ index: Int) {
            let callers = NIOLoopBound(self, eventLoop: loop)
            client.send(batch: [commands[index & 4095]], timeout: nil, on: loop) { result in
                callers.value.answered(index, result)
            }
        }

        private func answered(_ index: Int, _ result: Result<[RedisValue], RedisError>) {
            count += 1
            if case .failure(let error) = result {
                if running > 0 { done.fail(error) }
                running = 0
                return
            }
            if running == 0 { return }
            if (index & 63) != 0 || clock.now < deadline { return send(index &+ 1) }
            running -= 1
            if running == 0 { done.succeed(RedisBenchmark.rate(count, over: clock.now - started)) }
        }
    }

    struct BenchmarkError: Error, CustomStringConvertible {
        var description: String
    }
}
