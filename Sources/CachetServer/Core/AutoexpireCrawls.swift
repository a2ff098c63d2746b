// Owns when the LRU maintainer starts crawls on its own (memcached items.c lru_maintainer_crawler_check):
// once a second, every LRU (class × segment) whose time has come is crawled — reclaiming expired items that
// nobody fetches — and each LRU's next crawl is planned from what its last one saw: sooner when at least 1 %
// of its items with a TTL expire within the next minutes, a minute later each time there was nothing to
// reclaim, at most an hour apart (5 s after start-up all are due, as in memcached). The crawl itself runs like
// `lru_crawler crawl` (CrawlerState), counts in `lru_crawler_starts`, and is skipped for 5 s when another crawl
// or a metadump holds the crawler.
import CacheStore
import CachetSync

/// Invariant: `check` runs on the maintainer thread only (it alone touches the plans); crawl threads hand
/// their results over through `finished`, a lock.
final class AutoexpireCrawls: @unchecked Sendable {
    static let maxWait: UInt32 = 3600
    private let store: CacheStore
    private let crawler: CrawlerState
    private var nextCrawl = [UInt32](repeating: 0, count: 256)
    private var nextWait = [UInt32](repeating: 0, count: 256)
    private var lastCheck: UInt32 = 0
    private let finished = Locked<[Int: CrawlResult]>([:])

    init(store: CacheStore, crawler: CrawlerState) {
        self.store = store
        self.crawler = crawler
    }

    /// Called on every maintainer pass; does its work at most once per clock second.
    func check() {
        let now = store.clock.currentTime
        guard now != lastCheck, crawler.enabled.load(ordering: .relaxed) else { return }
        lastCheck = now
        let results = finished.withLock { r -> [Int: CrawlResult] in
            defer { r.removeAll() }
            return r
        }
        var todo: [Int] = []
        var limit = 0
        for cid in 1...store.largestSlabClass {
            for seg in 0..<4 {
                let id = cid | seg << 6
                // Mostly there are no results (a crawl finishes at most once per check): no lookup then.
                if !results.isEmpty, let r = results[id] { plan(id, after: r, now: now) }
                if now > nextCrawl[id] {
                    limit = max(limit, store.lruCount(lruId: id))
                    todo.append(id)
                    nextCrawl[id] = now + 5   // the soonest retry, should this crawl not start
                }
            }
        }
        guard !todo.isEmpty else { return }
        let cap = crawler.toCrawl.load(ordering: .relaxed)
        if cap != 0 && cap < limit { limit = cap }
        guard let crawl = store.startCrawl(lruIds: todo, toCrawl: limit, collectStats: true) else { return }
        crawler.starts.add(1, ordering: .relaxed)
        crawler.runInBackground(crawl) { [finished] done in
            finished.withLock { r in for (id, result) in done.results { r[id] = result } }
        }
    }

    /// memcached's rule: wait a minute longer while 1 % of the LRU's expiring items are further away than the
    /// current wait (or nothing expires), a minute shorter while they are nearer.
    private func plan(_ id: Int, after r: CrawlResult, now: UInt32) {
        let lowWatermark = (r.seen - r.noExpiry) / 100 + 1
        var available = 0
        for minute in 0..<60 {
            available += r.expiringInMinute[minute]
            if available > lowWatermark {
                if nextWait[id] < UInt32(minute * 60) {
                    nextWait[id] += 60
                } else if nextWait[id] >= 60 {
                    nextWait[id] -= 60
                }
                break
            }
        }
        if available == 0 { nextWait[id] += 60 }
        nextWait[id] = min(nextWait[id], AutoexpireCrawls.maxWait)
        nextCrawl[id] = now + nextWait[id] + 5
    }
}
