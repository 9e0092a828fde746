import Atomics
import Synchronization

/// One object that many threads read and one writer replaces now and then, read without taking a
/// reference to it (read-copy-update).
///
/// A reader counts itself in, loads the pointer, uses the object and counts itself out: two
/// uncontended atomic additions, and no retain or release of the object (each of those is an
/// atomic read-modify-write on a count every reader shares). A replaced object is not released
/// at once: it waits in a list until every reader that may still hold it has counted itself out.
///
/// Readers count themselves in one of 2 × 16 counters, each on its own cache line: by the parity
/// of an epoch the reclaimer flips, so that a counter it waits on stops gaining readers, and by a
/// stripe picked from the reader's stack address, so that threads reading at once do not share a
/// line. The object is only read through ``read(_:)`` and never escapes it.
final class Published<Object: AnyObject & Sendable>: @unchecked Sendable {
    private static var stripes: Int { 16 }
    /// Ints between two counters: one 64-byte cache line.
    private static var spacing: Int { 8 }

    /// The object readers get, retained once by this box; nil before the first ``publish(_:)``.
    private let current = UnsafeAtomic<UnsafeMutableRawPointer?>.create(nil)
    private let epoch = UnsafeAtomic<Int>.create(0)
    private let counters: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    /// Replaced objects, each still retained once, waiting for their readers to leave.
    private let retired = Mutex<[Unmanaged<Object>]>([])

    init() {
        let count = 2 * Self.stripes * Self.spacing
        counters = .allocate(capacity: count)
        counters.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: count)
    }

    deinit {
        // No reader can be inside: each holds a reference to whatever owns this box.
        if let pointer = current.load(ordering: .acquiring) { Unmanaged<Object>.fromOpaque(pointer).release() }
        retired.withLock { for object in $0 { object.release() } }
        current.destroy()
        epoch.destroy()
        counters.deinitialize(count: 2 * Self.stripes * Self.spacing)
        counters.deallocate()
    }

    private func counter(parity: Int, stripe: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: counters + (parity * Self.stripes + stripe) * Self.spacing)
    }

    /// Runs `body` with the current object, or returns nil when none was published. The object is
    /// guaranteed alive until `body` returns; `body` must not keep it.
    @inline(__always)
    func read<Result>(_ body: (Object) -> Result) -> Result? {
        var anchor: UInt8 = 0
        let address = withUnsafeMutablePointer(to: &anchor) { UInt(bitPattern: $0) }
        // Threads' stacks lie megabytes apart: the bits above a page pick the stripe.
        let stripe = Int(truncatingIfNeeded: ((address >> 12) &* 0x9E37_79B9_7F4A_7C15) >> 60)
        let counter = counter(parity: epoch.load(ordering: .relaxed) & 1, stripe: stripe)
        // A locked addition is a full barrier: the load below cannot pass it.
        counter.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { counter.wrappingDecrement(ordering: .releasing) }
        guard let pointer = current.load(ordering: .sequentiallyConsistent) else { return nil }
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
                retired.append(Unmanaged<Object>.fromOpaque(old))
            }
            reclaim(&retired)
        }
    }

    /// Releases the replaced objects when no reader can still hold one; never waits. Runs on every
    /// publish, and should run now and then besides, so that the last ones replaced are released.
    func reclaim() {
        retired.withLock { reclaim(&$0) }
    }

    /// Objects waiting to be released (for tests).
    var retiredCount: Int { retired.withLock { $0.count } }

    private func reclaim(_ retired: inout [Unmanaged<Object>]) {
        guard !retired.isEmpty else { return }
        // Every object in `retired` was replaced before this point. A reader that may hold one
        // counted itself in before that replacement, in one of the two parities, and stays
        // counted until it is done: once each parity has been seen at zero from here on, every
        // such reader has left. Each flip sends new readers to the other parity, so the one
        // looked at next stops gaining readers.
        for _ in 0..<2 {
            let parity = epoch.loadThenWrappingIncrement(ordering: .sequentiallyConsistent) & 1
            for stripe in 0..<Self.stripes where counter(parity: parity, stripe: stripe).load(ordering: .sequentiallyConsistent) != 0 {
                return
            }
        }
        for object in retired { object.release() }
        retired.removeAll(keepingCapacity: true)
    }
}
