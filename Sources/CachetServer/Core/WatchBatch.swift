// The `watch` lines one worker thread logged during the event it is running, published to the watchers
// together when the event is done (memcached likewise has each worker log into its own buffer). Every
// worker logs for the same few watchers, so taking the shared WatchLog lock per line made the workers
// queue on it (a third of their time at -t 4, pipelined, with two watchers); per event it is taken once.
//
// A line is kept as its text before the gid (`ts=<s>.<us> gid=`) and after it (` <body>\n`): the gid is
// only given out when the batch is published, under the lock, so every watcher still sees gids in order.
import Glibc

/// Invariant: owned by one worker thread (found through `current`), never touched by another.
final class WatchBatch {
    struct Line {
        let type: WatchTypes
        /// `text[start..<gidAt]` is the head, `text[gidAt..<end]` the tail.
        let start: Int
        let gidAt: Int
        let end: Int
    }
    var lines: [Line] = []
    var text: [UInt8] = []

    var isEmpty: Bool { lines.isEmpty }

    func add(_ type: WatchTypes, head: UnsafeBufferPointer<UInt8>, tail: UnsafeBufferPointer<UInt8>) {
        let start = text.count
        text.append(contentsOf: head)
        let gidAt = text.count
        text.append(contentsOf: tail)
        lines.append(Line(type: type, start: start, gidAt: gidAt, end: text.count))
    }

    func removeAll() {
        lines.removeAll(keepingCapacity: true)
        text.removeAll(keepingCapacity: true)
    }

    /// The batch of the worker running on this thread; nil on other threads (listener, crawler), whose
    /// lines are published at once.
    static var current: WatchBatch? {
        guard let p = pthread_getspecific(threadKey) else { return nil }
        return Unmanaged<WatchBatch>.fromOpaque(p).takeUnretainedValue()
    }

    /// Called once by a worker thread before its event loop runs; the worker keeps the batch alive.
    static func install(_ b: WatchBatch) {
        pthread_setspecific(threadKey, Unmanaged.passUnretained(b).toOpaque())
    }

    private static let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}
