// Which worker gets a new connection or UDP socket (memcached thread.c's select_thread_round_robin and,
// with `-N`, select_thread_by_napi_id). With `-N`, a connection goes to the worker that already serves its
// NIC receive queue (the kernel's SO_INCOMING_NAPI_ID), so one queue's packets are handled on one core;
// queues are bound to workers in the order they are first seen. A socket without a NAPI id (loopback, UDP
// sockets at start) falls back to round robin, counted in `round_robin_fallback`; more queues than workers
// start the binding over, counted in `unexpected_napi_ids`.
import Glibc
import Synchronization

/// Invariant: `pick` runs on the main thread only (listeners and start-up); the counters are atomics
/// because `stats` reads them from workers.
final class WorkerChoice: @unchecked Sendable {
    let roundRobinFallback = Atomic<Int>(0)
    let unexpectedNapiIds = Atomic<Int>(0)
    private let workerCount: Int
    private let byNapiId: Bool
    private var lastRoundRobin = -1
    private var napiOfWorker: [Int32]
    private var lastBoundByNapi = -1

    init(workerCount: Int, napiIds: Int) {
        self.workerCount = workerCount
        byNapiId = napiIds > 0
        napiOfWorker = Array(repeating: 0, count: workerCount)
    }

    /// The index of the worker for socket `fd`.
    func pick(fd: Int32) -> Int {
        guard byNapiId else { return roundRobin() }
        var napi: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_INCOMING_NAPI_ID, &napi, &len) != 0 || napi == 0 {
            roundRobinFallback.add(1, ordering: .relaxed)
            return roundRobin()
        }
        while true {
            for i in 0..<workerCount {
                if lastBoundByNapi < i {   // the next worker not bound yet takes this queue
                    napiOfWorker[i] = napi
                    lastBoundByNapi = i
                    return i
                }
                if napiOfWorker[i] == napi { return i }
            }
            unexpectedNapiIds.add(1, ordering: .relaxed)
            for i in 0..<workerCount { napiOfWorker[i] = 0 }
            lastBoundByNapi = -1
        }
    }

    private func roundRobin() -> Int {
        lastRoundRobin = (lastRoundRobin + 1) % workerCount
        return lastRoundRobin
    }
}
