// One client connection and its request pipeline: connect → (TLS handshake) → keep up to `pipeline`
// requests outstanding, match replies in order, time each request, verify GET hits.
// With --servers a connection is one client of a fleet: it holds one socket (a Link) to every server and
// sends each request to the server that owns its key (ketama, as libmemcached does); `pipeline` bounds the
// requests outstanding over all its links, so pipeline 1 is a client that waits for each reply.
// In handshake mode (--new-conn-per-request, one server only) it sends one request per connection, then
// closes and reconnects, resuming the previous TLS session when asked.
// Invariant: owned and driven by exactly one worker thread (its epoll loop).

import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Shared, read-only per run: what every connection needs to build requests.
public final class RequestPlan: @unchecked Sendable {
    // Invariant: immutable after init; `valuePool` bytes are never written after init.
    public let options: BenchOptions
    public let codec: ValueCodec
    public let keyPrefix: [UInt8]
    public let valuePool: UnsafeMutableRawPointer   // maxSize bytes of filler for non-verify SETs
    public let addresses: [sockaddr_in]             // one per server (--servers), in the order given
    public let tls: TLSClientContext?
    public let zipf: ZipfTable?
    /// Which server owns a key; nil with one server.
    public let placement: KeyPlacement?

    public init(options: BenchOptions, addresses: [sockaddr_in], tls: TLSClientContext?) {
        precondition(!addresses.isEmpty, "a plan needs a server")
        zipf = options.keyPattern == .zipf ? ZipfTable(n: options.keys, exponent: options.zipfExponent) : nil
        self.options = options
        codec = ValueCodec(minSize: options.dataSizeMin, maxSize: options.dataSizeMax)
        keyPrefix = Array(options.keyPrefix.utf8)
        valuePool = UnsafeMutableRawPointer.allocate(byteCount: options.dataSizeMax, alignment: 16)
        var rng = BenchRNG(seed: options.seed ^ 0xA5A5)
        var i = 0
        while i < options.dataSizeMax {
            valuePool.storeBytes(of: UInt8(97 + rng.below(26)), toByteOffset: i, as: UInt8.self)
            i += 1
        }
        self.addresses = addresses
        self.tls = tls
        placement = addresses.count > 1
            ? KeyPlacement(servers: options.targets, keys: options.keys, prefix: keyPrefix, width: options.keyWidth)
            : nil
    }
    deinit { valuePool.deallocate() }

    @inline(__always)
    func server(ofKey key: Int) -> Int { placement?.server(ofKey: key) ?? 0 }
}

enum ConnPhase { case idle, connecting, handshaking, ready, closed }

struct Pending {
    var isSet: Bool
    var startNs: UInt64
    var keyBase: Int      // index into keyRing of its first key
    var keyCount: Int
}

/// One socket of a connection, to one server, with its own ring of outstanding requests (replies on one
/// socket come back in order; the sockets of a connection are independent of each other).
final class Link {
    let server: Int
    var fd: Int32 = -1
    var ssl: OpaquePointer? = nil
    var phase: ConnPhase = .idle
    /// A new socket exists that the worker has not added to epoll yet (fd numbers get reused, so
    /// comparing numbers is not enough).
    var needsRegister = false
    let out = ByteQueue()
    let inq = ByteQueue(capacity: 65536)
    var pending: [Pending]
    var keyRing: [Int]
    var versionRing: [UInt32]
    var pHead = 0, pCount = 0
    var getCursor = 0              // keys of the head GET already accounted for
    /// Last time this link saw its oldest outstanding request start or a reply complete.
    var lastProgressNs: UInt64 = 0

    init(server: Int, depth: Int, multiget: Int) {
        self.server = server
        pending = Array(repeating: Pending(isSet: false, startNs: 0, keyBase: 0, keyCount: 0), count: depth)
        keyRing = Array(repeating: 0, count: depth * multiget)
        versionRing = Array(repeating: 0, count: depth * multiget)
    }

    deinit { teardown() }

    func teardown() {
        if let s = ssl { SSL_free(s); ssl = nil }
        if fd >= 0 { close(fd); fd = -1 }
    }
}

public final class LoadConnection {
    let plan: RequestPlan
    let index: Int                 // global connection number
    let links: [Link]              // one per server
    var savedSession: OpaquePointer? = nil
    /// .ready once every link is; .closed after a failure (or, in handshake mode, when done).
    var phase: ConnPhase = .idle
    var connectStartNs: UInt64 = 0
    var chooser: KeyChooser
    var rng: BenchRNG
    var opSeq = 0
    /// Requests sent and not yet answered, over all links.
    var outstanding = 0
    let depth: Int

    /// Requests this connection may still start (Int.max when time-limited).
    public var budget: Int
    /// Set by the worker when time is up.
    var stopIssuing = false
    /// When true (prefill), SETs walk the owned keys in order and nothing else is sent.
    var setOnly = false
    /// --cache-aside: keys whose GET missed, to be SET next (what the application would fetch and store).
    var fills: [Int] = []
    /// --scan-ratio: one-hit-wonder keys asked for so far by this connection (numbers above --keys,
    /// interleaved over connections so no two ask for the same one).
    var scanned = 0
    public private(set) var failure: String? = nil

    let versions: UnsafeMutablePointer<UInt32>?    // expected version per key (verify), shared per worker
    let scratch: UnsafeMutableRawPointer?          // value build/compare buffer (verify)

    init(plan: RequestPlan, index: Int, versions: UnsafeMutablePointer<UInt32>?, scratch: UnsafeMutableRawPointer?) {
        self.plan = plan
        self.index = index
        let o = plan.options
        chooser = LoadConnection.measureChooser(plan, index)
        rng = BenchRNG(seed: o.seed &+ UInt64(index) &* 0x9E37_79B9)
        depth = o.newConnPerRequest ? 1 : o.pipeline
        links = plan.addresses.indices.map { Link(server: $0, depth: o.newConnPerRequest ? 1 : o.pipeline, multiget: o.multiget) }
        budget = Int.max
        self.versions = versions
        self.scratch = scratch
    }

    /// The key chooser of the measured phase (prefill walks the keys with another one).
    static func measureChooser(_ plan: RequestPlan, _ index: Int) -> KeyChooser {
        let o = plan.options
        if o.verify {
            return KeyChooser(keys: o.keys, pattern: o.keyPattern, partitionStride: o.totalConns, partition: index)
        }
        var chooser = KeyChooser(keys: o.keys, pattern: o.keyPattern, zipf: plan.zipf)
        if o.keyPattern == .sequential {
            // spread sequential walkers over the key space
            chooser.cursor = (o.keys / max(o.totalConns, 1)) * index % o.keys
        }
        return chooser
    }

    deinit {
        teardown()
        if let s = savedSession { SSL_SESSION_free(s) }
    }

    var isIdle: Bool { outstanding == 0 }
    /// Waiting on a server: a reply, a TCP connect or a TLS handshake.
    var isWaiting: Bool { outstanding > 0 || phase == .connecting || phase == .handshaking }
    var isFinished: Bool { phase == .closed || (outstanding == 0 && (stopIssuing || budget == 0)) }
    var needsRegister: Bool { links.contains { $0.needsRegister } }

    /// Why this connection has made no progress for `stallNs`, or nil.
    func stall(now: UInt64, stallNs: UInt64) -> String? {
        if phase == .connecting || phase == .handshaking {
            return now - connectStartNs > stallNs ? "\(phase)" : nil
        }
        for l in links where l.pCount > 0 && now - l.lastProgressNs > stallNs {
            return "\(l.pCount) request(s) outstanding" + (links.count > 1 ? " on \(plan.options.targets[l.server])" : "")
        }
        return nil
    }

    func fail(_ msg: String) {
        if failure == nil { failure = "connection \(index): \(msg)" }
        teardown()
        phase = .closed
    }

    func teardown() {
        for l in links { l.teardown() }
    }

    func describe(_ l: Link) -> String { links.count > 1 ? " (\(plan.options.targets[l.server]))" : "" }

    // MARK: connection setup

    /// Starts connecting every link; the worker registers their fds with epoll afterwards.
    func start(now: UInt64) -> Bool {
        connectStartNs = now
        phase = .connecting
        for l in links {
            l.lastProgressNs = now
            switch startConnect(plan.addresses[l.server]) {
            case .failure(let e): fail(e.description + describe(l)); return false
            case .success(let f): l.fd = f; l.needsRegister = true
            }
            l.phase = .connecting
            if let t = plan.tls {
                guard let s = SSL_new(t.ctx) else { fail("SSL_new: \(opensslErrors())"); return false }
                l.ssl = s
                SSL_set_fd(s, l.fd)
                SSL_set_connect_state(s)
                if plan.options.resume, let sess = savedSession { SSL_set_session(s, sess) }
            }
        }
        return true
    }

    /// Handshake mode (one link): one request done — remember the session, close politely, count, reconnect.
    func recycle(_ c: inout Counters, now: UInt64) -> Bool {
        let l = links[0]
        if let s = l.ssl {
            if SSL_session_reused(s) == 1 { c.resumed += 1 }
            if plan.options.resume, let sess = SSL_get1_session(s) {
                if let old = savedSession { SSL_SESSION_free(old) }
                savedSession = sess
            }
            SSL_shutdown(s)   // close_notify keeps the session resumable
        }
        c.handshakes += 1
        teardown()
        l.inq.clear(); l.out.clear()
        l.phase = .idle
        phase = .idle
        if stopIssuing || budget == 0 { phase = .closed; return false }
        return start(now: now)
    }

    // MARK: driving

    /// Called on every epoll event for link `li` (and once after start, and to kick a ready connection).
    func drive(_ li: Int, _ c: inout Counters, _ h: inout LatencyHistogram) {
        guard phase != .closed, li < links.count else { return }
        let l = links[li]
        if l.phase == .connecting {
            let err = connectError(l.fd)
            if err != 0 { fail("connect: \(String(cString: strerror(err)))" + describe(l)); return }
            l.phase = l.ssl == nil ? .ready : .handshaking
        }
        if l.phase == .handshaking {
            switch tlsHandshake(l.ssl!) {
            case .done: l.phase = .ready
            case .wouldBlock: return
            case .failed(let m): fail(m + describe(l)); return
            }
        }
        guard l.phase == .ready else { return }
        if phase != .ready {
            guard links.allSatisfy({ $0.phase == .ready }) else { return }
            phase = .ready
        }
        while true {
            issue(&c)
            for o in links where !o.out.isEmpty {
                if !flush(o, &c) { return }
            }
            let completed = readAndProcess(l, &c, &h)
            if completed < 0 || phase != .ready { return }
            if completed == 0 { return }
        }
    }

    func flush(_ l: Link, _ c: inout Counters) -> Bool {
        while !l.out.isEmpty {
            let r = l.ssl.map { tlsWrite($0, l.out.readable.baseAddress!, l.out.count) }
                ?? plainWrite(l.fd, l.out.readable.baseAddress!, l.out.count)
            switch r {
            case .bytes(let n): l.out.consume(n); c.bytesOut += n
            case .wouldBlock: return true
            case .closed: fail("server closed the connection" + describe(l)); return false
            case .failed(let m): fail(m + describe(l)); return false
            }
        }
        return true
    }

    /// Reads link `l` until its socket is drained; returns replies completed, or -1 after a failure.
    func readAndProcess(_ l: Link, _ c: inout Counters, _ h: inout LatencyHistogram) -> Int {
        var completed = 0
        while true {
            // read into all free space (at least 16 KB); the buffer only grows while a reply is bigger than it
            let p = l.inq.reserve(16384)
            let want = l.inq.capacity - l.inq.tail
            let r = l.ssl.map { tlsRead($0, p, want) } ?? plainRead(l.fd, p, want)
            switch r {
            case .bytes(let n):
                l.inq.commit(n); c.bytesIn += n
                let k = processReplies(l, &c, &h)
                if k < 0 { return -1 }
                completed += k
                if phase != .ready { return completed }   // recycled in handshake mode
            case .wouldBlock: return completed
            case .closed:
                fail((l.pCount > 0 ? "server closed the connection with \(l.pCount) requests outstanding"
                                   : "server closed the connection") + describe(l))
                return -1
            case .failed(let m): fail(m + describe(l)); return -1
            }
        }
    }

    // MARK: requests

    @inline(__always)
    func canIssue() -> Bool { outstanding < depth && budget > 0 && !stopIssuing }

    func issue(_ c: inout Counters) {
        let o = plan.options
        while canIssue() {
            let cycle = o.setRatio + o.getRatio
            let isSet = setOnly || (o.cacheAside ? !fills.isEmpty : (opSeq % cycle) < o.setRatio)
            opSeq += 1
            budget -= 1
            let now = monotonicNanos()
            if isSet {
                let key = o.cacheAside && !setOnly ? fills.removeFirst() : nextKey()
                let l = links[plan.server(ofKey: key)]
                let slot = (l.pHead + l.pCount) % l.pending.count
                let keyBase = slot * o.multiget
                if l.pCount == 0 { l.lastProgressNs = now }
                l.keyRing[keyBase] = key
                appendSet(l, key: key)
                l.pending[slot] = Pending(isSet: true, startNs: o.newConnPerRequest ? connectStartNs : now,
                                          keyBase: keyBase, keyCount: 1)
                l.pCount += 1
            } else {
                // a multi-get goes to one server (several --servers allow --multiget 1 only)
                let first = nextKey()
                let l = links[plan.server(ofKey: first)]
                let slot = (l.pHead + l.pCount) % l.pending.count
                let keyBase = slot * o.multiget
                if l.pCount == 0 { l.lastProgressNs = now }
                l.out.append("get")
                for j in 0..<o.multiget {
                    let key = j == 0 ? first : nextKey()
                    l.keyRing[keyBase + j] = key
                    l.versionRing[keyBase + j] = versions?[key] ?? 0
                    l.out.append(" ")
                    appendKey(l, key)
                }
                l.out.append("\r\n")
                l.pending[slot] = Pending(isSet: false, startNs: o.newConnPerRequest ? connectStartNs : now,
                                          keyBase: keyBase, keyCount: o.multiget)
                l.pCount += 1
            }
            outstanding += 1
        }
    }

    /// The next key from the key pattern, or (--scan-ratio) a key nobody asked for before.
    @inline(__always)
    func nextKey() -> Int {
        let o = plan.options
        if o.scanRatio > 0 && !setOnly && rng.unit() < o.scanRatio {
            scanned += 1
            return o.keys + scanned * o.totalConns + index
        }
        return chooser.nextKey(&rng)
    }

    @inline(__always)
    func appendKey(_ l: Link, _ key: Int) {
        let p = l.out.reserve(plan.keyPrefix.count + 24)
        l.out.commit(formatKey(prefix: plan.keyPrefix, width: plan.options.keyWidth, number: key, into: p))
    }

    func appendSet(_ l: Link, key: Int) {
        let out = l.out
        out.append("set ")
        appendKey(l, key)
        out.append(" 0 0 ")
        if let versions, let scratch {
            var v = versions[key] &+ 1
            if v == 0 { v = 1 }
            versions[key] = v
            let n = plan.codec.write(key: key, version: v, into: scratch)
            out.appendDecimal(n)
            out.append("\r\n")
            out.append(scratch, n)
        } else {
            let n = plan.codec.minSize == plan.codec.maxSize ? plan.codec.minSize
                : plan.codec.minSize + rng.below(plan.codec.maxSize - plan.codec.minSize + 1)
            out.appendDecimal(n)
            out.append("\r\n")
            out.append(plan.valuePool, n)
        }
        out.append("\r\n")
    }

    // MARK: replies

    /// Consumes complete replies from link `l`'s read buffer; returns how many requests completed, -1 on failure.
    func processReplies(_ l: Link, _ c: inout Counters, _ h: inout LatencyHistogram) -> Int {
        var completed = 0
        let inq = l.inq
        while l.pCount > 0 {
            let head = l.pending[l.pHead]
            let buf = inq.readable
            if head.isSet {
                guard let (reply, used) = parseStoreReply(buf) else { break }
                inq.consume(used)
                c.sets += 1
                if reply != .stored {
                    c.setFailures += 1
                    // the server may not hold what we think: stop expecting a version for this key
                    if let versions { versions[l.keyRing[head.keyBase]] = 0 }
                    if reply == .error || reply == .clientError || reply == .other { c.protocolErrors += 1 }
                }
            } else {
                var done = false
                while !done {
                    switch parseGetStep(inq.readable) {
                    case .incomplete:
                        return completed
                    case .unexpected(let used):
                        inq.consume(used)
                        c.protocolErrors += 1
                        l.getCursor = head.keyCount
                        done = true
                    case .end(let used):
                        inq.consume(used)
                        if plan.options.cacheAside && l.getCursor == 0 { fills.append(l.keyRing[head.keyBase]) }
                        c.misses += head.keyCount - l.getCursor
                        done = true
                    case .value(let keyR, let dataR, let used):
                        let b = inq.readable
                        let keyBytes = UnsafeRawBufferPointer(rebasing: b[keyR])
                        let data = UnsafeRawBufferPointer(rebasing: b[dataR])
                        guard let keyNum = parseKeyNumber(prefix: plan.keyPrefix, key: keyBytes) else {
                            c.protocolErrors += 1; c.verifyErrors += plan.options.verify ? 1 : 0
                            inq.consume(used); continue
                        }
                        // replies come in request order, misses are skipped
                        var j = l.getCursor
                        while j < head.keyCount && l.keyRing[head.keyBase + j] != keyNum { j += 1 }
                        if j == head.keyCount {
                            c.protocolErrors += 1; c.verifyErrors += plan.options.verify ? 1 : 0
                            inq.consume(used); continue
                        }
                        c.misses += j - l.getCursor
                        c.hits += 1
                        c.valueBytesIn += data.count
                        if let scratch { verifyHit(keyNum, expected: l.versionRing[head.keyBase + j], data, scratch, &c) }
                        l.getCursor = j + 1
                        inq.consume(used)
                    }
                }
                l.getCursor = 0
                c.gets += 1
                c.getKeys += head.keyCount
            }
            let now = monotonicNanos()
            l.lastProgressNs = now
            _ = h.record(now &- head.startNs)
            c.requests += 1
            completed += 1
            l.pHead = (l.pHead + 1) % l.pending.count
            l.pCount -= 1
            outstanding -= 1
            if plan.options.newConnPerRequest {
                _ = recycle(&c, now: now)
                return completed
            }
        }
        return completed
    }

    func verifyHit(_ key: Int, expected: UInt32, _ data: UnsafeRawBufferPointer,
                   _ scratch: UnsafeMutableRawPointer, _ c: inout Counters) {
        let codec = plan.codec
        if expected != 0 {
            if codec.matches(key: key, version: expected, value: data, scratch: scratch) { c.verified += 1 }
            else { c.verifyErrors += 1 }
        } else if let v = codec.headerVersion(key: key, value: data) {
            // a key this run has not written (or whose SET failed): it must still be a whole value of ours
            if codec.matches(key: key, version: v, value: data, scratch: scratch) { c.unverifiable += 1 }
            else { c.verifyErrors += 1 }
        } else {
            c.unverifiable += 1
        }
    }
}
