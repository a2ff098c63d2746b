// `stats detail on|off|dump` (memcached stats_prefix.c): per key-prefix counters of get/hit/set/delete.
// A prefix is the key up to the first `-D` delimiter (':' by default); keys without one are not counted.
// As in 1.6.18 only get/gets/gat/gats, the set family and delete record: meta commands never do.
// The table mirrors memcached's so `dump` lists prefixes in the same order: 256 buckets chosen by the
// prefix's murmur3 hash, each a chain with the newest prefix first.
// Recording costs one relaxed atomic load while detail is off; when on, a mutex per record (as memcached).
import CachetSync
import CacheStore
import MemcacheProtocol
import Synchronization

final class PrefixStats: Sendable {
    struct Entry {
        var prefix: [UInt8]
        var get: UInt64 = 0, hit: UInt64 = 0, set: UInt64 = 0, del: UInt64 = 0
    }
    enum Op { case get(hit: Bool), set, delete }

    static let hashSize = 256
    /// memcached `settings.prefix_delimiter` (`-D`).
    let delimiter: UInt8
    /// memcached `settings.detail_enabled` (`-D` or `stats detail on`).
    let enabled: Atomic<Bool>
    private let table = Locked<[[Entry]]>(Array(repeating: [], count: PrefixStats.hashSize))
    private let store: CacheStore

    init(store: CacheStore, delimiter: UInt8, enabled: Bool) {
        self.store = store
        self.delimiter = delimiter
        self.enabled = Atomic(enabled)
    }

    @inline(__always) var isOn: Bool { enabled.load(ordering: .relaxed) }

    func record(_ key: UnsafeRawBufferPointer, _ op: Op) {
        guard let cut = key.firstIndex(of: delimiter) else { return }
        let prefix = UnsafeRawBufferPointer(rebasing: key[0..<cut])
        let bucket = Int(store.hash(prefix) % UInt32(PrefixStats.hashSize))
        table.withLock { t in
            var i = t[bucket].firstIndex { $0.prefix.elementsEqual(prefix) }
            if i == nil {
                t[bucket].insert(Entry(prefix: Array(prefix)), at: 0)
                i = 0
            }
            switch op {
            case .get(let hit):
                t[bucket][i!].get += 1
                if hit { t[bucket][i!].hit += 1 }
            case .set: t[bucket][i!].set += 1
            case .delete: t[bucket][i!].del += 1
            }
        }
    }

    /// memcached stats_prefix_dump: `PREFIX <p> get <n> hit <n> set <n> del <n>` lines, then `END`.
    func dump(into out: ByteBuffer) {
        table.withLock { t in
            for bucket in t {
                for e in bucket {
                    out.append("PREFIX ")
                    e.prefix.withUnsafeBytes { out.append($0) }
                    out.append(" get "); out.appendDecimal(e.get)
                    out.append(" hit "); out.appendDecimal(e.hit)
                    out.append(" set "); out.appendDecimal(e.set)
                    out.append(" del "); out.appendDecimal(e.del)
                    out.append(Reply.crlf)
                }
            }
        }
        out.append(Reply.end)
    }

    /// `stats reset` clears the table (memcached stats_prefix_clear).
    func clear() {
        table.withLock { t in for i in t.indices { t[i].removeAll() } }
    }
}
