// Owns the `-e` memory file: one file of exactly `-m` bytes, mapped shared, that holds every slab page so the
// items outlive the process (memcached restart.c restart_mmap_open). The file is locked (flock) for as long
// as the process lives, so a second server given the same file fails at start instead of sharing memory
// with the first. Without `-e` none of this exists and pages are mapped anonymously one by one
// (SlabAllocator.newPageLocked).
import Glibc

/// Invariant: `base` maps `size` bytes of `fd` (MAP_SHARED) from `open` until deinit; the allocator carves
/// pages from it in order and never unmaps a part of it.
public final class SlabMemoryFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    /// The file's size before it was opened here (0 for a new file): a size other than `size` means the file
    /// was truncated or made for another `-m`, and cannot be reused.
    public let previousSize: Int
    let fd: Int32
    let base: UnsafeMutableRawPointer

    public enum OpenError: Error, Equatable {
        /// open(2) failed (memcached: `failed to open file for mmap`).
        case open(errno: Int32)
        /// Another process holds the file's lock.
        case locked
        /// The file belongs to another user: whoever owns it can change the item memory under us.
        case foreignOwner(uid: UInt32)
        /// ftruncate: the file cannot be given `-m` bytes (memcached: `ftruncate failed`).
        case resize(errno: Int32)
        /// posix_fallocate: the file system has no room for `-m` bytes.
        case reserve(errno: Int32)
        case map(errno: Int32)
    }

    private init(path: String, size: Int, previousSize: Int, fd: Int32, base: UnsafeMutableRawPointer) {
        self.path = path; self.size = size; self.previousSize = previousSize; self.fd = fd; self.base = base
    }

    deinit {
        munmap(base, size)
        close(fd)
    }

    /// Opens (creating with mode 0700, as memcached) and locks the file, gives it `size` bytes (reserving the
    /// blocks, so a full tmpfs fails here instead of with SIGBUS on a later page fault) and maps it.
    public static func open(path: String, size: Int) -> Result<SlabMemoryFile, OpenError> {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, S_IRWXU)
        if fd < 0 { return .failure(.open(errno: errno)) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            return .failure(e == EWOULDBLOCK ? .locked : .open(errno: e))
        }
        var st = stat()
        if fstat(fd, &st) != 0 { let e = errno; close(fd); return .failure(.open(errno: e)) }
        if st.st_uid != geteuid() { close(fd); return .failure(.foreignOwner(uid: st.st_uid)) }
        let previous = Int(st.st_size)
        if previous != size && ftruncate(fd, off_t(size)) != 0 {
            let e = errno; close(fd); return .failure(.resize(errno: e))
        }
        let rc = posix_fallocate(fd, 0, off_t(size))
        if rc != 0 && rc != EOPNOTSUPP && rc != EINVAL { close(fd); return .failure(.reserve(errno: rc)) }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = errno; close(fd); return .failure(.map(errno: e))
        }
        return .success(SlabMemoryFile(path: path, size: size, previousSize: previous, fd: fd, base: p))
    }

    /// Address of page `index` (pages are `pageSize` bytes, numbered from the start of the file).
    @inline(__always) func page(_ index: Int, pageSize: Int) -> UnsafeMutableRawPointer { base + index * pageSize }

    /// The index of the page holding `p`, or nil when `p` is outside the mapping.
    @inline(__always) func pageIndex(of p: UnsafeMutableRawPointer, pageSize: Int) -> Int? {
        p >= base && p < base + size ? (p - base) / pageSize : nil
    }

    /// The address of the mapping, as the metadata records it (old chunk pointers are translated from it).
    var baseAddress: UInt64 { UInt64(UInt(bitPattern: base)) }
}
