// Owns the model of memcached's item lock table, which decides which LRU tail items an allocation made
// under a key's lock may reclaim or evict.
//
// memcached locks items by stripes of their hash: the low n bits, with n set by the worker count (10 for
// fewer than 3 workers, 11 for 3, 12 for 4, 13 up to 10, 14 up to 20, else 15). Some allocations happen
// while the command holds its key's stripe: a vivifying `mg`/`ma`, an incr/decr whose result needs a new
// item, append/prepend joining two values. Their walk over the class's LRU tail only *tries* each tail
// item's stripe, and that try fails on the stripe the command holds itself, so memcached skips every tail
// item that shares the key's stripe, expired or not. Cachet's segment locks partition the hash differently
// (its top bits), so taking "my own lock fails the try" as the rule would skip other items than memcached
// does and leave `curr_items`/`reclaimed` one apart (an expired item one server reclaims and the other
// keeps). The walk therefore skips by memcached's stripes and, for an item in the segment the caller
// already holds but in another stripe, works under the caller's lock instead of trying it again.

struct ItemLockStripes: Sendable {
    let mask: UInt32

    init(workerThreads: Int) {
        let power: UInt32
        switch workerThreads {
        case ..<3: power = 10
        case 3: power = 11
        case 4: power = 12
        case 5...10: power = 13
        case 11...20: power = 14
        default: power = 15
        }
        mask = (1 << power) - 1
    }

    /// Whether memcached would guard hashes `a` and `b` with the same item lock.
    @inline(__always) func shareStripe(_ a: UInt32, _ b: UInt32) -> Bool { (a ^ b) & mask == 0 }
}
