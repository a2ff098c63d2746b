// A worker thread: its own libevent base, the connections handed to it by the listener thread, a
// mailbox for everything other threads hand it, and a 1-second timer for idle_timeout and
// ssl_handshake_timeout. Everything a
// worker owns is touched only by its own thread, except `mailbox` (a lock + eventfd) and `stats` (atomics).
//
// The mailbox is the one way into a worker from another thread. Its event base is created without
// libevent's lock (EVENT_BASE_FLAG_NOLOCK), so no other thread may add, activate or free its events, and
// a Connection may be freed by its worker at any moment: another thread names what it wants done
// (a new connection, "this watcher has lines", stop) and the worker does it on its own thread, finding
// the connection it concerns in its own table — or not, if it has gone meanwhile.
import CachetSync
import CLibevent
import CachetTLS
import Glibc
import MemcacheProtocol
import Synchronization

/// An accepted socket on its way from the listener thread to a worker.
struct PendingConnection: Sendable {
    let fd: Int32
    let listener: ListenerInfo
    /// Set when this is a handshake thread: the worker (index in `workers`) that serves the connection
    /// once its TLS handshake is done.
    var handOffTo: Int? = nil
}

/// What another thread can ask of a worker.
enum WorkerMail: Sendable {
    /// Take this accepted socket (from the listener thread).
    case connection(PendingConnection)
    /// Serve this connection, whose TLS handshake a handshake thread has finished (HandshakeHandoff.swift).
    case handedOff(TLSHandoff)
    /// This watcher's queue went from empty to non-empty (from whichever thread logged the line).
    case watcherReady(Watcher)
    /// Serve this UDP socket (a copy of it) as this worker's UDP "connection" (from the main thread).
    case udpSocket(UDPSocketInfo)
    /// Leave the event loop (from the main thread, at exit).
    case stop
}

/// What a connection needs to know about the listener that accepted it.
struct ListenerInfo: Sendable {
    let tls: ListenerTLS
    let address: String        // memcached's "tcp:127.0.0.1:11211" / "unix:/path" for stats conns
}

private let notifyCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().drainMailbox()
}

private let idleTimerCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().checkIdle()
}

private let workerMain: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
    let worker = Unmanaged<Worker>.fromOpaque(arg!).takeRetainedValue()
    worker.run()
    worker.stopped.store(true, ordering: .releasing)
    return nil
}

/// Invariant: `connections`, `base` events and every Connection are used only on this worker's thread
/// (after `start()`); other threads use only `post` (mailbox + eventfd), `stats` and `stopped`.
final class Worker: @unchecked Sendable {
    let id: Int
    let server: ServerContext
    let stats = ThreadStats()
    let base: OpaquePointer
    private let mailbox = Locked<[WorkerMail]>([])
    /// Set by the worker's thread once its event loop has returned (after a `.stop`).
    let stopped = Atomic<Bool>(false)
    private let notifyFd: Int32
    private var notifyEvent: OpaquePointer?
    private var idleEvent: OpaquePointer?
    /// Connections by fd.
    var connections: [Int32: Connection] = [:]
    /// This worker's copies of the UDP sockets (they live as long as the worker).
    var udpConnections: [UDPConnection] = []
    /// TLS connections of this worker whose handshake has not finished yet, by fd (TLSGuards.swift).
    var handshaking: [Int32: Connection] = [:]
    /// The handshake share (TLSGuards.swift): the clock second a busy connection last had an event, the
    /// earliest time (monotonic ns) the next ClientHello may be answered while one does, the connections
    /// waiting for it, and the timer that wakes them.
    var lastBusySecond: UInt32 = 0
    var handshakeAllowedAt: UInt64 = 0
    var deferredHandshakes: [Connection] = []
    var handshakeTimer: OpaquePointer?
    /// Scratch space for the command a session of this worker is running (one at a time).
    let scratch = CommandScratch()
    /// `-o read_buf_mem_limit`: this worker's share of read buffers.
    let readBuffers: ReadBufferBudget
    private var thread = pthread_t()

    init(id: Int, server: ServerContext) {
        self.id = id
        self.server = server
        readBuffers = ReadBufferBudget(limitBytes: server.settings.readBufMemLimit, workers: server.settings.numThreads)
        // Only this worker's thread ever touches its base (everything else comes through the mailbox),
        // so libevent's internal base lock is pure overhead here.
        let cfg = event_config_new()
        event_config_set_flag(cfg, Int32(EVENT_BASE_FLAG_NOLOCK.rawValue))
        base = event_base_new_with_config(cfg)
        event_config_free(cfg)
        notifyFd = eventfd(0, Int32(EFD_NONBLOCK))
    }

    func start() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        notifyEvent = event_new(base, notifyFd, Int16(EV_READ | EV_PERSIST), notifyCallback, me)
        event_add(notifyEvent, nil)
        idleEvent = event_new(base, -1, Int16(EV_PERSIST), idleTimerCallback, me)
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        event_add(idleEvent, &tv)
        pthread_create(&thread, nil, workerMain, Unmanaged.passRetained(self).toOpaque())
        // Nobody joins a worker: at exit the main thread waits for `stopped` (bounded), not for the thread.
        pthread_detach(thread)
    }

    func run() {
        WatchBatch.install(watchBatch)
        if isHandshakeThread { takeHandshakeShare() }
        event_base_dispatch(base)
    }

    /// `watch` lines logged on this thread during the current event (see WatchBatch).
    let watchBatch = WatchBatch()

    /// Ends every event this worker runs: the lines it logged go out to the watchers.
    @inline(__always) func publishWatchLines() {
        if !watchBatch.isEmpty { server.watchLog.publish(watchBatch) }
    }

    /// Any thread. The eventfd is written only when the mailbox was empty: a non-empty mailbox already
    /// has a wake-up on its way (the post that filled it wrote one after appending, and the worker reads
    /// the eventfd before it takes the mail), so bursts of watcher lines cost one write(2), not one each.
    func post(_ mail: WorkerMail) {
        let wasEmpty = mailbox.withLock { box in
            let e = box.isEmpty
            box.append(mail)
            return e
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(notifyFd, &one, 8)
        }
    }

    func drainMailbox() {
        var count: UInt64 = 0
        _ = read(notifyFd, &count, 8)
        let batch = mailbox.withLock { box -> [WorkerMail] in
            let b = box
            box.removeAll(keepingCapacity: true)
            return b
        }
        for mail in batch {
            switch mail {
            case .connection(let p):
                let conn = Connection(fd: p.fd, worker: self, listener: p.listener)
                if let target = p.handOffTo { conn.handOffTo = server.workers[target] }
                connections[p.fd] = conn
                conn.start()
            case .handedOff(let h):
                let conn = Connection(fd: h.fd, worker: self, listener: h.listener, handedOff: h)
                connections[h.fd] = conn
                conn.startHandedOff()
            case .watcherReady(let w):
                // The watcher's connection may have closed (and its fd been reused) since the line was
                // queued: only the connection that still owns this watcher is driven.
                if let conn = connections[w.cfd], conn.session.watcher === w { conn.onEvent(0) }
            case .udpSocket(let info):
                let conn = UDPConnection(info: info, worker: self)
                udpConnections.append(conn)
                conn.start()
            case .stop:
                event_base_loopbreak(base)
            }
        }
        publishWatchLines()
    }

    func remove(_ conn: Connection) {
        connections[conn.fd] = nil
        handshaking[conn.fd] = nil
    }

    /// Once a second: quiet connections release their buffers; with idle_timeout, memcached's
    /// conn_timeout thread closes connections idle longer than the timeout.
    func checkIdle() {
        let now = server.clock.currentTime
        var released = 0
        for (_, c) in connections where c.releaseBuffersIfQuiet(now: now) { released += 1 }
        // Freed record and request buffers go back to malloc, which keeps them (RSS stays up) unless
        // asked to return whole free pages to the kernel. Worth a trim once a burst went quiet.
        if released >= 32 { _ = glibcMallocTrim(0) }
        closeStalledHandshakes(now: now)
        let timeout = UInt32(server.settings.idleTimeout)
        guard timeout > 0 else { return }
        var victims: [Connection] = []
        for (_, c) in connections where c.isOpen && now &- c.session.lastCmdTime > timeout {
            victims.append(c)
        }
        for c in victims {
            stats.add(.idleKicks)
            c.session.closeReason = .idleTimeout
            c.close()
        }
        publishWatchLines()
    }
}

/// glibc's malloc_trim (malloc.h is not part of Swift's Glibc module): returns whole free pages of every
/// arena to the kernel.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32

extension Worker: WatcherWaking {
    /// A watcher of one of this worker's sessions has lines: its connection is driven on this thread.
    func watcherHasLines(_ w: Watcher) { post(.watcherReady(w)) }
}
