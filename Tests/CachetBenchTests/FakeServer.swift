// A tiny blocking memcached stand-in for tests: one thread, one client at a time, `set` and `get`
// only. With `corruptGets` it flips one byte of every value it returns — what --verify must catch;
// with `ignoreGets` it never answers a GET — what the stall timeout must catch.
import Glibc
import Synchronization

final class FakeServer: @unchecked Sendable {
    // Invariant: `store` is touched only by the server thread; `listenFd`/`port` are set before start.
    let listenFd: Int32
    let port: UInt16
    let corruptGets: Bool
    let ignoreGets: Bool
    var store: [String: [UInt8]] = [:]
    var thread = pthread_t()

    init(corruptGets: Bool = false, ignoreGets: Bool = false) {
        self.corruptGets = corruptGets
        self.ignoreGets = ignoreGets
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        listenFd = fd
    }

    func start() {
        let arg = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let s = Unmanaged<FakeServer>.fromOpaque(raw!).takeRetainedValue()
            s.serve()
            return nil
        }, arg)
    }

    /// Stops accepting; the serving thread ends when its listening socket is shut down.
    func stop() {
        shutdown(listenFd, Int32(SHUT_RDWR))
        pthread_join(thread, nil)
        close(listenFd)
    }

    func serve() {
        while true {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 { return }
            handle(fd)
            close(fd)
        }
    }

    func handle(_ fd: Int32) {
        var buf: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func send(_ bytes: [UInt8]) {
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                off += n
            }
        }
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return }
            buf += chunk[0..<n]
            while let nl = buf.firstIndex(of: 10) {
                let line = String(decoding: buf[0..<nl], as: UTF8.self).trimmingCharacters()
                let parts = line.split(separator: " ").map(String.init)
                guard let cmd = parts.first else { buf.removeFirst(nl + 1); continue }
                if cmd == "set", parts.count >= 5, let len = Int(parts[4]) {
                    guard buf.count >= nl + 1 + len + 2 else { break }   // wait for the data block
                    store[parts[1]] = Array(buf[(nl + 1)..<(nl + 1 + len)])
                    buf.removeFirst(nl + 1 + len + 2)
                    send(Array("STORED\r\n".utf8))
                } else if cmd == "get" {
                    buf.removeFirst(nl + 1)
                    if ignoreGets { continue }
                    var reply: [UInt8] = []
                    for key in parts.dropFirst() {
                        guard var v = store[key] else { continue }
                        if corruptGets && !v.isEmpty { v[v.count - 1] ^= 0x01 }
                        reply += Array("VALUE \(key) 0 \(v.count)\r\n".utf8) + v + [13, 10]
                    }
                    send(reply + Array("END\r\n".utf8))
                } else {
                    buf.removeFirst(nl + 1)
                    send(Array("ERROR\r\n".utf8))
                }
            }
        }
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\r" || l == " " { s.removeLast() }
        return String(s)
    }
}
