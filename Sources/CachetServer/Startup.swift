// Startup steps with memcached's messages and exit codes: user switch and root check, daemonizing
// with a pidfile, opening listeners.
import CacheStore
import CachetTLS
import Glibc

enum Startup {
    struct Failure { let message: String; let code: Int32 }

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

    /// memcached's daemonize(): fork, the parent exits 0, the child detaches and writes the pidfile.
    static func daemonize(pidFile: String?) -> String? {
        let pid = fork()
        if pid < 0 { return "failed to daemon() in order to daemonize\n" }
        if pid > 0 { _exit(0) }
        if setsid() < 0 { return "failed to daemon() in order to daemonize\n" }
        _ = chdir("/")
        let devnull = open("/dev/null", O_RDWR)
        if devnull >= 0 {
            dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2)
            if devnull > 2 { close(devnull) }
        }
        if let path = pidFile {
            if let f = fopen(path, "w") {
                fputs("\(getpid())\n", f)
                fclose(f)
            }
        }
        return nil
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
            out.append(Listener(server: server, fd: fd, info: ListenerInfo(tls: nil, address: "unix:\(path)")))
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
            let verify: ListenerVerify?
            if !s.tls.enabled {
                verify = nil
            } else {
                switch spec.tls {
                case .inherit: verify = .inherit
                case .none: verify = nil
                case .basic: verify = ListenerVerify.none
                case .mutual: verify = .require
                }
            }
            for fd in fds {
                out.append(Listener(server: server, fd: fd, info: ListenerInfo(tls: verify, address: "tcp:\(spec.host ?? "0.0.0.0"):\(spec.port)")))
            }
        }
        return .success(out)
    }
}
