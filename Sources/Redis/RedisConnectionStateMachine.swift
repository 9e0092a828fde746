import NIOCore

/// The rules of one Redis connection, without I/O: what is in flight, what Redis still owes,
/// which deadline the timer is set for, and whether the connection is open.
///
/// A value type whose `mutating` methods take what happened (a write, a reply, the timer, the
/// close) and return what to do; ``RedisChannelHandler`` only performs those actions (writes
/// bytes, resumes callers, sets the timer, closes the channel). Nothing here resumes a caller
/// itself: callers to answer or fail are handed back, so that a caller that sends again at once
/// (a callback on the loop) finds the machine already in its next state.
struct RedisConnectionStateMachine {
    private enum State {
        case open
        case closed(RedisError)
    }

    private var state = State.open
    /// Callers whose commands were written, in the order Redis answers them.
    private var inFlight = CircularBuffer<ReplyWaiter>(initialCapacity: 64)
    /// Commands written whose replies have not arrived yet (replies read but not yet handed out
    /// do not count: Redis is done with them). The only count of it.
    private(set) var unanswered = 0
    /// The deadline the timer is set for, nil when none is.
    private(set) var timerDeadline: NIODeadline?
    /// How long a command that timed out may still go unanswered before the connection counts as
    /// dead: the connection's command timeout, or the command's own if longer.
    let grace: TimeAmount

    init(grace: TimeAmount) {
        self.grace = grace
    }

    var isOpen: Bool {
        if case .open = state { true } else { false }
    }

    /// Callers written whose replies are still awaited (answered or abandoned ones not counted).
    var inFlightCount: Int { inFlight.count }

    // MARK: - The early-write rule

    /// Whether callers on the connection's own event loop, `pending` commands gathered, write
    /// them now instead of waiting for the write scheduled behind them (which runs only after
    /// every caller queued on the loop): once as many are pending as Redis has yet to answer,
    /// so that Redis works on them while the loop runs the others (from an idle Redis, writes
    /// grow by doubling).
    ///
    /// Measured against the alternative of writing at a quarter of what Redis owed at the last
    /// read: that lifted 64 callbacks on the loop in RedisBenchmark from a median of 60% to 74%
    /// of `redis-benchmark -c 64 -P 16`, but cost `revoked`'s checks at 200 connections (`wrk
    /// -c200`, nine alternated pairs: mean 41,400 req/s with this rule, 37,400 with a quarter)
    /// and task callers on the loop (61% to 52%). docs/redis.md has the measurements.
    static func writesEarly(pending: Int, unanswered: Int) -> Bool {
        pending >= unanswered
    }

    // MARK: - Inputs

    /// What to do with a write of gathered commands.
    enum WriteAction {
        /// Write the bytes; set the timer for this deadline first when it is not nil (the
        /// earliest in flight is now earlier than the one the timer is set for, or none was set).
        case write(ByteBuffer, armTimer: NIODeadline?)
        /// The connection is closed: fail these callers with this error, write nothing.
        case fail([ReplyWaiter], RedisError)
    }

    /// Gathered commands are to be written.
    mutating func write(_ pending: PendingWrite) -> WriteAction {
        if case .closed = state {
            return .fail(pending.waiters, RedisError(.connectionClosed, "the connection to Redis is closed"))
        }
        // By index: each waiter is copied once, into the list.
        for index in pending.waiters.indices { inFlight.append(pending.waiters[index]) }
        unanswered += pending.commands
        return .write(pending.bytes, armTimer: pending.waiters.isEmpty ? nil : arm(at: pending.earliestDeadline))
    }

    /// `count` replies were read, before any of them is handed out: callers answered by them that
    /// send again at once compare what they have pending with what Redis still has to answer,
    /// not with replies already here. (A subscribed connection's messages answer no command.)
    mutating func repliesArrived(_ count: Int) {
        unanswered = max(0, unanswered - count)
    }

    /// What one reply does.
    enum ReplyAction {
        /// It completed a caller: answer it.
        case answer(ReplyWaiter.Answer)
        /// It was one of several a caller waits for, or the late reply of one that timed out.
        case none
        /// Nobody asked for it, on a connection that takes pushes (pub/sub): hand it on.
        case push(RedisValue)
        /// Nobody asked for it, and nothing else may come unasked: close with this error.
        case close(RedisError)
    }

    /// A reply, in order; `takesPushes` says whether unasked replies are expected.
    mutating func reply(_ value: RedisValue, takesPushes: Bool) -> ReplyAction {
        guard isOpen else { return .none }
        guard !inFlight.isEmpty else {
            return takesPushes ? .push(value) : .close(RedisError(.protocolError, "Redis sent a reply nobody was waiting for"))
        }
        // Taken out and put back rather than changed through the subscript: `CircularBuffer`'s
        // subscript copies the element out and back, so a batch's array of replies would be
        // shared during the append and copied whole for every reply (quadratic in the batch).
        var head = inFlight.removeFirst()
        switch head.take(value) {
        case .waiting:
            inFlight.prepend(head)
            return .none
        case .done(let answer?):
            return .answer(answer)
        case .done(nil):
            return .none
        }
    }

    /// What the timer's firing does.
    enum TimerAction {
        /// Fail these callers with `timeout` (each waits on for its late reply), and set the timer
        /// again for this deadline when it is not nil.
        case timeOut([ReplyWaiter.Caller], armTimer: NIODeadline?)
        /// A command that already timed out is still unanswered a grace period later: Redis
        /// stopped answering. Fail these callers with `timeout`, then close with this error.
        case close(timedOut: [ReplyWaiter.Caller], RedisError)
    }

    /// The timer fired at `now`: each command past its deadline fails alone (the others wait
    /// on); one already failed and still unanswered means Redis stopped answering.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        timerDeadline = nil
        guard isOpen else { return .timeOut([], armTimer: nil) }
        var timedOut: [ReplyWaiter.Caller] = []
        var next: NIODeadline?
        for index in inFlight.indices {
            if inFlight[index].deadline <= now {
                if inFlight[index].isAbandoned {
                    return .close(timedOut: timedOut, RedisError(.timeout, "Redis stopped answering; the connection is closed"))
                }
                if let caller = inFlight[index].abandon(at: now, grace: max(grace, inFlight[index].timeout)) { timedOut.append(caller) }
            }
            next = min(next ?? inFlight[index].deadline, inFlight[index].deadline)
        }
        return .timeOut(timedOut, armTimer: next.flatMap { arm(at: $0) })
    }

    /// The connection closed (or is being closed) with `error`: returns the callers written and
    /// still waiting, to fail. Later writes are refused.
    mutating func closed(_ error: RedisError) -> [ReplyWaiter] {
        if case .open = state { state = .closed(error) }
        timerDeadline = nil
        let written = Array(inFlight)
        inFlight.removeAll()
        unanswered = 0
        return written
    }

    /// The deadline to set the timer for, when `deadline` is earlier than the one it is set for.
    private mutating func arm(at deadline: NIODeadline) -> NIODeadline? {
        if let timerDeadline, timerDeadline <= deadline { return nil }
        timerDeadline = deadline
        return deadline
    }
}
