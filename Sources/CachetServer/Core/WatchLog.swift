// `watch` (memcached logger.c): log lines for live watchers. Producers (any worker, the eviction path,
// the listener) format a line only when some watcher wants its type — the check is one relaxed atomic
// load, so an unwatched server pays nothing else — and append it to each interested watcher's bounded
// buffer under one mutex. A line that makes a watcher's queue non-empty posts a wake-up to the watcher's own
// worker (its mailbox: worker event bases are lock-free, so no other thread may touch their events), and that
// worker passes the queue on to the socket. A watcher that cannot keep up loses lines: its buffer never
// grows past `bufferLimit`; the count lost is reported as memcached's `skipped=<n>` line before the next
// line that fits.
import CachetSync
import CacheStore
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

/// Who is told that a watcher's queue went from empty to non-empty: its session's transport (a worker,
/// which drives the connection on its own thread — and only if that connection still owns the watcher,
/// as it may have closed meanwhile). Called from whichever thread logged the line.
protocol WatcherWaking: AnyObject, Sendable {
    func watcherHasLines(_ w: Watcher)
}

/// One watching session's queue. Invariant: `pending` and `skipped` are touched only under
/// `WatchLog.watchers`' lock; `cfd` and `waker` say which session to wake and are never changed.
final class Watcher: @unchecked Sendable {
    let types: WatchTypes
    let cfd: Int32
    let waker: any WatcherWaking
    var pending: [UInt8] = []
    var skipped: UInt64 = 0

    init(types: WatchTypes, cfd: Int32, waker: any WatcherWaking) {
        self.types = types
        self.cfd = cfd
        self.waker = waker
    }
}

final class WatchLog: Sendable {
    /// memcached's WATCHER_LIMIT.
    static let maxWatchers = 20
    /// Per-watcher buffer in bytes: `-o watcher_logbuf_size` (KB; memcached's default 256 KB).
    let bufferLimit: Int

    /// Union of the types wanted by current watchers.
    let mask = Atomic<Int>(0)
    let sent = Atomic<UInt64>(0)
    let skippedTotal = Atomic<UInt64>(0)
    let count = Atomic<Int>(0)
    private let gid = Atomic<UInt64>(0)
    private let watchers = Locked<[Watcher]>([])
    /// Lets the store report evictions only while someone watches them.
    private let storeEvents: StoreEvents

    init(storeEvents: StoreEvents, bufferLimit: Int = 256 * 1024) {
        self.storeEvents = storeEvents
        self.bufferLimit = bufferLimit
    }

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

    /// Logs `ts=<s>.<us> gid=<n> <body>\n` for every watcher of type `t` (memcached's "%lld.%d": the
    /// microseconds are not zero-padded). On a worker thread the line joins the worker's batch, published
    /// when its event is done (`publish`); elsewhere it is delivered at once.
    func emit(_ t: WatchTypes, _ body: String) {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var head = "ts=\(tv.tv_sec).\(tv.tv_usec) gid="
        var tail = " " + body + "\n"
        head.withUTF8 { head in
            tail.withUTF8 { tail in
                if let batch = WatchBatch.current {
                    batch.add(t, head: head, tail: tail)
                } else {
                    let line = WatchBatch()
                    line.add(t, head: head, tail: tail)
                    publish(line)
                }
            }
        }
    }

    /// Delivers a batch of lines to the watchers that want them, giving out gids in order, and empties it.
    /// The lock covers only the gids and the appends; wake-ups are posted after it.
    func publish(_ batch: WatchBatch) {
        if batch.isEmpty { return }
        var toWake: [Watcher] = []
        batch.text.withUnsafeBufferPointer { text in
            watchers.withLock { list in
                for line in batch.lines {
                    let id = gid.add(1, ordering: .relaxed).newValue
                    let head = UnsafeBufferPointer(rebasing: text[line.start..<line.gidAt])
                    let tail = UnsafeBufferPointer(rebasing: text[line.gidAt..<line.end])
                    let lineLength = head.count + WatchLog.decimalLength(id) + tail.count
                    for w in list where w.types.contains(line.type) {
                        let wasEmpty = w.pending.isEmpty
                        let noticeLength = w.skipped > 0 ? 9 + WatchLog.decimalLength(w.skipped) : 0
                        if w.pending.count + noticeLength + lineLength > bufferLimit {
                            w.skipped += 1
                            skippedTotal.add(1, ordering: .relaxed)
                            continue
                        }
                        if w.skipped > 0 {
                            w.pending.append(contentsOf: "skipped=".utf8)
                            WatchLog.appendDecimal(w.skipped, to: &w.pending)
                            w.pending.append(0x0A)
                            w.skipped = 0
                        }
                        w.pending.append(contentsOf: head)
                        WatchLog.appendDecimal(id, to: &w.pending)
                        w.pending.append(contentsOf: tail)
                        sent.add(1, ordering: .relaxed)
                        if wasEmpty { toWake.append(w) }
                    }
                }
            }
        }
        batch.removeAll()
        for w in toWake { w.waker.watcherHasLines(w) }
    }

    /// Hands `w`'s queued lines to its connection's thread by swapping buffers: `spare` must be empty and
    /// comes back holding the lines (the watcher keeps `spare`'s capacity for the next ones), so the lock
    /// is held for a swap, never for a copy.
    func take(_ w: Watcher, into spare: inout [UInt8]) {
        watchers.withLock { _ in
            if !w.pending.isEmpty { swap(&w.pending, &spare) }
        }
    }

    private static func decimalLength(_ v: UInt64) -> Int {
        var n = 1, v = v
        while v >= 10 { v /= 10; n += 1 }
        return n
    }

    private static func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        let n = decimalLength(v)
        var v = v
        let start = out.count
        out.append(contentsOf: repeatElement(0x30, count: n))
        for i in stride(from: start + n - 1, through: start, by: -1) {
            out[i] = 0x30 + UInt8(v % 10)
            v /= 10
        }
    }
}
