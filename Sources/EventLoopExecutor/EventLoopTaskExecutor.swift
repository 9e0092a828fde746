import NIOCore

/// Runs tasks that prefer it on one event loop (a task executor preference): a task that
/// awaits I/O of a channel on that loop is resumed on the thread that did the I/O, without a
/// hop to the global concurrency pool and back. `revoked` runs each HTTP connection's requests
/// on the connection's own loop; a caller of a ``RedisConnection`` on the connection's loop also
/// lets the connection write without waiting for the loop's turn (see ``RedisConnection``).
public final class EventLoopTaskExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
