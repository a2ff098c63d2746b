// `-o ssl_handshake_threads=<n>`: TLS handshakes on threads of their own.
//
// A handshake answers a ClientHello with a signature (~1 ms for RSA-2048), a worker answers a request in a
// few microseconds, and OpenSSL cannot be interrupted inside the signature: a worker that runs handshakes
// makes its established clients wait behind them (`ssl_handshake_share` paces that). With handshake threads
// the listener still picks each TLS connection's worker (round robin, or by NAPI id with -N), but gives the
// socket to a handshake thread first — an event loop like a worker's (Worker), whose connections only do
// their handshake: the plaintext check, the handshake timeout and `stats conns` work there as on a worker.
// When the handshake is done the connection moves to its worker whole (socket, OpenSSL session, its
// `stats conns` record) through that worker's mailbox, and the worker reads at once (the client's first
// request may already be there). The kernel then schedules handshakes and requests as two threads: an
// established client's request wakes its worker while a handshake thread is mid-signature, instead of
// waiting for it, and handshakes use the CPU time the workers leave — all of another core if there is one.
//
// Where handshake threads and workers share a busy core, `ssl_handshake_share` is the handshake threads'
// scheduling weight: a handshake thread's nice value is raised until its weight against a worker's is
// share : (100 − share) — 40 (the default) is nice +2, 25 is +5, 10 is +10; 50 leaves it at the workers'
// nice. Above 50 it would need a lower nice than the workers', which only a privileged process gets (it
// then stays at the workers'). Nothing is paced: an idle core runs handshakes at full speed.
import CachetTLS
import Glibc

/// A connection on its way from a handshake thread to its worker.
/// Invariant: built by the handshake thread after its last use of `tls`, read by the worker after the
/// mailbox hands it over (the mailbox's lock orders the two); nobody else ever sees it.
final class TLSHandoff: @unchecked Sendable {
    let fd: Int32
    let listener: ListenerInfo
    let tls: TLSConnection
    let record: ConnRecord
    let acceptedAt: UInt32

    init(fd: Int32, listener: ListenerInfo, tls: TLSConnection, record: ConnRecord, acceptedAt: UInt32) {
        self.fd = fd
        self.listener = listener
        self.tls = tls
        self.record = record
        self.acceptedAt = acceptedAt
    }
}

extension Worker {
    /// Handshake threads come after the workers (Server.swift numbers them on).
    var isHandshakeThread: Bool { id >= server.settings.numThreads }

    /// The nice value step that gives this thread `ssl_handshake_share` percent of a core it shares with a
    /// worker: the kernel's weights fall by a factor of 1.25 per nice step.
    static func niceSteps(forShare share: Int) -> Int32 {
        if share >= 100 { return -20 }
        let ratio = Double(100 - share) / Double(share)
        return Int32(max(-20, min(19, (log(ratio) / log(1.25)).rounded())))
    }

    /// Run on the handshake thread itself (Linux's nice is per thread).
    func takeHandshakeShare() {
        let steps = Worker.niceSteps(forShare: server.settings.tls.handshakeShare)
        if steps == 0 { return }
        errno = 0
        let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        if errno != 0 { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, max(-20, min(19, current + steps)))
    }
}
