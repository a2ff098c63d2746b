// systemd's readiness protocol (`Type=notify`), written directly: when systemd starts a service it puts the
// path of a unix datagram socket in $NOTIFY_SOCKET (a leading '@' means the abstract namespace), and the
// service sends newline-separated KEY=VALUE assignments to it. Cachet sends READY=1 once every listener is
// open (so `systemctl start` returns when the cache accepts connections) and STOPPING=1 when it begins to
// exit. Without $NOTIFY_SOCKET nothing is sent; a failed send is not an error (the service manager may
// have gone away), exactly as libsystemd's sd_notify() treats it.
import CLibevent
import Glibc

enum SystemdNotify {
    /// Sends `state` to $NOTIFY_SOCKET; returns false when there is no socket or the send failed.
    @discardableResult
    static func send(_ state: String) -> Bool {
        guard let env = getenv("NOTIFY_SOCKET") else { return false }
        let path = Array(String(cString: env).utf8)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.count >= 2, path.count < capacity, path[0] == UInt8(ascii: "/") || path[0] == UInt8(ascii: "@")
        else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.enumerated() { raw[i] = b }
            if path[0] == UInt8(ascii: "@") { raw[0] = 0 }  // abstract socket: no terminating NUL counts
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path[0] == UInt8(ascii: "@") ? 0 : 1))
        var message = Array(state.utf8)
        let sent = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                sendto(fd, &message, message.count, Int32(MSG_NOSIGNAL), sa, len)
            }
        }
        return sent == message.count
    }

    /// READY=1 with the main PID (after `-d` the sender is the daemon, not the process systemd started)
    /// and a one-line status naming the listeners.
    static func ready(listeners: [String]) {
        let status = listeners.isEmpty ? "no listeners" : "accepting connections on " + listeners.joined(separator: ", ")
        send("READY=1\nMAINPID=\(getpid())\nSTATUS=\(status)\n")
    }

    static func stopping() {
        send("STOPPING=1\n")
    }
}
