// A worker thread: its own libevent base, the connections handed to it by the listener thread, a
// wake-up eventfd for hand-offs, and a 1-second timer for idle_timeout. Everything a worker owns is
// touched only by its own thread, except `inbox` (Mutex) and `stats` (its own mutex).
import CLibevent
import CachetTLS
import Glibc
import MemcacheProtocol
import Synchronization

/// An accepted socket on its way from the listener thread to a worker.
struct PendingConnection: Sendable {
    let fd: Int32
    let listener: ListenerInfo
}

/// What a connection needs to know about the listener that accepted it.
struct ListenerInfo: Sendable {
    let tls: ListenerVerify?   // nil = plaintext
    let address: String        // memcached's "tcp:127.0.0.1:11211" / "unix:/path" for stats conns
}

private let notifyCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { fd, _, arg in
    Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().drainInbox()
}

private let idleTimerCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().checkIdle()
}

private let workerMain: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
    let worker = Unmanaged<Worker>.fromOpaque(arg!).takeRetainedValue()
    worker.run()
    return nil
}

/// Invariant: `connections`, `base` events and every Connection are used only on this worker's thread
/// (after `start()`); other threads use only `enqueue` (inbox + eventfd) and `stats`.
final class Worker: @unchecked Sendable {
    let id: Int
    let server: ServerContext
    let stats = ThreadStats()
    let base: OpaquePointer
    private let inbox = Mutex<[PendingConnection]>([])
    private let notifyFd: Int32
    private var notifyEvent: OpaquePointer?
    private var idleEvent: OpaquePointer?
    /// Connections by fd.
    var connections: [Int32: Connection] = [:]
    /// Scratch tokens for the command a connection of this worker is running (see Connection.tokens).
    let tokens = TokenList()
    /// Where a meta command's base64 key (`b`) is decoded; used only within one command on this thread.
    let metaKeyScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    private var thread = pthread_t()

    init(id: Int, server: ServerContext) {
        self.id = id
        self.server = server
        // Only this worker's thread ever touches its base (hand-offs go through the eventfd), so
        // libevent's internal base lock is pure overhead here.
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
    }

    func run() {
        event_base_dispatch(base)
    }

    /// Called on the listener thread.
    func enqueue(_ pending: PendingConnection) {
        inbox.withLock { $0.append(pending) }
        var one: UInt64 = 1
        _ = write(notifyFd, &one, 8)
    }

    func drainInbox() {
        var count: UInt64 = 0
        _ = read(notifyFd, &count, 8)
        let batch = inbox.withLock { q -> [PendingConnection] in
            let b = q
            q.removeAll(keepingCapacity: true)
            return b
        }
        for p in batch {
            let conn = Connection(fd: p.fd, worker: self, listener: p.listener)
            connections[p.fd] = conn
            conn.start()
        }
    }

    func remove(_ conn: Connection) {
        connections[conn.fd] = nil
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
        let timeout = UInt32(server.settings.idleTimeout)
        guard timeout > 0 else { return }
        var victims: [Connection] = []
        for (_, c) in connections where c.isIdle && now &- c.lastCmdTime > timeout {
            victims.append(c)
        }
        for c in victims {
            stats.add(.idleKicks)
            c.ops.closeReason = .idleTimeout
            c.close()
        }
    }
}

/// glibc's malloc_trim (malloc.h is not part of Swift's Glibc module): returns whole free pages of every
/// arena to the kernel.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
