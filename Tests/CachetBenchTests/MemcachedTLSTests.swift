// The generator's TLS paths against the real memcached (Debian's, when installed): verified load over
// TLS 1.2 and 1.3, and resumed handshakes. Checks correctness only, never timings.
import CachetTestSupport
import Glibc
import Testing
@testable import CachetBenchCore

let memcachedPath = "/usr/bin/memcached"

/// Spawns `args` (argv[0] a path) with stdout/stderr to /dev/null; returns the pid.
func spawn(_ args: [String]) -> pid_t {
    var pid: pid_t = 0
    // The test runner's threads block signals; a spawned child would inherit that mask and ignore SIGTERM.
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let cargs = args.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) }; posix_spawn_file_actions_destroy(&actions); posix_spawnattr_destroy(&attr) }
    let rc = posix_spawn(&pid, args[0], &actions, &attr, cargs, environ)
    return rc == 0 ? pid : -1
}

func waitExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return status
}

func freePort() -> UInt16 { freeLoopbackPort() }

func portAnswers(_ port: UInt16) -> Bool {
    guard let addr = loopbackAddress(host: "127.0.0.1", port: port) else { return false }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = addr
    return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
}

@Suite("TLS against memcached", .serialized, .enabled(if: access(memcachedPath, X_OK) == 0))
final class MemcachedTLSTests {
    let dir: String
    let port = freePort()
    var pid: pid_t = -1

    init() throws {
        var template = Array("/tmp/cachet-bench-test-XXXXXX".utf8CString)
        dir = String(cString: mkdtemp(&template)!)
        let gen = spawn(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                         "-subj", "/CN=localhost", "-keyout", "\(dir)/key.pem", "-out", "\(dir)/cert.pem"])
        try #require(gen > 0 && waitExit(gen) == 0)
        var args = [memcachedPath, "-U", "0", "-p", "\(port)", "-l", "127.0.0.1", "-m", "64", "-Z",
                    "-o", "ssl_chain_cert=\(dir)/cert.pem,ssl_key=\(dir)/key.pem"]
        if getuid() == 0 { args += ["-u", "root"] }
        pid = spawn(args)
        try #require(pid > 0)
        for _ in 0..<200 where !portAnswers(port) { usleep(20_000) }
    }

    deinit {
        if pid > 0 { kill(pid, SIGTERM); _ = waitExit(pid) }
        for f in ["key.pem", "cert.pem"] { unlink("\(dir)/\(f)") }
        rmdir(dir)
    }

    func options(_ version: String) -> BenchOptions {
        var o = BenchOptions()
        o.port = port
        o.tls = true
        o.tlsVersion = version
        o.quiet = true
        return o
    }

    @Test(arguments: ["1.2", "1.3"])
    func verifiedLoadOverTLS(version: String) {
        var o = options(version)
        // pipeline 1: memcached 1.6.18 stalls on pipelined TLS requests that end inside a partly read
        // record (it does not check SSL_pending); the bench's stall timeout reports that, the test avoids it.
        o.threads = 2; o.conns = 3; o.pipeline = 1; o.keys = 500; o.prefill = true; o.verify = true
        o.multiget = 3; o.dataSizeMin = 1; o.dataSizeMax = 40_000; o.requests = 2000; o.serverPid = pid
        let r = runBenchmark(o)
        #expect(r.failure == nil)
        #expect(r.counters.requests == 2000)
        #expect(r.counters.verifyErrors == 0)
        #expect(r.counters.hits > 0 && r.counters.verified == r.counters.hits)
        #expect(r.serverCPUSeconds != nil)
    }

    @Test(arguments: ["1.2", "1.3"])
    func resumedHandshakes(version: String) {
        var o = options(version)
        o.newConnPerRequest = true; o.resume = true; o.conns = 2; o.requests = 20
        let r = runBenchmark(o)
        #expect(r.failure == nil)
        #expect(r.counters.handshakes == 20)
        #expect(r.counters.resumed >= 18)   // all but each connection's first
    }
}
