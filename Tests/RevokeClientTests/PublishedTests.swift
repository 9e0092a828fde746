import Foundation
@testable import RevokeClient
import Synchronization
import Testing

/// `Published`, the cache's view box read without references: no reader ever holds an object
/// that was released, and every replaced object is released once no reader holds it.
@Suite(.serialized) struct PublishedTests {
    final class Registry: Sendable {
        let released = Mutex<Set<Int>>([])
        let violations = Atomic(0)
        let reads = Atomic(0)
    }

    final class Object: Sendable {
        let id: Int
        let registry: Registry
        init(id: Int, registry: Registry) {
            self.id = id
            self.registry = registry
        }
        deinit { registry.released.withLock { _ = $0.insert(id) } }
    }

    @Test func readersNeverHoldAReleasedObjectAndReplacedOnesAreReleased() async throws {
        let registry = Registry()
        let box = Published<Object>()
        #expect(box.read { $0.id } == nil)
        box.publish(Object(id: 0, registry: registry))
        let stop = Atomic(false)
        let readers = 4
        let finished = Atomic(0)
        for _ in 0..<readers {
            Thread {
                while !stop.load(ordering: .relaxed) {
                    _ = box.read { object in
                        // Hold the object a little, so that replacements land while readers are inside.
                        for _ in 0..<Int.random(in: 0..<64) { _ = registry.reads.load(ordering: .relaxed) }
                        if registry.released.withLock({ $0.contains(object.id) }) { registry.violations.add(1, ordering: .relaxed) }
                        registry.reads.add(1, ordering: .relaxed)
                    }
                }
                finished.add(1, ordering: .releasing)
            }.start()
        }
        let replacements = 20_000
        for id in 1...replacements {
            box.publish(Object(id: id, registry: registry))
            if id % 100 == 0 { await Task.yield() }
        }
        stop.store(true, ordering: .relaxed)
        while finished.load(ordering: .acquiring) < readers { try await Task.sleep(for: .milliseconds(1)) }

        #expect(registry.violations.load(ordering: .relaxed) == 0)
        #expect(registry.reads.load(ordering: .relaxed) > 0)
        // With no reader left, reclaims release everything replaced, and nothing current.
        try await reclaimAll(box)
        #expect(box.retiredCount == 0)
        let released = registry.released.withLock { $0 }
        #expect(released.count == replacements)
        #expect(!released.contains(replacements))
        #expect(box.read { $0.id } == replacements)
    }

    /// A reader inside keeps the object it may hold, and only that one; a nested read does not
    /// end the outer one early.
    @Test func aReaderInsideKeepsItsObjectUntilItLeaves() async throws {
        let registry = Registry()
        let box = Published<Object>()
        box.publish(Object(id: 0, registry: registry))
        let inside = Atomic(false)
        let leave = Atomic(false)
        let left = Atomic(false)
        let seen = Atomic(-1)
        Thread {
            _ = box.read { outer in
                // An inner read ends inside the outer one: the outer object must stay held.
                _ = box.read { _ in () }
                inside.store(true, ordering: .releasing)
                while !leave.load(ordering: .acquiring) { usleep(100) }
                seen.store(outer.id, ordering: .relaxed)
            }
            left.store(true, ordering: .releasing)
        }.start()
        while !inside.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(1)) }

        box.publish(Object(id: 1, registry: registry))
        box.reclaim()
        #expect(box.retiredCount == 1, "object 0 is released while a reader may hold it")
        #expect(registry.released.withLock { $0.isEmpty })
        // Object 1 was current while the reader was inside (a nested read would have got it),
        // so it waits too.
        box.publish(Object(id: 2, registry: registry))
        box.reclaim()
        #expect(box.retiredCount == 2)

        leave.store(true, ordering: .releasing)
        while !left.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(1)) }
        #expect(seen.load(ordering: .relaxed) == 0)
        try await reclaimAll(box)
        #expect(box.retiredCount == 0)
        #expect(registry.released.withLock { $0 } == [0, 1])
        #expect(box.read { $0.id } == 2)
    }

    /// Reclaims until nothing is retired (or 30 s passed). Read sections are process-wide: a
    /// reader of another box (another suite's client, running at the same time) that was paused
    /// inside one holds back a reclaim too, until it leaves.
    private func reclaimAll(_ box: Published<Object>) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while box.retiredCount > 0 && ContinuousClock.now < deadline {
            box.reclaim()
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
