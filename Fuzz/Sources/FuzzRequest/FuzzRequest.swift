// Fuzz target: the whole request path. The input is what one client sends: it goes through a
// socketpair into a real Connection on a real Worker's event base (the worker's thread is not started:
// this target runs the base itself, one thread, so a run is repeatable), against a small real store.
// Every command handler, data blocks (`set`/`ms`), swallowing of rejected values, pipelining, the
// per-event request budget, zero-copy large values, watch and metadump take-overs run as they do in
// the server. After the input the client half-closes; the connection must then close by itself
// (every state ends at end of stream) — a connection still open after that is reported as a hang.
import CacheStore
@testable import CachetServer
import CLibevent
import Glibc
import MemcacheProtocol

@inline(__always)
private func check(_ ok: Bool, _ what: StaticString) {
    if !ok {
        "invariant broken: \(what)\n".withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

/// One server for the whole run (the store keeps what earlier inputs stored, as a long-lived server
/// does): one worker, 8 MB of items so eviction happens, values over 16 KB chunked, 4 requests per event so yields happen, watch and
/// the crawler enabled. No -A: `shutdown` must not end the process.
private final class Harness: @unchecked Sendable {
    let server: ServerContext
    let worker: Worker
    let listener = ListenerInfo(tls: .plaintext, address: "unix:/fuzz")

    init() {
        guard case .run(let settings) = SettingsParser.parse(["-t", "1", "-m", "8", "-R", "4",
                                                             "-o", "slab_chunk_max=16384"]) else {
            fatalError("fuzz settings rejected")
        }
        signal(SIGPIPE, SIG_IGN)
        evthread_use_pthreads()
        let now = Int(time(nil))
        let clock = StoreClock(now: now)
        let store = CacheStore(config: settings.storeConfig, clock: clock)
        server = ServerContext(settings: settings, store: store, clock: clock, tls: nil, now: now)
        worker = Worker(id: 0, server: server)
        server.workers = [worker]
    }
}

private let harness = Harness()
nonisolated(unsafe) private var sink = [UInt8](repeating: 0, count: 1 << 16)

private func setNonBlocking(_ fd: Int32) {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let h = harness
    var sv: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0 else { fatalError("socketpair: \(errno)") }
    let (serverFd, clientFd) = (sv[0], sv[1])
    setNonBlocking(serverFd)
    setNonBlocking(clientFd)
    h.server.connectionOpened()
    let conn = Connection(fd: serverFd, worker: h.worker, listener: h.listener)
    h.worker.connections[serverFd] = conn
    conn.start()

    var sent = 0
    var halfClosed = false
    var idleRounds = 0
    while h.worker.connections[serverFd] != nil {
        var progress = false
        if sent < size {
            let n = write(clientFd, data + sent, size - sent)
            if n > 0 { sent += n; progress = true }
        } else if !halfClosed {
            shutdown(clientFd, Int32(SHUT_WR))
            halfClosed = true
            progress = true
        }
        // Run what is ready (the connection's read/write events, a watcher's wake-up).
        event_base_loop(h.worker.base, EVLOOP_NONBLOCK)
        // Read the replies like a client, so the server's writes never block for good.
        while true {
            let n = sink.withUnsafeMutableBytes { read(clientFd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            progress = true
        }
        if progress { idleRounds = 0 } else { idleRounds += 1 }
        if idleRounds > 0 && idleRounds % 64 == 0 {
            // Nothing moves: let the loop block briefly in case a write event waits on the socket.
            var tv = timeval(tv_sec: 0, tv_usec: 1000)
            event_base_loopexit(h.worker.base, &tv)
            event_base_loop(h.worker.base, EVLOOP_ONCE)
        }
        check(idleRounds < 4096, "the connection closes after the client's end of stream (hang)")
    }
    Glibc.close(clientFd)
    return 0
}
