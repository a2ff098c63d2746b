// Startup steps with memcached's messages and exit codes: user switch and root check, daemonizing,
// the pid file, certificate paths, opening listeners.
import CacheStore
import CachetTLS
import Glibc

enum Startup {
    struct Failure: Error { let message: String; let code: Int32 }

    static func slabClassLine(_ c: SlabClassInfo) -> String {
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        return "slab class \(pad(String(c.id), 3)): chunk size \(pad(String(c.chunkSize), 9)) perslab \(pad(String(c.perSlab), 7))\n"
    }

    /// memcached: as root, `-u` is required (SettingsParser.checkRoot); with `-u`, switch to that user.
    static func checkUserAndRoot(_ s: Settings) -> Failure? {
        if case .exit(let code, _, let err)? = SettingsParser.checkRoot(settings: s, uid: getuid(), euid: geteuid()) {
            return Failure(message: err, code: code)
        }
        if getuid() == 0 || geteuid() == 0 {
            guard let user = s.user, !user.isEmpty else { return nil }
            guard let pw = getpwnam(user) else {
                return Failure(message: "can't find the user \(user) to switch to\n", code: 67)
            }
            if setgroups(0, nil) < 0 {
                // memcached ignores a setgroups failure when unprivileged; as root it should work.
            }
            if setgid(pw.pointee.pw_gid) < 0 || setuid(pw.pointee.pw_uid) < 0 {
                return Failure(message: "failed to assume identity of user \(user)\n", code: 64)
            }
        }
        return nil
    }

    /// memcached's daemonize(): fork, the parent exits 0, the child detaches. Like memcached, `-v` keeps
    /// stdin/stdout/stderr open (so `Exiting normally` and errors still reach whoever started it);
    /// otherwise they go to /dev/null.
    static func daemonize(keepStdio: Bool) -> String? {
        let pid = fork()
        if pid < 0 { return "failed to daemon() in order to daemonize\n" }
        if pid > 0 { _exit(0) }
        if setsid() < 0 { return "failed to daemon() in order to daemonize\n" }
        _ = chdir("/")
        if !keepStdio {
            let devnull = open("/dev/null", O_RDWR)
            if devnull >= 0 {
                dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2)
                if devnull > 2 { close(devnull) }
            }
        }
        return nil
    }

    /// `-P`: written once the listeners are open (so whoever waits for the file can connect), with or
    /// without `-d` as memcached does. Written to `<file>.tmp` and renamed, so a reader never sees a
    /// half-written pid. A failure is reported and the server keeps running (memcached's behaviour).
    static func savePidFile(_ path: String) {
        let tmp = path + ".tmp"
        guard let f = fopen(tmp, "w") else {
            writeStderr("Could not open the pid file \(tmp) for writing: \(String(cString: strerror(errno)))\n")
            return
        }
        fputs("\(getpid())\n", f)
        if fclose(f) != 0 {
            writeStderr("Could not close the pid file \(tmp): \(String(cString: strerror(errno)))\n")
            return
        }
        if rename(tmp, path) != 0 {
            writeStderr("Could not rename the pid file from \(tmp) to \(path): \(String(cString: strerror(errno)))\n")
        }
    }

    /// At exit memcached removes the pid file only when it daemonized (`-d`): a foreground process's pid
    /// file belongs to whoever started it.
    static func removePidFile(_ path: String) {
        if unlink(path) != 0 {
            writeStderr("could not remove the pid file \(path)\n")
        }
    }

    /// `p` made absolute against the working directory (unchanged when it already is, or getcwd fails).
    static func absolutePath(_ p: String) -> String {
        guard !p.hasPrefix("/") else { return p }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return p }
        let cwd = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (cwd == "/" ? "" : cwd) + "/" + p
    }

    /// A relative path that names an existing file, made absolute; anything else as typed (so an error
    /// names what the operator wrote). Files re-read after `-d` changed directory to `/` need this.
    static func absoluteIfExisting(_ p: String) -> String {
        guard !p.isEmpty, !p.hasPrefix("/"), access(p, F_OK) == 0 else { return p }
        return absolutePath(p)
    }

    /// Certificate paths given relative to the working directory would stop resolving once `-d` has
    /// changed directory to `/`, and every later reload (SIGHUP, `refresh_certs`) would fail. A relative
    /// path that names an existing file at startup is made absolute (symlinks kept, so a renewal that
    /// swaps a link target is still picked up); a missing one is left as typed so the startup error names
    /// what the operator wrote.
    static func absoluteCertificatePaths(_ t: TLSSettings) -> TLSSettings {
        var t = t
        func resolve(_ p: String?) -> String? { p.map(absoluteIfExisting) }
        t.chainCert = resolve(t.chainCert)
        t.key = resolve(t.key)
        t.caCert = resolve(t.caCert)
        return t
    }

    /// `-Z` without `-o ssl_chain_cert`/`ssl_key` fails with memcached's `Error loading … (null)` line and
    /// exit code; this one extra line, printed before memcached's, says what to add.
    static func missingCertificateHint(_ t: TLSSettings, _ e: TLSContextError) -> String? {
        switch e.kind {
        case .certificateChain where t.chainCert == nil, .key where t.key == nil, .validation where t.key == nil:
            return "cachet: -Z needs a certificate and its key: -o ssl_chain_cert=<chain.pem>,ssl_key=<key.pem>\n"
        default:
            return nil
        }
    }

    /// `-r`: raise the core-file limit to its maximum (memcached's maxcore); `-k`: mlockall, with
    /// memcached's warning when the system refuses.
    static func applyProcessLimits(_ s: Settings) -> Failure? {
        if s.maxCore {
            var rl = rlimit()
            if getrlimit(Int32(RLIMIT_CORE.rawValue), &rl) == 0 {
                var want = rlimit(rlim_cur: rlim_t.max, rlim_max: rlim_t.max)  // RLIM_INFINITY
                if setrlimit(Int32(RLIMIT_CORE.rawValue), &want) != 0 {
                    want = rlimit(rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max)
                    _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &want)
                }
                if getrlimit(Int32(RLIMIT_CORE.rawValue), &rl) != 0 || rl.rlim_cur == 0 {
                    return Failure(message: "failed to ensure corefile creation\n", code: 71)
                }
            }
        }
        if s.lockMemory && mlockall(MCL_CURRENT | MCL_FUTURE) != 0 {
            writeStderr("warning: -k invalid, mlockall() failed: \(String(cString: strerror(errno)))\n")
        }
        return nil
    }

    /// memcached sets RLIMIT_NOFILE to -c (which is why a tiny -c fails in libevent's setup).
    static func setFileLimit(_ maxConns: Int) -> Failure? {
        var rl = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) != 0 {
            return Failure(message: "failed to getrlimit number of files\n", code: 71)
        }
        rl.rlim_cur = rlim_t(maxConns)
        rl.rlim_max = max(rl.rlim_max, rlim_t(maxConns))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) != 0 {
            return Failure(message: "failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.\n", code: 71)
        }
        return nil
    }

    /// memcached's MEMCACHED_PORT_FILENAME: once every TCP and UDP socket is bound, one line per socket
    /// ("TCP INET: 11211", "UDP INET6: 11211", …, TCP first, in binding order) is appended to `<file>.lck`,
    /// which is then renamed to `<file>`, so whoever waits for the file reads the real (maybe ephemeral)
    /// ports at once. Not with `-s` (no network sockets); a file that cannot be opened is reported and the
    /// server goes on.
    static func writePortFile(tcp: [Int32], udp: [Int32], settings: Settings) {
        guard settings.socketPath == nil, let name = getenv("MEMCACHED_PORT_FILENAME").map({ String(cString: $0) })
        else { return }
        let tmp = name + ".lck"
        guard let f = fopen(tmp, "a") else {
            writeStderr("Failed to open \"\(tmp)\": \(String(cString: strerror(errno)))\n")
            return
        }
        for (kind, fds) in [("TCP", tcp), ("UDP", udp)] {
            for fd in fds {
                guard let b = SocketFactory.boundPort(fd) else { continue }
                fputs("\(kind) \(b.inet6 ? "INET6" : "INET"): \(b.port)\n", f)
            }
        }
        fclose(f)
        rename(tmp, name)
    }

    static func openListeners(server: ServerContext) -> Result<[Listener], BindFailure> {
        let s = server.settings
        if case .exit(let code, _, let err)? = ListenerSpec.validate(s) {
            return .failure(BindFailure(message: err, exitCode: code))
        }
        var out: [Listener] = []
        if let path = s.socketPath {
            let (fd, err) = SocketFactory.unix(path: path, mask: s.unixMask, backlog: s.backlog)
            if fd < 0 {
                return .failure(BindFailure(message: "failed to listen on UNIX socket: \(path): \(String(cString: strerror(err)))\n", exitCode: 71))
            }
            out.append(Listener(server: server, fd: fd, info: ListenerInfo(tls: .plaintext, address: "unix:\(path)")))
            return .success(out)
        }
        if s.port == 0 && s.inter == nil { return .success(out) }
        for spec in s.listenEntries {
            let (fds, err) = SocketFactory.tcp(host: spec.host, port: spec.port, backlog: s.backlog)
            if fds.isEmpty {
                for l in out { close(l.fd) }
                let why = err < 0 ? "Success" : String(cString: strerror(err))
                if let inter = s.inter {
                    return .failure(BindFailure(message: "failed to listen on one of interface(s) \(inter): \(why)\n", exitCode: 71))
                }
                return .failure(BindFailure(message: "failed to listen on TCP port \(s.port): \(why)\n", exitCode: 71))
            }
            if let failure = SocketFactory.markAll(fds, s.sockCookieId) {
                for l in out { close(l.fd) }
                for fd in fds { close(fd) }
                return .failure(failure)
            }
            let mode = s.tls.enabled ? spec.tls : .plaintext
            for fd in fds {
                // An ephemeral port (-1) is shown as the one the kernel picked.
                let port = spec.port == -1 ? (SocketFactory.boundPort(fd)?.port ?? 0) : spec.port
                out.append(Listener(server: server, fd: fd, info: ListenerInfo(tls: mode, address: "tcp:\(spec.host ?? "0.0.0.0"):\(port)")))
            }
        }
        return .success(out)
    }
}
