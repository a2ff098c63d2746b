// What the listeners do when accept() runs out of file descriptors (EMFILE/ENFILE) — the normal way
// to reach `-c` with `-o no_maxconns_fast`, and still possible with maxconns_fast when something else
// holds fds. Like memcached: every listener stops accepting and shrinks its backlog to 0 (the kernel
// stops queueing more clients), `accepting_conns` drops to 0 and `listen_disabled_num` counts the
// pause; every 10 ms the main thread looks whether a connection has closed since, and if so listens
// again with `-b` and resumes. Without this, libevent keeps the listener armed: accept() fails again
// at once, forever — one core spinning and a warning line per failure on stderr.
import CLibevent
import Glibc

private let resumeCheckCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<AcceptPause>.fromOpaque(arg!).takeUnretainedValue().check()
}

/// Invariant: used only on the main thread (the listener base's thread).
final class AcceptPause {
    private let server: ServerContext
    private var timer: OpaquePointer?
    private var listeners: [Listener] = []
    private var connsAtPause = 0
    private(set) var paused = false

    init(server: ServerContext, base: OpaquePointer) {
        self.server = server
        timer = event_new(base, -1, 0, resumeCheckCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    func register(_ l: Listener) { listeners.append(l) }

    /// accept() failed on `listener` with `err` (libevent has already retried the transient errors).
    func acceptFailed(_ err: Int32) {
        // memcached reports every failed accept the same way (perror).
        writeStderr("accept4(): \(String(cString: strerror(err)))\n")
        guard err == EMFILE || err == ENFILE, !paused else { return }
        if server.verbosity.load(ordering: .relaxed) > 0 { writeStderr("Too many open connections\n") }
        paused = true
        connsAtPause = server.currConns.load(ordering: .relaxed)
        for l in listeners { l.stopAccepting() }
        server.acceptingConns.store(false, ordering: .relaxed)
        server.listenDisabledNum.add(1, ordering: .relaxed)
        schedule()
    }

    /// Resume once any connection closed after the pause (memcached's test too); no new one was
    /// accepted meanwhile, so a smaller count means exactly that.
    fileprivate func check() {
        guard paused else { return }
        if server.currConns.load(ordering: .relaxed) < connsAtPause {
            paused = false
            for l in listeners { l.resumeAccepting() }
            server.acceptingConns.store(true, ordering: .relaxed)
        } else {
            schedule()
        }
    }

    private func schedule() {
        var tv = timeval(tv_sec: 0, tv_usec: 10_000)
        event_add(timer, &tv)
    }
}
