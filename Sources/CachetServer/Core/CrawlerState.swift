// The LRU crawler's runtime knobs (`lru_crawler enable|disable|sleep|tocrawl`, shown by `stats settings`)
// and the background thread that runs `lru_crawler crawl` and the maintainer's autoexpire crawls: it reclaims
// expired and flushed items in small batches, sleeping `sleep` µs between batches, so it never holds a
// lock for long. Metadump does not run here: it streams on the requesting connection (CrawlerCommands).
import CacheStore
import Glibc
import Synchronization

final class CrawlerState: Sendable {
    let enabled: Atomic<Bool>
    let sleepMicros: Atomic<Int>
    let toCrawl: Atomic<Int>
    /// memcached's lru_crawler_starts: crawls and metadumps started (zeroed by `stats reset`).
    let starts = Atomic<Int>(0)

    init(settings: Settings) {
        enabled = Atomic(settings.lruCrawler)
        sleepMicros = Atomic(settings.lruCrawlerSleep)
        toCrawl = Atomic(Int(settings.lruCrawlerToCrawl))
    }

    /// Items visited per class between sleeps.
    static let batchRounds = 1000

    /// Runs `crawl` to completion on a detached thread, then hands it to `done` (before it is finished).
    func runInBackground(_ crawl: LRUCrawl, done: (@Sendable (LRUCrawl) -> Void)? = nil) {
        let job = CrawlJob(crawl: crawl, sleepMicros: sleepMicros.load(ordering: .relaxed), done: done)
        var thread = pthread_t()
        let arg = Unmanaged.passRetained(job).toOpaque()
        if pthread_create(&thread, nil, crawlThreadMain, arg) == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<CrawlJob>.fromOpaque(arg).release()
            crawl.finish()
        }
    }
}

/// Invariant: owned by its thread only (handed over with a +1 retain).
private final class CrawlJob: @unchecked Sendable {
    let crawl: LRUCrawl
    let sleepMicros: Int
    let done: (@Sendable (LRUCrawl) -> Void)?
    init(crawl: LRUCrawl, sleepMicros: Int, done: (@Sendable (LRUCrawl) -> Void)?) {
        self.crawl = crawl; self.sleepMicros = sleepMicros; self.done = done
    }

    func run() {
        while !crawl.reclaimStep(rounds: CrawlerState.batchRounds) {
            if sleepMicros > 0 { usleep(UInt32(sleepMicros)) }
        }
        done?(crawl)
        crawl.finish()
    }
}

private let crawlThreadMain: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
    Unmanaged<CrawlJob>.fromOpaque(arg!).takeRetainedValue().run()
    return nil
}
