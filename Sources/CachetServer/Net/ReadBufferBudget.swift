// `-o read_buf_mem_limit=<MB>`: a bound on the memory connections hold for unprocessed input, as memcached
// bounds its read-buffer cache. The limit is split evenly between workers and counted in memcached's 16 KB
// read buffers (at least one per worker). A connection takes a buffer when it first needs to read and gives
// it back once its input is used up; one that finds its worker's budget spent is closed and counted in
// `read_buf_oom`, as memcached does — everyone else keeps being served. With no limit the count still
// feeds `stats` (read_buf_count / read_buf_bytes).
import Synchronization

/// Invariant: `acquire` and `release` run on the owning worker's thread only; `held` is atomic because
/// `stats` sums it from any worker.
final class ReadBufferBudget: Sendable {
    /// memcached's READ_BUFFER_SIZE: the unit of the limit and of the stats.
    static let bufferSize = 16384
    /// Buffers this worker may hand out; 0 = no limit.
    let limit: Int
    let held = Atomic<Int>(0)

    init(limitBytes: UInt32, workers: Int) {
        if limitBytes == 0 {
            limit = 0
        } else {
            let share = Int(Int32(bitPattern: limitBytes)) / workers   // memcached divides an int
            limit = share < ReadBufferBudget.bufferSize ? 1 : share / ReadBufferBudget.bufferSize
        }
    }

    var limited: Bool { limit != 0 }

    /// False when the budget is spent (the caller closes the connection).
    func acquire() -> Bool {
        let n = held.load(ordering: .relaxed)
        if limit != 0 && n >= limit { return false }
        held.store(n + 1, ordering: .relaxed)
        return true
    }

    func release() { held.store(held.load(ordering: .relaxed) - 1, ordering: .relaxed) }
}
