// What `-o ssl_auto_reload` watches: the identity (device, inode), size and modification time of every
// file a context is built from — certificate chain, key, CA bundle, ticket-key file. A rename over the
// file, an in-place rewrite and a touch all change it; a file that went missing is a state of its own.
#if canImport(Glibc)
import Glibc
#endif

struct TLSFileState: Equatable, Sendable {
    struct File: Equatable, Sendable {
        var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1, mtimeSeconds: Int = 0, mtimeNanos: Int = 0
    }
    var files: [File] = []

    /// The current state of the files `settings` names (nil paths are skipped).
    static func of(_ settings: TLSSettings) -> TLSFileState {
        let paths = [settings.chainCert, settings.key, settings.caCert, settings.ticketKeyFile,
                     settings.altChainCert, settings.altKey]
        return TLSFileState(files: paths.compactMap { $0 }.map { path in
            var st = stat()
            guard stat(path, &st) == 0 else { return File() }   // missing/unreadable: size -1
            return File(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                        mtimeSeconds: Int(st.st_mtim.tv_sec), mtimeNanos: Int(st.st_mtim.tv_nsec))
        })
    }
}
