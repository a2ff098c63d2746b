// Runs the real memcached (Debian's 1.6.18, the compatibility oracle) for differential tests.
// A missing oracle is a test failure with a clear message, never a silent skip.
import CachetTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum MemcachedOracle {
    static let path = "/usr/bin/memcached"

    static func requireInstalled() throws {
        // Sockets to an oracle that already exited must fail with EPIPE, not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("memcached (the oracle, Debian's 1.6.18) is not installed at \(path): apt-get install memcached")
            throw CancellationError()
        }
    }

    struct Result { let code: Int32; let stdout: String; let stderr: String }

    /// Runs memcached with `args` and waits for it to exit; nil (after killing it) if it is still
    /// running after `timeout` seconds, i.e. it accepted the arguments.
    static func run(_ args: [String], timeout: Double = 5) throws -> Result? {
        try requireInstalled()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            stop(p)
            return nil
        }
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Result(code: p.terminationStatus, stdout: o, stderr: e)
    }

    /// SIGKILL: a child started by Foundation's Process on Linux inherits a signal mask that
    /// blocks SIGTERM, so terminate() would leave memcached running and waitUntilExit() hanging.
    static func stop(_ p: Process) {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// glibc prefixes getopt diagnostics with argv[0]; Cachet always says "cachet".
    static func normalise(_ stderr: String) -> String {
        stderr.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            for prefix in ["\(path): ", "memcached: "] where line.hasPrefix(prefix) {
                return "cachet: " + line.dropFirst(prefix.count)
            }
            return String(line)
        }.joined(separator: "\n")
    }

    /// A loopback TCP port nobody listens on right now.
    static func freePort() -> Int { Int(freeLoopbackPort()) }

    /// Sends `stats settings` to 127.0.0.1:port, retrying while memcached starts up.
    static func statsSettings(port: Int) -> [(String, String)]? {
        for _ in 0..<100 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if ok != 0 { close(fd); usleep(50_000); continue }
            let request = Array("stats settings\r\n".utf8)
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            var reply: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !reply.suffix(5).elementsEqual(Array("END\r\n".utf8)) {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                reply += buffer[0..<n]
            }
            close(fd)
            let text = String(decoding: reply, as: UTF8.self)
            return text.split(separator: "\r\n").compactMap { line -> (String, String)? in
                let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count >= 2, parts[0] == "STAT" else { return nil }
                return (String(parts[1]), parts.count == 3 ? String(parts[2]) : "")
            }
        }
        return nil
    }

    /// Starts memcached with `args`, reads `stats settings` from `queryPort`, stops it.
    static func statsSettings(_ args: [String], queryPort: Int) throws -> [(String, String)]? {
        try requireInstalled()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { stop(p) }
        return statsSettings(port: queryPort)
    }

    /// A self-signed certificate and key for `-Z` runs.
    static func makeCertificate() throws -> (cert: String, key: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cachet-settings-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cert = dir.appendingPathComponent("crt.pem").path, key = dir.appendingPathComponent("key.pem").path
        if FileManager.default.fileExists(atPath: cert) { return (cert, key) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                       "-days", "2", "-subj", "/CN=localhost"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return (cert, key)
    }
}
