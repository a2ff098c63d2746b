// Owns `-e <memory file>` at the process level (memcached's restartable cache): at start, open and lock the
// file, read and consume its metadata (`<file>.meta`), and decide warm (put the items back, continue the
// clock) or cold (say why, in memcached's `[restart]` wording where it has one); at a graceful stop
// (SIGUSR1, `shutdown graceful`) write the metadata — to a temporary file, fsync'd, then renamed, so a
// crash or a full disk mid-write leaves no metadata and the next start is cold, never half-read.
// File format and the rules for a cold start: docs/RESTART.md. The store's part is CacheStore/ItemRestore.swift.
import CacheStore
import Glibc

enum WarmRestart {
    struct Started {
        let store: CacheStore
        let clock: StoreClock
        /// Items put back (0 on a cold start).
        let restored: Int
    }

    static func metadataPath(_ memoryFile: String) -> String { memoryFile + ".meta" }

    /// Opens the memory file and builds the store on it, warm when the metadata allows it.
    static func start(settings: Settings, now: Int) -> Result<Started, Startup.Failure> {
        guard let given = settings.memoryFile else { preconditionFailure("WarmRestart.start without -e") }
        // Absolute, so the metadata is written next to the file even after `-d` changed directory to `/`.
        let path = Startup.absolutePath(given)
        let config = settings.storeConfig
        let file: SlabMemoryFile
        switch SlabMemoryFile.open(path: path, size: config.memoryLimit) {
        case .success(let f): file = f
        case .failure(let e): return .failure(openFailure(e, path: path, size: config.memoryLimit))
        }
        let metaPath = metadataPath(path)
        unlink(metaPath + ".tmp")   // left by a stop that died while writing: never read
        let cold = { (why: [String]) -> Result<Started, Startup.Failure> in
            for line in why { writeStderr(line + "\n") }
            let clock = StoreClock(now: now)
            let store = CacheStore(config: config, clock: clock, memoryFile: file)
            guard store.preallocatePages() else {
                return .failure(Startup.Failure(message: "Error while preallocating slab memory!\n"
                    + "If using -L or other prealloc options, max memory must be at least \(store.largestSlabClass) megabytes.\n",
                    code: 1))
            }
            return .success(Started(store: store, clock: clock, restored: 0))
        }
        guard let bytes = readFile(metaPath) else {
            return cold(["[restart] no metadata save file, starting with a clean cache"])
        }
        // Consumed: from here on the file's items change, so this metadata must never be read again (a
        // server killed later leaves none, and its next start is cold). One that cannot be removed would be
        // read again by every later start: refuse to run instead.
        if unlink(metaPath) != 0 && errno != ENOENT {
            return .failure(Startup.Failure(message: "cachet: -e \(path): cannot remove \(metaPath): \(String(cString: strerror(errno)))\n"
                + "cachet: the memory file's directory must be writable by the user cachet runs as (-u)\n", code: 71))
        }
        let failed = "[restart] failed to validate metadata, starting with a clean cache"
        let meta: RestartMetadata
        switch RestartMetadata.decode(bytes) {
        case .success(let m): meta = m
        case .failure(let e): return cold(["[restart] corrupt metadata file: \(e.text)", failed])
        }
        if let (name, old) = meta.incompatibility(with: RestartSettings(config), producer: cachetVersion) {
            return cold(["[restart] restart incompatible due to setting for [\(name)] [old value: \(old)]", failed])
        }
        if file.previousSize != Int(meta.settings.maxBytes) {
            return cold(["[restart] memory file is \(file.previousSize) bytes, its metadata describes \(meta.settings.maxBytes): truncated or replaced", failed])
        }
        guard meta.processStarted <= Int64(now) else {
            return cold(["[restart] metadata starts in the future (\(meta.processStarted) > \(now)): clock went back", failed])
        }
        let clock = StoreClock(processStarted: Int(meta.processStarted), now: now)
        let store = CacheStore(config: config, clock: clock, memoryFile: file)
        guard let report = store.restore(from: meta) else {
            return cold(["[restart] page table does not fit this store", failed])
        }
        if report.badPages > 0 {
            writeStderr("[restart] \(report.badPages) slab pages failed their checksum: their items were dropped\n")
        }
        writeStderr("[restart] restored \(report.restored) items (\(report.expired) expired while stopped, "
            + "\(report.invalid) failed checks) of \(meta.itemCount), down for \(max(0, Int64(now) - meta.stopTime)) s\n")
        return .success(Started(store: store, clock: clock, restored: report.restored))
    }

    /// memcached's texts where it has one (it aborts after them; Cachet exits 71 with a hint instead).
    static func openFailure(_ e: SlabMemoryFile.OpenError, path: String, size: Int) -> Startup.Failure {
        func err(_ n: Int32) -> String { String(cString: strerror(n)) }
        switch e {
        case .open(let n):
            return Startup.Failure(message: "failed to open file for mmap: \(err(n))\n"
                + "cachet: -e \(path): the memory file's directory must exist and the file must be readable and writable by the user cachet runs as (-u)\n",
                code: 71)
        case .locked:
            return Startup.Failure(message: "cachet: -e \(path): the memory file is locked by another process\n"
                + "cachet: stop the other server first (SIGUSR1 to keep its items), or give each server its own memory file\n",
                code: 71)
        case .foreignOwner(let uid):
            return Startup.Failure(message: "cachet: -e \(path): the memory file belongs to uid \(uid), not to the user cachet runs as (uid \(geteuid()))\n"
                + "cachet: whoever owns it can change the cache's memory: chown it to that user, or remove it\n",
                code: 71)
        case .resize(let n):
            return Startup.Failure(message: "ftruncate failed: \(err(n))\n"
                + "cachet: -e \(path): the file system must have room for the whole -m\n", code: 71)
        case .reserve(let n):
            return Startup.Failure(message: "cachet: -e \(path): cannot reserve \(size) bytes for the memory file: \(err(n))\n"
                + "cachet: the file system must have room for the whole -m (tmpfs: mount it with a larger size=)\n", code: 71)
        case .map(let n):
            return Startup.Failure(message: "failed to mmap, aborting: \(err(n))\n", code: 71)
        }
    }


    /// At a graceful stop, after the workers are stopped: records the metadata. Failures are logged and the
    /// server still exits 0; the next start is then cold.
    static func save(store: CacheStore, verbose: Bool) {
        guard let file = store.memoryFilePath,
              let meta = store.restartSnapshot(producer: cachetVersion, stopTime: Int(time(nil))) else { return }
        let path = metadataPath(file)
        if let failure = writeAtomically(meta.encode(), to: path) {
            writeStderr("[restart] failed to save metadata: \(failure); the next start will be cold\n")
        } else if verbose {
            writeStderr("[restart] saved metadata for \(meta.itemCount) items in \(meta.pagesUsed) pages\n")
        }
    }

    /// `<path>.tmp` written, fsync'd, renamed over `path`, directory fsync'd. nil on success, else the reason
    /// (the temporary file is removed).
    static func writeAtomically(_ bytes: [UInt8], to path: String) -> String? {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR)
        if fd < 0 { return "\(tmp): \(String(cString: strerror(errno)))" }
        if let e = writeAll(fd, bytes) ?? (fsync(fd) == 0 ? nil : errno) {
            close(fd)
            unlink(tmp)
            return "\(tmp): \(String(cString: strerror(e)))"
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            return "\(path): \(String(cString: strerror(e)))"
        }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return nil
    }

    /// nil when every byte was written, else errno.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { buf -> Int32? in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                off += n
            }
            return nil
        }
    }

    /// The whole file, or nil when it cannot be opened (missing) or read.
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
            if out.count > 1 << 30 { return nil }
        }
    }
}
