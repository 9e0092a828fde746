import Atomics
import CReadSection
import Synchronization

/// One object that many threads read and one writer replaces now and then, read without taking a
/// reference to it (read-copy-update).
///
/// A reader enters a read section, loads the pointer, uses the object and leaves: two plain
/// stores to a slot of its own thread, no atomic read-modify-write, no fence, no retain or release
/// of the object (each of those is an atomic read-modify-write on a line every reader shares). A
/// replaced object is not released at once: it waits in a list, tagged with the period of its
/// replacement, until no reader is inside with an older period. The writer's side pays for the
/// ordering readers skip, with one `membarrier(2)` per reclaim (`CReadSection`). The object is
/// only read through ``read(_:)`` and never escapes it.
final class Published<Object: AnyObject & Sendable>: @unchecked Sendable {
    /// How many replaced objects a publish lets wait before it reclaims: each reclaim interrupts
    /// every CPU running a thread of the process, so a flood of events must not pay one each.
    private static var reclaimEvery: Int { 32 }

    /// The object readers get, retained once by this box; nil before the first ``publish(_:)``.
    private let current = UnsafeAtomic<UnsafeMutableRawPointer?>.create(nil)
    /// Replaced objects, each still retained once, with the period of their replacement.
    private let retired = Mutex<[(object: Unmanaged<Object>, period: Int)]>([])

    init() {}

    deinit {
        // No reader can be inside: each holds a reference to whatever owns this box.
        if let pointer = current.load(ordering: .acquiring) { Unmanaged<Object>.fromOpaque(pointer).release() }
        retired.withLock { for entry in $0 { entry.object.release() } }
        current.destroy()
    }

    /// Runs `body` with the current object, or returns nil when none was published. The object is
    /// guaranteed alive until `body` returns; `body` must not keep it.
    @inline(__always)
    func read<Result>(_ body: (Object) -> Result) -> Result? {
        let entered = revoke_read_enter()
        defer { revoke_read_leave(entered) }
        guard let pointer = current.load(ordering: .acquiring) else { return nil }
        return Unmanaged<Object>.fromOpaque(pointer)._withUnsafeGuaranteedRef(body)
    }

    /// The current object, as a reference of the caller's own (for the writer, off the hot path).
    /// Only one writer may publish, so the object cannot be released while it is taken here.
    func load() -> Object? {
        retired.withLock { _ in
            current.load(ordering: .acquiring).map { Unmanaged<Object>.fromOpaque($0).takeUnretainedValue() }
        }
    }

    /// Makes `object` the one readers get; the one it replaces is released once its readers left.
    func publish(_ object: Object) {
        retired.withLock { retired in
            let new = Unmanaged.passRetained(object).toOpaque()
            if let old = current.exchange(new, ordering: .sequentiallyConsistent) {
                retired.append((Unmanaged<Object>.fromOpaque(old), revoke_read_retire()))
            }
            if retired.count >= Self.reclaimEvery { reclaim(&retired) }
        }
    }

    /// Releases the replaced objects no reader can still hold; never waits. Run it now and then
    /// (the cache does, every 100 ms), so that the last ones replaced are released.
    func reclaim() {
        retired.withLock { reclaim(&$0) }
    }

    /// Objects waiting to be released (for tests).
    var retiredCount: Int { retired.withLock { $0.count } }

    private func reclaim(_ retired: inout [(object: Unmanaged<Object>, period: Int)]) {
        guard !retired.isEmpty else { return }
        // Tagged in order: every object up to the oldest reader's period is free.
        let oldest = revoke_read_oldest_active()
        let free = retired.prefix { $0.period <= oldest }
        for entry in free { entry.object.release() }
        retired.removeFirst(free.count)
    }
}
