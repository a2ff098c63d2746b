// `watch` (memcached logger.c): log lines for live watchers. Producers (any worker, the eviction path,
// the listener) format a line only when some watcher wants its type — the check is one relaxed atomic
// load, so an unwatched server pays nothing else — and append it to each interested watcher's bounded
// buffer under one mutex, waking the watcher's connection on its own worker (libevent's event_active is
// thread-safe with evthread_use_pthreads). A watcher that cannot keep up loses lines: its buffer never
// grows past `bufferLimit`; the count lost is reported as memcached's `skipped=<n>` line before the next
// line that fits.
import CacheStore
import CLibevent
import Glibc
import Synchronization

struct WatchTypes: OptionSet, Sendable {
    let rawValue: Int
    static let fetchers = WatchTypes(rawValue: 1)
    static let mutations = WatchTypes(rawValue: 2)
    static let evictions = WatchTypes(rawValue: 4)
    static let connevents = WatchTypes(rawValue: 8)
    /// Types memcached accepts that Cachet never produces lines for (rawcmds, sysevents, proxy*).
    static let silent = WatchTypes(rawValue: 16)

    /// memcached's process_watch_command names; nil for an unknown word (→ `ERROR`).
    init?(word: UnsafeRawBufferPointer) {
        switch String(decoding: word, as: UTF8.self) {
        case "fetchers": self = .fetchers
        case "mutations": self = .mutations
        case "evictions": self = .evictions
        case "connevents": self = .connevents
        case "rawcmds", "sysevents", "proxyreqs", "proxyevents", "proxyuser": self = .silent
        default: return nil
        }
    }
    init(rawValue: Int) { self.rawValue = rawValue }
}

/// One watching connection's queue. Invariant: `pending` and `skipped` are touched only under
/// `WatchLog.watchers`' lock; `wake` is freed by the connection only after `WatchLog.remove`.
final class Watcher: @unchecked Sendable {
    let types: WatchTypes
    let wake: OpaquePointer
    var pending: [UInt8] = []
    var skipped: UInt64 = 0

    init(types: WatchTypes, wake: OpaquePointer) {
        self.types = types
        self.wake = wake
    }
}

final class WatchLog: Sendable {
    /// memcached's WATCHER_LIMIT.
    static let maxWatchers = 20
    /// Per-watcher buffer (memcached's watcher_logbuf_size default, 256 KB).
    static let bufferLimit = 256 * 1024

    /// Union of the types wanted by current watchers.
    let mask = Atomic<Int>(0)
    let sent = Atomic<UInt64>(0)
    let skippedTotal = Atomic<UInt64>(0)
    let count = Atomic<Int>(0)
    private let gid = Atomic<UInt64>(0)
    private let watchers = Mutex<[Watcher]>([])
    /// Lets the store report evictions only while someone watches them.
    private let storeEvents: StoreEvents

    init(storeEvents: StoreEvents) { self.storeEvents = storeEvents }

    @inline(__always) func wants(_ t: WatchTypes) -> Bool { mask.load(ordering: .relaxed) & t.rawValue != 0 }

    /// False when memcached's watcher limit is reached.
    func add(_ w: Watcher) -> Bool {
        watchers.withLock { list in
            if list.count >= WatchLog.maxWatchers { return false }
            list.append(w)
            recomputeMask(list)
            return true
        }
    }

    func remove(_ w: Watcher) {
        watchers.withLock { list in
            list.removeAll { $0 === w }
            recomputeMask(list)
        }
    }

    private func recomputeMask(_ list: [Watcher]) {
        var m = 0
        for w in list { m |= w.types.rawValue }
        mask.store(m, ordering: .relaxed)
        count.store(list.count, ordering: .relaxed)
        storeEvents.evictionsWatched.store(m & WatchTypes.evictions.rawValue != 0, ordering: .relaxed)
    }

    /// Delivers `ts=<s>.<us> gid=<n> <body>\n` to every watcher of type `t` (memcached's "%lld.%d": the
    /// microseconds are not zero-padded).
    func emit(_ t: WatchTypes, _ body: String) {
        var tv = timeval()
        gettimeofday(&tv, nil)
        watchers.withLock { list in
            let id = gid.add(1, ordering: .relaxed).newValue
            let line = Array("ts=\(tv.tv_sec).\(tv.tv_usec) gid=\(id) \(body)\n".utf8)
            for w in list where w.types.contains(t) {
                let wasEmpty = w.pending.isEmpty
                var notice: [UInt8] = []
                if w.skipped > 0 { notice = Array("skipped=\(w.skipped)\n".utf8) }
                if w.pending.count + notice.count + line.count > WatchLog.bufferLimit {
                    w.skipped += 1
                    skippedTotal.add(1, ordering: .relaxed)
                    continue
                }
                w.pending.append(contentsOf: notice)
                w.skipped = 0
                w.pending.append(contentsOf: line)
                sent.add(1, ordering: .relaxed)
                if wasEmpty { event_active(w.wake, EV_READ, 0) }
            }
        }
    }

    /// Moves `w`'s queued lines to the caller (its connection's thread).
    func take(_ w: Watcher, _ body: (UnsafeRawBufferPointer) -> Void) {
        watchers.withLock { _ in
            if w.pending.isEmpty { return }
            w.pending.withUnsafeBytes { body($0) }
            w.pending.removeAll(keepingCapacity: true)
        }
    }
}
