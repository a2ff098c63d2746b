// A worker thread: its own epoll loop (edge-triggered) over its connections. The runner drives every
// worker through the same phases — connect, (prefill), measure — each phase one pthread run, so
// connections (and the verify table) persist between phases while timing covers only `measure`.
// Invariant: between runs only the runner touches a Worker; during a run only its own thread does.

import CBenchEpoll
#if canImport(Glibc)
import Glibc
#endif

public enum WorkerPhase: Sendable { case connect, prefill, measure }

public final class Worker: @unchecked Sendable {
    let plan: RequestPlan
    let id: Int
    var conns: [LoadConnection] = []
    let epfd: Int32
    let versions: UnsafeMutablePointer<UInt32>?
    let scratch: UnsafeMutableRawPointer?
    var phase: WorkerPhase = .connect
    var deadlineNs: UInt64 = .max
    public var report = WorkerReport()
    public private(set) var finishedNs: UInt64 = 0

    public init(plan: RequestPlan, id: Int) {
        self.plan = plan
        self.id = id
        epfd = cbench_epoll_create()
        let o = plan.options
        if o.verify {
            versions = .allocate(capacity: o.keys)
            versions!.initialize(repeating: 0, count: o.keys)
            scratch = .allocate(byteCount: o.dataSizeMax, alignment: 16)
        } else {
            versions = nil; scratch = nil
        }
        for c in 0..<o.conns {
            conns.append(LoadConnection(plan: plan, index: id * o.conns + c, versions: versions, scratch: scratch))
        }
    }

    deinit {
        conns.removeAll()
        close(epfd)
        versions?.deallocate()
        scratch?.deallocate()
    }

    /// Splits `total` requests over all connections of the run; returns this connection's share.
    static func share(_ total: Int, conn: Int, of n: Int) -> Int { total / n + (conn < total % n ? 1 : 0) }

    /// The epoll token of link `li` of connection `i` (a connection has one link per server).
    @inline(__always) func token(_ i: Int, _ li: Int) -> UInt64 { UInt64(i * plan.addresses.count + li) }

    func register(_ i: Int) {
        let c = conns[i]
        for (li, l) in c.links.enumerated() where l.fd >= 0 && l.needsRegister {
            l.needsRegister = false
            if cbench_epoll_add(epfd, l.fd, token(i, li)) != 0 {
                c.fail("epoll_ctl: \(String(cString: strerror(errno)))")
                return
            }
        }
    }

    /// Prepares the next phase (called by the runner before starting the thread).
    public func prepare(_ p: WorkerPhase, deadline: UInt64 = .max) {
        phase = p
        deadlineNs = deadline
        let o = plan.options
        for c in conns {
            c.stopIssuing = false
            switch p {
            case .connect:
                c.budget = 0
            case .prefill:
                c.setOnly = true
                c.chooser = KeyChooser(keys: o.keys, pattern: .sequential, partitionStride: o.totalConns, partition: c.index)
                c.budget = c.chooser.ownedKeys
            case .measure:
                c.setOnly = false
                c.opSeq = 0
                // After a prefill the chooser walks keys in order; measuring uses the run's key pattern.
                c.chooser = LoadConnection.measureChooser(plan, c.index)
                c.budget = o.requests.map { Self.share($0, conn: c.index, of: o.totalConns) } ?? Int.max
            }
        }
        if p == .measure { report = WorkerReport() }
    }

    /// The thread body for one phase.
    public func run() {
        var counters = Counters()
        var hist = report.latency
        let handshakeMode = plan.options.newConnPerRequest
        let now0 = monotonicNanos()
        for (i, c) in conns.enumerated() where c.phase == .idle {
            // handshake mode connects inside the measured phase, one connection per request
            if handshakeMode && phase != .measure { continue }
            if c.start(now: now0) { register(i) }
        }
        // edge-triggered: connections already up from the previous phase get no new event, so kick them
        for c in conns where c.phase == .ready { c.drive(0, &counters, &hist) }
        var events = [UInt64](repeating: 0, count: 256)
        let stallNs = UInt64(plan.options.stallTimeout * 1e9)
        var nextStallCheck: UInt64 = 0
        while true {
            if phaseDone() { break }
            let n = cbench_epoll_wait(epfd, &events, Int32(events.count), 5)
            if n < 0 && errno != EINTR {
                report.failure = "epoll_wait: \(String(cString: strerror(errno)))"
                break
            }
            if n > 0 {
                for e in 0..<Int(n) {
                    let t = Int(events[e])
                    let i = t / plan.addresses.count
                    let c = conns[i]
                    c.drive(t % plan.addresses.count, &counters, &hist)
                    if c.needsRegister { register(i) }
                    if let f = c.failure { report.failure = f }
                }
            }
            if report.failure != nil { break }
            let now = monotonicNanos()
            if now >= nextStallCheck {
                nextStallCheck = now + 100_000_000
                if let (stalled, what) = conns.lazy.compactMap({ c in c.stall(now: now, stallNs: stallNs).map { (c, $0) } }).first {
                    report.failure = "connection \(stalled.index): no progress for \(plan.options.stallTimeout) s"
                        + " (\(what)) — server stalled or hung"
                    break
                }
            }
            if deadlineNs != .max && monotonicNanos() >= deadlineNs {
                for c in conns where !c.stopIssuing {
                    c.stopIssuing = true
                    if handshakeMode && c.isIdle && c.phase != .closed {
                        // mid-handshake: nothing to wait for
                        c.teardown(); c.phase = .closed
                    }
                }
            }
        }
        finishedNs = monotonicNanos()
        if phase == .measure || phase == .prefill {
            report.counters.add(counters)
        }
        report.latency = hist
        if phase == .prefill {
            // prefill numbers are not part of the measurement
            report = WorkerReport()
            if counters.setFailures > 0 {
                report.failure = "prefill: \(counters.setFailures) SETs not stored"
            }
        }
    }

    func phaseDone() -> Bool {
        switch phase {
        case .connect:
            return conns.allSatisfy { $0.phase == .ready || $0.phase == .closed }
                || plan.options.newConnPerRequest
        case .prefill, .measure:
            return conns.allSatisfy { $0.isFinished }
        }
    }
}

/// Runs `body` of every worker on its own pthread and waits for all of them.
public func runOnThreads(_ workers: [Worker]) {
    var tids: [pthread_t] = []
    for w in workers {
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(w).toOpaque()
        let rc = pthread_create(&tid, nil, { raw in
            let w = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            w.run()
            return nil
        }, arg)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        tids.append(tid)
    }
    for t in tids { pthread_join(t, nil) }
}
