// Helpers the Swift test targets share (one copy, not one per target).
import Glibc

/// A loopback TCP port nobody listens on right now (the kernel picks it for a socket bound to port 0).
public func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    precondition(ok, "freeLoopbackPort: cannot bind a loopback socket")
    return UInt16(bigEndian: addr.sin_port)
}
