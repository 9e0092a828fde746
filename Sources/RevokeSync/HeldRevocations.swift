/// The revoked `jti`s a snapshot holds: each hash once, with the second from which Redis no
/// longer keeps it, in an open-addressing table (12 bytes a slot, at most 85% full: about 15
/// bytes a revocation), and how many of them are live, by the minute they expire in.
///
/// Holding a hash once is what makes the count exact whatever the order of what it is told: a
/// load's scan that meets a key twice, a revocation both scanned and read from the log, one
/// revoked again (with another expiry, or after its unrevocation).
///
/// A hash is never taken out before its expiry, not even when unrevoked: two `jti`s may share
/// one, and the other must stay in the filter. For the same reason a hash revoked again keeps
/// the later of its two expiries; the count of a `jti` revoked again with an earlier expiry
/// stays until the later one.
struct HeldRevocations: Sendable {
    /// The live revocations (held, not unrevoked) that expire in one minute, by its second.
    struct Minute: Sendable {
        var total = 0
        var seconds = [Int32](repeating: 0, count: 60)
    }

    /// Slot `i` holds `hashes[i]` until `expiries[i]`: 0 marks an empty slot, `UInt32.max` a
    /// revocation Redis keeps forever.
    private var hashes: [UInt64]
    private var expiries: [UInt32]
    /// The hashes held.
    private(set) var count = 0
    /// Hashes held whose `jti` was unrevoked: not counted as live.
    private(set) var unrevoked: Set<UInt64> = []
    /// Live revocations with an expiry, by minute (Unix seconds / 60).
    private var expiring: [Int64: Minute] = [:]
    /// Live revocations: held and not unrevoked, expired or not.
    private(set) var counted = 0

    private static let forever = UInt32.max

    /// Room for `count` hashes (80% of the slots) before it grows.
    init(room count: Int = 0) {
        let slots = max(1024, count + count / 4 + 1)
        hashes = [UInt64](repeating: 0, count: slots)
        expiries = [UInt32](repeating: 0, count: slots)
    }

    /// Whether the table is fuller than 85%, where it grows by half.
    private var isFull: Bool { count * 20 > hashes.count * 17 }

    /// Unix seconds (nil: forever) as a slot stores them: never 0 (the empty slot), and from
    /// 2106 on (where 32 bits end), forever.
    private static func encode(_ expiresAt: Int64?) -> UInt32 {
        guard let expiresAt else { return forever }
        return UInt32(clamping: max(expiresAt, 1))
    }

    /// The minute a Unix second falls in, and the second within it.
    static func minute(of seconds: Int64) -> (minute: Int64, second: Int) {
        let (quotient, remainder) = seconds.quotientAndRemainder(dividingBy: 60)
        return remainder < 0 ? (quotient - 1, Int(remainder + 60)) : (quotient, Int(remainder))
    }

    /// The slot holding `hash`, or the empty one where it would go.
    /// XXH64 spreads hashes evenly, so the high half of `hash × slots` is an even start.
    private func slot(of hash: UInt64) -> (index: Int, found: Bool) {
        let slots = hashes.count
        var index = Int(hash.multipliedFullWidth(by: UInt64(slots)).high)
        while expiries[index] != 0 {
            if hashes[index] == hash { return (index, true) }
            index += 1
            if index == slots { index = 0 }
        }
        return (index, false)
    }

    /// Adds one to (or, by `-1`, takes one from) the live count of those expiring at `expiry`.
    private mutating func tally(_ expiry: UInt32, by change: Int) {
        counted += change
        guard expiry != Self.forever else { return }
        let (minute, second) = Self.minute(of: Int64(expiry))
        expiring[minute, default: Minute()].total += change
        expiring[minute, default: Minute()].seconds[second] += Int32(change)
        if expiring[minute]?.total == 0 { expiring[minute] = nil }
    }

    /// Holds a revoked hash until `expiresAt` (Unix seconds; nil: forever), or, held already,
    /// until the later of the two; an unrevoked one counts again.
    /// - Returns: whether the hash was not held before.
    @discardableResult
    mutating func revoke(_ hash: UInt64, until expiresAt: Int64?) -> Bool {
        let expiry = Self.encode(expiresAt)
        let (index, found) = slot(of: hash)
        if found {
            let held = expiries[index]
            if unrevoked.remove(hash) == nil {
                guard expiry > held else { return false }
                tally(held, by: -1)
            }
            expiries[index] = max(held, expiry)
            tally(expiries[index], by: 1)
            return false
        }
        hashes[index] = hash
        expiries[index] = expiry
        count += 1
        tally(expiry, by: 1)
        if isFull { grow() }
        return true
    }

    /// A held hash's `jti` was unrevoked: no longer counted, still held. One not held (a load's
    /// scan found its key gone already) changes nothing.
    mutating func unrevoke(_ hash: UInt64) {
        let (index, found) = slot(of: hash)
        guard found, unrevoked.insert(hash).inserted else { return }
        tally(expiries[index], by: -1)
    }

    private mutating func grow() {
        var larger = HeldRevocations(room: hashes.count + hashes.count / 5)
        for index in hashes.indices where expiries[index] != 0 {
            let (slot, _) = larger.slot(of: hashes[index])
            larger.hashes[slot] = hashes[index]
            larger.expiries[slot] = expiries[index]
        }
        hashes = larger.hashes
        expiries = larger.expiries
    }

    /// Live revocations that Redis has expired by `now` (Unix seconds).
    func expired(now: Int64) -> Int {
        let (current, second) = Self.minute(of: now)
        var total = 0
        for (minute, held) in expiring where minute <= current {
            if minute < current {
                total += held.total
            } else {
                total += held.seconds[...second].reduce(0) { $0 + Int($1) }
            }
        }
        return total
    }

    /// Live revocations Redis still keeps at `now`.
    func live(now: Int64) -> Int { counted - expired(now: now) }

    /// Calls `body` with every hash held.
    func forEachHash(_ body: (UInt64) -> Void) {
        for index in hashes.indices where expiries[index] != 0 { body(hashes[index]) }
    }

    /// The same without the hashes Redis has expired by `now` (unrevoked ones included), in a
    /// table sized for what is left.
    func dropping(expiredBy now: Int64) -> HeldRevocations {
        let kept = count - expired(now: now)
        var next = HeldRevocations(room: max(kept, 0))
        for index in hashes.indices where expiries[index] != 0 {
            let expiry = expiries[index]
            guard expiry == Self.forever || Int64(expiry) > now else { continue }
            let hash = hashes[index]
            let (slot, _) = next.slot(of: hash)
            next.hashes[slot] = hash
            next.expiries[slot] = expiry
            next.count += 1
            if unrevoked.contains(hash) {
                next.unrevoked.insert(hash)
            } else {
                next.tally(expiry, by: 1)
            }
        }
        return next
    }
}
