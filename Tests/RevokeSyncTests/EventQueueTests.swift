import Testing

@testable import RevokeSync

/// A stream's queue: bounded in bytes, handed over whole.
@Suite struct EventQueueTests {
    /// A batch handed straight to a waiting writer counts against the stream's bound too.
    @Test func aBatchHandedToAWaitingWriterCountsAgainstTheBound() async throws {
        let queue = EventQueue(limit: 100)
        let event = StreamItem.heartbeat
        let size = event.size
        let waiting = Task { await queue.next() }
        while !queue.hasWaiter { await Task.yield() }
        let batch = Array(repeating: event, count: 80 / size)
        #expect(queue.push(batch))
        _ = await waiting.value
        // Not yet written: those bytes are still held, so as many again overflow the bound.
        #expect(!queue.push(batch))
    }
}
