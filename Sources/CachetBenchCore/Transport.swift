// One client socket: non-blocking TCP connect (TCP_NODELAY) and byte I/O that is either plain
// read/write or OpenSSL over the same fd. Results are the four things an event loop needs to know.

import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

public enum IOResult: Equatable {
    case bytes(Int)
    case wouldBlock
    case closed
    case failed(String)
}

public enum HandshakeResult: Equatable {
    case done, wouldBlock, failed(String)
}

/// Resolves host (numeric IPv4, or "localhost") into a sockaddr_in.
public func loopbackAddress(host: String, port: UInt16) -> sockaddr_in? {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    let h = host == "localhost" ? "127.0.0.1" : host
    guard inet_pton(AF_INET, h, &addr.sin_addr) == 1 else { return nil }
    return addr
}

/// Starts a non-blocking connect; returns the fd (connect may still be in progress) or an error text.
public func startConnect(_ addr: sockaddr_in) -> Result<Int32, OptionError> {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(OptionError("socket: \(String(cString: strerror(errno)))")) }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    var a = addr
    let rc = withUnsafePointer(to: &a) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 && errno != EINPROGRESS {
        let msg = String(cString: strerror(errno))
        close(fd)
        return .failure(OptionError("connect: \(msg)"))
    }
    return .success(fd)
}

/// 0 when the pending connect on fd succeeded, else the errno.
public func connectError(_ fd: Int32) -> Int32 {
    var err: Int32 = 0
    var len = socklen_t(MemoryLayout<Int32>.size)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return errno }
    return err
}

@inline(__always)
public func plainRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
    let r = read(fd, p, n)
    if r > 0 { return .bytes(r) }
    if r == 0 { return .closed }
    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .wouldBlock }
    if errno == ECONNRESET { return .closed }
    return .failed("read: \(String(cString: strerror(errno)))")
}

@inline(__always)
public func plainWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> IOResult {
    let r = send(fd, p, n, Int32(MSG_NOSIGNAL))
    if r >= 0 { return .bytes(r) }
    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .wouldBlock }
    if errno == EPIPE || errno == ECONNRESET { return .closed }
    return .failed("write: \(String(cString: strerror(errno)))")
}

@inline(__always)
func sslResult(_ ssl: OpaquePointer, _ r: Int32, _ what: String) -> IOResult {
    if r > 0 { return .bytes(Int(r)) }
    let e = SSL_get_error(ssl, r)
    switch e {
    case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
    case SSL_ERROR_ZERO_RETURN: return .closed
    case SSL_ERROR_SYSCALL:
        let q = opensslErrors()
        return q == "(no OpenSSL error)" ? .closed : .failed("\(what): \(q)")
    default: return .failed("\(what): SSL error \(e): \(opensslErrors())")
    }
}

@inline(__always)
public func tlsRead(_ ssl: OpaquePointer, _ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
    sslResult(ssl, SSL_read(ssl, p, Int32(min(n, Int(Int32.max)))), "SSL_read")
}

@inline(__always)
public func tlsWrite(_ ssl: OpaquePointer, _ p: UnsafeRawPointer, _ n: Int) -> IOResult {
    sslResult(ssl, SSL_write(ssl, p, Int32(min(n, Int(Int32.max)))), "SSL_write")
}

public func tlsHandshake(_ ssl: OpaquePointer) -> HandshakeResult {
    let r = SSL_do_handshake(ssl)
    if r == 1 { return .done }
    let e = SSL_get_error(ssl, r)
    if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return .wouldBlock }
    return .failed("TLS handshake failed (SSL error \(e)): \(opensslErrors())")
}
