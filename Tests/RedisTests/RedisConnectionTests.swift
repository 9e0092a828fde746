import EventLoopExecutor
import Foundation
import NIOCore
import NIOPosix
import Redis
import RedisSupervisor
import RedisTestSupport
import Testing

@Suite struct RedisConnectionTests {
    @Test func decodesEveryReplyType() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                #expect(try await redis.send(RedisCommand("SET", "k", "v")) == .simpleString("OK"))
                #expect(try await redis.send(RedisCommand("GET", "k")) == .bulkString(Array("v".utf8)))
                #expect(try await redis.send(RedisCommand("GET", "missing")) == .null)
                #expect(try await redis.send(RedisCommand("INCRBY", "n", "-5")) == .integer(-5))
                #expect(try await redis.send(RedisCommand("SET", "empty", "")) == .simpleString("OK"))
                #expect(try await redis.send(RedisCommand("GET", "empty")) == .bulkString([]))
                #expect(
                    try await redis.send(RedisCommand("MGET", "k", "missing"))
                        == .array([.bulkString(Array("v".utf8)), .null]))
                #expect(try await redis.send(RedisCommand("LRANGE", "nolist", "0", "-1")) == .array([]))
                // A nested array: EXEC answers with the replies of the transaction.
                let replies = try await redis.send(batch: [
                    RedisCommand("MULTI"), RedisCommand("INCR", "n"), RedisCommand("MGET", "k", "n"), RedisCommand("EXEC"),
                ])
                #expect(
                    replies.last
                        == .array([.integer(-4), .array([.bulkString(Array("v".utf8)), .bulkString(Array("-4".utf8))])]))
                await #expect {
                    try await redis.send(RedisCommand("INCR", "k"))
                } throws: { error in
                    let error = try #require(error as? RedisError)
                    return error.code == .commandFailed && error.message.hasPrefix("ERR")
                }
                // The connection is still good after an error reply.
                #expect(try await redis.send(RedisCommand("PING")) == .simpleString("PONG"))
            }
        }
    }

    @Test func keepsErrorRepliesInTheirPlaceInABatch() async throws {
        try await withRedisServer { server in
            let redis = try await RedisConnection.connect(to: server.configuration())
            defer { redis.close() }
            let replies = try await redis.send(batch: [
                RedisCommand("SET", "s", "x"), RedisCommand("INCR", "s"), RedisCommand("GET", "s"), RedisCommand("NOSUCHCOMMAND"),
            ])
            #expect(replies.count == 4)
            #expect(replies[0] == .simpleString("OK"))
            guard case .error(let message) = replies[1] else {
                Issue.record("expected an error reply, got \(replies[1])")
                return
            }
            #expect(message.contains("not an integer"))
            #expect(replies[2] == .bulkString(Array("x".utf8)))
            guard case .error = replies[3] else {
                Issue.record("expected an error reply, got \(replies[3])")
                return
            }
        }
    }

    @Test func storesHostileArgumentsByteForByte() async throws {
        let hostile: [[UInt8]] = [
            Array("a\r\nDEL victim\r\n".utf8),
            Array("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\ny\r\n".utf8),
            [0, 0, 0x0D, 0x0A, 0],
            Array("* ? [a-z] \\ \" ' %s %n".utf8),
            Array("ключ 🔑".utf8),
            (0...255).map(UInt8.init),
            [UInt8](repeating: 0x0A, count: 1 << 20),
            (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) },
        ]
        try await withRedisServer { server in
            try await withRedisClient(server.configuration(commandTimeout: .seconds(5))) { redis in
                _ = try await redis.send(RedisCommand("SET", "victim", "alive"))
                for (index, value) in hostile.enumerated() {
                    let key = Array("bin:".utf8) + value.prefix(64)
                    _ = try await redis.send(RedisCommand(arguments: [Array("SET".utf8), key, value]))
                    #expect(
                        try await redis.send(RedisCommand(arguments: [Array("GET".utf8), key])) == .bulkString(value),
                        "value \(index)")
                    #expect(try await redis.send(RedisCommand(arguments: [Array("EXISTS".utf8), key])) == .integer(1))
                }
                #expect(try await redis.send(RedisCommand("GET", "victim")) == .bulkString(Array("alive".utf8)))
                #expect(try await redis.send(RedisCommand("GET", "x")) == .null)
            }
        }
    }

    @Test func answersAThousandConcurrentCallersInOrder() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration(commandTimeout: .seconds(10))) { redis in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for caller in 0..<1000 {
                        group.addTask {
                            for round in 0..<5 {
                                let text = "caller-\(caller)-round-\(round)"
                                let reply = try await redis.send(RedisCommand("ECHO", text))
                                #expect(reply == .bulkString(Array(text.utf8)))
                                if round == 2 {
                                    let batch = try await redis.send(batch: (0..<3).map { RedisCommand("ECHO", "\(text)-\($0)") })
                                    #expect(batch == (0..<3).map { .bulkString(Array("\(text)-\($0)".utf8)) })
                                }
                            }
                            _ = try await redis.send(RedisCommand("INCR", "calls"))
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await redis.send(RedisCommand("GET", "calls")) == .bulkString(Array("1000".utf8)))
            }
        }
    }

    /// Callers on the connection's own event loop have their commands written early (before the
    /// others queued there have run); mixed with callers on the global pool, every reply still
    /// reaches its own caller.
    @Test func callersOnTheConnectionsLoopAndOffItGetTheirOwnReplies() async throws {
        try await withRedisServer { server in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let connection = try await RedisConnection.connect(to: server.configuration(commandTimeout: .seconds(10)), eventLoop: loop)
            defer { connection.close() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<300 {
                    group.addTask(executorPreference: caller.isMultiple(of: 3) ? nil : EventLoopTaskExecutor(loop)) {
                        for round in 0..<20 {
                            let text = "caller-\(caller)-round-\(round)"
                            #expect(try await connection.send(RedisCommand("ECHO", text)) == .bulkString(Array(text.utf8)))
                            if round.isMultiple(of: 7) {
                                let batch = try await connection.send(batch: (0..<3).map { RedisCommand("ECHO", "\(text)-\($0)") })
                                #expect(batch == (0..<3).map { .bulkString(Array("\(text)-\($0)".utf8)) })
                            }
                        }
                        _ = try await connection.send(RedisCommand("INCR", "calls"))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await connection.send(RedisCommand("GET", "calls")) == .bulkString(Array("300".utf8)))
        }
    }

    /// Callbacks on the connection's loop that send again as soon as they are answered, as
    /// `revoked` answers single checks: the replies of one read come back to callers that write
    /// their next commands early, while Redis still owes the others; every reply still reaches
    /// its own caller, and no command is lost or answered twice.
    @Test func callbacksThatSendAgainOnTheLoopGetTheirOwnReplies() async throws {
        try await withRedisServer { server in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let connection = try await RedisConnection.connect(to: server.configuration(commandTimeout: .seconds(10)), eventLoop: loop)
            defer { connection.close() }
            let callers = 64
            let rounds = 50
            let wrong = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                loop.execute {
                    ChainedCallers(connection: connection, loop: loop, rounds: rounds) { continuation.resume(with: $0) }.start(callers)
                }
            }
            #expect(wrong == 0)
            #expect(try await connection.send(RedisCommand("GET", "calls")) == .bulkString(Array("\(callers * rounds)".utf8)))
        }
    }

    /// The callers of ``callbacksThatSendAgainOnTheLoopGetTheirOwnReplies()``, all on one loop:
    /// each sends `ECHO <caller>-<round>` and `INCR calls` in a batch, checks its replies, and
    /// sends its next round from the callback.
    final class ChainedCallers {
        let connection: RedisConnection
        let loop: any EventLoop
        let rounds: Int
        let finished: (Result<Int, any Error>) -> Void
        var running = 0
        var wrong = 0

        init(connection: RedisConnection, loop: any EventLoop, rounds: Int, finished: @escaping (Result<Int, any Error>) -> Void) {
            self.connection = connection
            self.loop = loop
            self.rounds = rounds
            self.finished = finished
        }

        func start(_ callers: Int) {
            running = callers
            for caller in 0..<callers { send(caller, round: 0) }
        }

        private func send(_ caller: Int, round: Int) {
            let callers = NIOLoopBound(self, eventLoop: loop)
            let text = "\(caller)-\(round)"
            connection.send(batch: [RedisCommand("ECHO", text), RedisCommand("INCR", "calls")], timeout: nil, on: loop) { result in
                callers.value.answered(caller, round: round, text: text, result)
            }
        }

        private func answered(_ caller: Int, round: Int, text: String, _ result: Result<[RedisValue], RedisError>) {
            guard running > 0 else { return }
            switch result {
            case .failure(let error):
                running = 0
                finished(.failure(error))
                return
            case .success(let replies):
                guard replies.count == 2, replies[0] == .bulkString(Array(text.utf8)), case .integer = replies[1] else {
                    wrong += 1
                    break
                }
            }
            if round + 1 < rounds { return send(caller, round: round + 1) }
            running -= 1
            if running == 0 { finished(.success(wrong)) }
        }
    }

    /// A callback for the replies, as a channel handler passes it: called on its own event loop,
    /// whichever loop the connection is on, with error replies in their place; failed on its
    /// loop while no connection is up, or once the connection has closed.
    @Test func aCallbackGetsItsRepliesOnItsOwnEventLoop() async throws {
        try await withRedisServer { server in
            try await withRedisClient(server.configuration()) { redis in
                for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
                    let (result, onItsLoop) = await Self.replies(
                        to: [RedisCommand("SET", "p", "x"), RedisCommand("INCR", "p"), RedisCommand("GET", "p")], from: redis, on: loop)
                    #expect(onItsLoop)
                    let replies = try result.get()
                    #expect(replies.count == 3)
                    #expect(replies.first == .simpleString("OK"))
                    guard case .error(let message) = replies[1] else {
                        Issue.record("expected an error reply, got \(replies[1])")
                        return
                    }
                    #expect(message.contains("not an integer"))
                    #expect(replies.last == .bulkString(Array("x".utf8)))
                    let (none, noneOnItsLoop) = await Self.replies(to: [], from: redis, on: loop)
                    #expect(try none.get() == [])
                    #expect(noneOnItsLoop)
                }
            }
            let connection = try await RedisConnection.connect(to: server.configuration())
            connection.close()
            await connection.waitUntilClosed()
            for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
                let (closed, onItsLoop) = await Self.replies(to: [RedisCommand("PING")], from: connection, on: loop)
                #expect(onItsLoop)
                #expect(throws: RedisError.self) { try closed.get() }
            }
        }
        let nothing = RedisClient(configuration: RedisConfiguration(port: try RedisServerProcess.freeLoopbackPort()))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (result, onItsLoop) = await Self.replies(to: [RedisCommand("PING")], from: nothing, on: loop)
        #expect(onItsLoop)
        #expect {
            _ = try result.get()
        } throws: { error in
            (error as? RedisError)?.code == .unavailable
        }
        // Nothing to send needs no connection, in either form.
        let (none, noneOnItsLoop) = await Self.replies(to: [], from: nothing, on: loop)
        #expect(try none.get() == [])
        #expect(noneOnItsLoop)
        #expect(try await nothing.send(batch: []) == [])
    }

    /// The result `send(batch:timeout:on:completion:)` calls back with, and whether it was called
    /// on `loop`.
    static func replies(
        to commands: [RedisCommand], from redis: any RedisCommandSender, on loop: any EventLoop
    ) async -> (Result<[RedisValue], RedisError>, Bool) {
        await withCheckedContinuation { continuation in
            redis.send(batch: commands, timeout: nil, on: loop) { result in continuation.resume(returning: (result, loop.inEventLoop)) }
        }
    }

    @Test func authenticatesAndSelectsTheDatabase() async throws {
        try await withRedisServer(password: "correct horse") { server in
            var configuration = server.configuration()
            configuration.database = 3
            let inThree = try await RedisConnection.connect(to: configuration)
            defer { inThree.close() }
            _ = try await inThree.send(RedisCommand("SET", "where", "three"))
            #expect(try await inThree.send(RedisCommand("DBSIZE")) == .integer(1))

            let inZero = try await RedisConnection.connect(to: server.configuration())
            defer { inZero.close() }
            #expect(try await inZero.send(RedisCommand("GET", "where")) == .null)

            // The URL form reaches the same place.
            let viaURL = try RedisConfiguration(url: "redis://:correct%20horse@127.0.0.1:\(server.port)/3")
            let third = try await RedisConnection.connect(to: viaURL)
            defer { third.close() }
            #expect(try await third.send(RedisCommand("GET", "where")) == .bulkString(Array("three".utf8)))

            var wrong = server.configuration()
            wrong.password = "wrong"
            await #expect {
                _ = try await RedisConnection.connect(to: wrong)
            } throws: { error in
                let error = try #require(error as? RedisError)
                return error.code == .connectionFailed && !error.description.contains("wrong\"")
                    && error.message.contains("AUTH")
            }
            var noPassword = server.configuration()
            noPassword.password = nil
            let unauthenticated = try? await RedisConnection.connect(to: noPassword)
            #expect(unauthenticated == nil)
        }
    }

    @Test func ownsAServerWhosePasswordLooksLikeConfiguration() async throws {
        try await withRedisServer(password: "p\"w \\x41\nrequirepass other é") { server in
            let connection = try await RedisConnection.connect(to: server.configuration())
            defer { connection.close() }
            #expect(try await connection.send(RedisCommand("PING")) == .simpleString("PONG"))
            var other = server.configuration()
            other.password = "other"
            #expect((try? await RedisConnection.connect(to: other)) == nil)
        }
    }

    @Test func failsFastWhenNothingListens() async throws {
        let port = try RedisServerProcess.freeLoopbackPort()
        await #expect {
            _ = try await RedisConnection.connect(to: RedisConfiguration(port: port))
        } throws: { error in
            (error as? RedisError)?.code == .connectionFailed
        }
        let client = RedisClient(configuration: RedisConfiguration(port: port))
        await #expect {
            _ = try await client.send(RedisCommand("PING"))
        } throws: { error in
            (error as? RedisError)?.code == .unavailable
        }
    }
}
