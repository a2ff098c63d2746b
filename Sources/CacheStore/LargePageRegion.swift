// Owns `-L`'s item memory: the whole `-m` mapped at start as one anonymous region aligned to and advised for
// transparent huge pages (memcached's alloc_large_chunk on Linux), from which the allocator carves slab pages
// in order — fewer TLB misses for a large cache. Nothing of it is given back before exit.
import Glibc

/// Invariant: `base` is `size` bytes inside the mapping `mapping` (`mappingSize` bytes), from `make` until
/// deinit; nothing else unmaps any part of it.
public final class LargePageRegion: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int
    private let mapping: UnsafeMutableRawPointer
    private let mappingSize: Int
    /// The kernel's huge page size (memcached prints it with `-vv`).
    public let hugePageSize: Int

    private init(base: UnsafeMutableRawPointer, size: Int, mapping: UnsafeMutableRawPointer, mappingSize: Int,
                 hugePageSize: Int) {
        self.base = base; self.size = size; self.mapping = mapping; self.mappingSize = mappingSize
        self.hugePageSize = hugePageSize
    }

    deinit { munmap(mapping, mappingSize) }

    /// The `Hugepagesize:` line of /proc/meminfo, in bytes; nil when there is none.
    public static func hugePageSize() -> Int? {
        guard let f = fopen("/proc/meminfo", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 128)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(cString: line)
            if text.hasPrefix("Hugepagesize:") {
                let digits = text.dropFirst("Hugepagesize:".count).filter(\.isNumber)
                return Int(digits).map { $0 * 1024 }
            }
        }
        return nil
    }

    /// Maps `size` bytes aligned to the huge page size and advises MADV_HUGEPAGE; nil (with memcached's
    /// reason) when that fails — the caller then maps pages one by one, as memcached falls back to malloc.
    public static func make(size: Int) -> Result<LargePageRegion, Failure> {
        guard let huge = hugePageSize(), huge > 0 else { return .failure(.noHugePageSize) }
        let mappingSize = size + huge
        guard let m = mmap(nil, mappingSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              m != MAP_FAILED else { return .failure(.map(errno: errno)) }
        let aligned = UnsafeMutableRawPointer(bitPattern: (UInt(bitPattern: m) + UInt(huge) - 1) / UInt(huge) * UInt(huge))!
        if madvise(aligned, size, MADV_HUGEPAGE) != 0 {
            let e = errno
            munmap(m, mappingSize)
            return .failure(.advise(errno: e))
        }
        return .success(LargePageRegion(base: aligned, size: size, mapping: m, mappingSize: mappingSize, hugePageSize: huge))
    }

    public enum Failure: Error, Equatable {
        case noHugePageSize
        case map(errno: Int32)
        case advise(errno: Int32)

        /// memcached's lines for each case.
        public var message: String {
            switch self {
            case .noHugePageSize: return "Failed to get supported huge page size\n"
            case .map(let e): return "Failed to get aligned memory chunk: \(e)\n"
            case .advise(let e): return "Failed to set transparent hugepage hint: \(e)\n"
            }
        }
    }
}
