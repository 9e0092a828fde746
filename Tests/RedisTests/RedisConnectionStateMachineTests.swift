import NIOCore
import Synchronization
import Testing

@testable import Redis

/// The connection's rules on a clock the test drives: no socket, no timer, no waiting.
@Suite struct RedisConnectionStateMachineTests {
    /// What each caller was told, by name.
    final class Outcomes: Sendable {
        private let results = Mutex<[String: Result<[RedisValue], RedisError>]>([:])

        func record(_ name: String, _ result: Result<[RedisValue], RedisError>) {
            results.withLock { $0[name] = result }
        }

        func replies(_ name: String) -> [RedisValue]? {
            results.withLock { try? $0[name]?.get() }
        }

        func error(_ name: String) -> RedisError.Code? {
            results.withLock { results in
                guard case .failure(let error)? = results[name] else { return nil }
                return error.code
            }
        }

        var told: Set<String> { results.withLock { Set($0.keys) } }
    }

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    /// A caller of `expected` commands with `timeout`, written at `at`.
    static func waiter(_ name: String, _ outcomes: Outcomes, expected: Int = 1, timeout: TimeAmount, at: NIODeadline) -> ReplyWaiter {
        var waiter = ReplyWaiter(.callback { outcomes.record(name, $0) }, expected: expected, timeout: timeout)
        waiter.start(at: at)
        return waiter
    }

    static func pending(_ waiters: [ReplyWaiter]) -> PendingWrite {
        PendingWrite(
            bytes: ByteBuffer(string: "*1\r\n$4\r\nPING\r\n"), waiters: waiters, commands: waiters.map(\.expected).reduce(0, +),
            earliestDeadline: waiters.map(\.deadline).min() ?? .distantFuture)
    }

    /// Writes and returns the deadline the timer is to be set for.
    static func write(_ machine: inout RedisConnectionStateMachine, _ waiters: [ReplyWaiter]) -> NIODeadline? {
        guard case .write(_, let deadline) = machine.write(pending(waiters)) else {
            Issue.record("the write was refused")
            return nil
        }
        return deadline
    }

    /// Hands one reply to the machine and answers whoever it completes.
    static func reply(_ machine: inout RedisConnectionStateMachine, _ value: RedisValue) {
        if case .answer(let answer) = machine.reply(value, takesPushes: false) { answer.resume() }
    }

    @Test func repliesAnswerTheirCallersInOrder() {
        let outcomes = Outcomes()
        var machine = RedisConnectionStateMachine(grace: .seconds(1))
        _ = Self.write(
            &machine, [Self.waiter("one", outcomes, timeout: .seconds(1), at: Self.start), Self.waiter("batch", outcomes, expected: 2, timeout: .seconds(1), at: Self.start)])
        #expect(machine.unanswered == 3 && machine.inFlightCount == 2)
        machine.repliesArrived(3)
        #expect(machine.unanswered == 0)
        Self.reply(&machine, .simpleString("PONG"))
        #expect(outcomes.replies("one") == [.simpleString("PONG")])
        Self.reply(&machine, .integer(1))
        #expect(outcomes.replies("batch") == nil, "one reply of two answers no one")
        Self.reply(&machine, .error("ERR x"))
        #expect(outcomes.replies("batch") == [.integer(1), .error("ERR x")])
        #expect(machine.inFlightCount == 0)
    }

    /// A command written behind one with a later deadline (an XREAD's, a handshake's) fails at its
    /// own deadline, before the one ahead of it is answered; the one ahead waits on, and the late
    /// reply of the one that failed is read and dropped.
    @Test func aCommandBehindALongerDeadlineTimesOutAtItsOwn() {
        let outcomes = Outcomes()
        var machine = RedisConnectionStateMachine(grace: .seconds(1))
        let slow = Self.waiter("slow", outcomes, timeout: .seconds(30), at: Self.start)
        #expect(Self.write(&machine, [slow]) == Self.start + .seconds(30))
        let short = Self.waiter("short", outcomes, timeout: .milliseconds(20), at: Self.start + .milliseconds(10))
        #expect(Self.write(&machine, [short]) == Self.start + .milliseconds(30), "the timer is set sooner")
        let later = Self.waiter("later", outcomes, timeout: .seconds(5), at: Self.start + .milliseconds(15))
        #expect(Self.write(&machine, [later]) == nil, "a later deadline leaves the timer as it is")

        guard case .timeOut(let callers, let next) = machine.timerFired(now: Self.start + .milliseconds(30)) else {
            Issue.record("the timer closed the connection")
            return
        }
        for caller in callers { caller.fail(RedisError(.timeout, "test")) }
        #expect(outcomes.told == ["short"] && outcomes.error("short") == .timeout)
        // The short one now waits a grace period (1 s) for its late reply; the timer is set for it.
        #expect(next == Self.start + .milliseconds(30) + .seconds(1))

        Self.reply(&machine, .simpleString("slow done"))
        #expect(outcomes.replies("slow") == [.simpleString("slow done")])
        Self.reply(&machine, .simpleString("PONG"))  // the short one's, late: dropped
        #expect(outcomes.error("short") == .timeout)
        Self.reply(&machine, .simpleString("later done"))
        #expect(outcomes.replies("later") == [.simpleString("later done")])
        #expect(machine.isOpen && machine.inFlightCount == 0)
    }

    /// A command that timed out and is still unanswered a grace period later means Redis stopped
    /// answering: the connection closes, and everything in flight fails.
    @Test func aTimedOutCommandStillUnansweredAGraceLaterClosesTheConnection() {
        let outcomes = Outcomes()
        var machine = RedisConnectionStateMachine(grace: .seconds(1))
        _ = Self.write(&machine, [Self.waiter("frozen", outcomes, timeout: .milliseconds(100), at: Self.start)])
        _ = Self.write(&machine, [Self.waiter("behind", outcomes, timeout: .seconds(30), at: Self.start)])
        guard case .timeOut(let callers, let next) = machine.timerFired(now: Self.start + .milliseconds(100)) else {
            Issue.record("closed at the first timeout")
            return
        }
        #expect(callers.count == 1 && next == Self.start + .milliseconds(1100))
        // Not yet: the timer fired early (a loop runs timers when it can, never before).
        guard case .timeOut(let none, _) = machine.timerFired(now: Self.start + .milliseconds(1099)), none.isEmpty else {
            Issue.record("closed before the grace period ended")
            return
        }
        guard case .close(let timedOut, let error) = machine.timerFired(now: Self.start + .milliseconds(1100)) else {
            Issue.record("Redis stopped answering, and the connection stayed open")
            return
        }
        #expect(timedOut.isEmpty && error.code == .timeout)
        let written = machine.closed(error)
        for var waiter in written { waiter.fail(error) }
        #expect(outcomes.error("behind") == .timeout && !machine.isOpen && machine.unanswered == 0)
    }

    @Test func aClosedConnectionRefusesWritesAndIgnoresWhatArrives() {
        let outcomes = Outcomes()
        var machine = RedisConnectionStateMachine(grace: .seconds(1))
        _ = Self.write(&machine, [Self.waiter("a", outcomes, timeout: .seconds(1), at: Self.start)])
        let error = RedisError(.connectionClosed, "test")
        #expect(machine.closed(error).count == 1)
        #expect(machine.timerDeadline == nil && machine.unanswered == 0)
        guard case .fail(let refused, let refusal) = machine.write(Self.pending([Self.waiter("b", outcomes, timeout: .seconds(1), at: Self.start)])) else {
            Issue.record("a closed connection took a write")
            return
        }
        #expect(refused.count == 1 && refusal.code == .connectionClosed)
        guard case .none = machine.reply(.simpleString("x"), takesPushes: false) else {
            Issue.record("a closed connection delivered a reply")
            return
        }
        guard case .timeOut(let callers, nil) = machine.timerFired(now: Self.start + .seconds(10)), callers.isEmpty else {
            Issue.record("a closed connection's timer did something")
            return
        }
    }

    @Test func repliesNobodyAskedFor() {
        var machine = RedisConnectionStateMachine(grace: .seconds(1))
        guard case .push(.simpleString("message")) = machine.reply(.simpleString("message"), takesPushes: true) else {
            Issue.record("a subscribed connection's message was not handed on")
            return
        }
        guard case .close(let error) = machine.reply(.simpleString("stray"), takesPushes: false) else {
            Issue.record("a stray reply was accepted")
            return
        }
        #expect(error.code == .protocolError)
        // Messages answer no command: what Redis owes never goes below nothing.
        machine.repliesArrived(5)
        #expect(machine.unanswered == 0)
    }

    @Test func callersOnTheLoopWriteOnceAsManyArePendingAsRedisOwes() {
        #expect(RedisConnectionStateMachine.writesEarly(pending: 1, unanswered: 0))
        #expect(RedisConnectionStateMachine.writesEarly(pending: 64, unanswered: 64))
        #expect(!RedisConnectionStateMachine.writesEarly(pending: 63, unanswered: 64))
    }
}
