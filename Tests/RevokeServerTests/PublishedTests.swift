import Foundation
@testable import RevokeClient
import Synchronization
import Testing

/// `Published`, the cache's view box read without references: no reader ever holds an object
/// that was released, and every replaced object is released once no reader holds it.
@Suite struct PublishedTests {
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
        // With no reader left, one reclaim releases everything replaced, and nothing current.
        box.reclaim()
        #expect(box.retiredCount == 0)
        let released = registry.released.withLock { $0 }
        #expect(released.count == replacements)
        #expect(!released.contains(replacements))
        #expect(box.read { $0.id } == replacements)
    }
}
