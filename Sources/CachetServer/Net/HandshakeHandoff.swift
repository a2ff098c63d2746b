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
import CachetTLS

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
