// Test certificates, generated once per test process with the `openssl` CLI into a temp dir
// (never committed), and a tiny shell runner (no Foundation).
import Glibc

/// Runs `/bin/sh -c command`; returns the exit status (or 128+signal).
@discardableResult
func sh(_ command: String) -> Int32 {
    var pid: pid_t = 0
    let args = ["/bin/sh", "-c", command]
    var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    guard posix_spawn(&pid, "/bin/sh", nil, nil, &argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let sig = status & 0x7f
    return sig == 0 ? (status >> 8) & 0xff : 128 + sig
}

func readFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Single-quote for /bin/sh.
func q(_ s: String) -> String { "'" + s.replacingAll("'", with: "'\\''") + "'" }

extension String {
    func replacingAll(_ a: Character, with b: String) -> String {
        var r = ""
        for c in self { if c == a { r += b } else { r.append(c) } }
        return r
    }
}

final class Fixtures: Sendable {
    let dir: String
    var caCert: String { dir + "/ca.pem" }
    var serverCert: String { dir + "/server.pem" }      // CN=server1, OU=first, signed by CA
    var serverKey: String { dir + "/server.key" }
    var server2Cert: String { dir + "/server2.pem" }    // CN=server2, OU=second, other key
    var server2Key: String { dir + "/server2.key" }
    var clientCert: String { dir + "/client.pem" }      // CN=client1, signed by CA
    var clientKey: String { dir + "/client.key" }
    var otherCACert: String { dir + "/otherca.pem" }    // self-signed, did not sign anything here
    var garbageKey: String { dir + "/garbage.key" }

    init() {
        var template = Array("/tmp/cachet-tls-test-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        dir = String(cString: p!)
        let d = q(dir)
        let script = """
        set -e; cd \(d)
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj '/CN=Cachet Test CA'
        openssl req -x509 -newkey rsa:2048 -nodes -keyout otherca.key -out otherca.pem -days 30 -subj '/CN=Other CA'
        for n in server:/CN=server1/OU=first server2:/CN=server2/OU=second client:/CN=client1; do
          f=${n%%:*}; subj=${n#*:}
          openssl req -newkey rsa:2048 -nodes -keyout $f.key -out $f.csr -subj "$subj"
          openssl x509 -req -in $f.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $f.pem -days 30
        done
        printf 'this is not a key\\n' > garbage.key
        """
        let rc = sh("( \(script) ) >\(d)/gen.log 2>&1")
        precondition(rc == 0, "certificate generation failed: \(readFile(dir + "/gen.log"))")
    }

    /// A scratch file path in the fixture dir, unique per name.
    func path(_ name: String) -> String { dir + "/" + name }

    func copy(_ from: String, to: String) {
        precondition(sh("cp \(q(from)) \(q(to))") == 0)
    }
}

/// Generated once per process; removed at exit.
let fixtures: Fixtures = {
    let f = Fixtures()
    atexit {
        if let d = fixturesDirForCleanup.withLock({ $0 }) { sh("rm -rf \(q(d))") }
    }
    fixturesDirForCleanup.withLock { $0 = f.dir }
    return f
}()

import Synchronization
let fixturesDirForCleanup = Mutex<String?>(nil)
