// `lru_crawler metadump|crawl|tocrawl|sleep|enable|disable` (memcached's process_lru_crawler_command and
// crawler.c). Metadump is a reply stream: a batch of items per class is formatted into the output each
// time the transport asks, which it does once the previous batch was sent (backpressure) and only a few
// times per event (the worker's other connections get their turn) — so a dump of a million items neither
// buffers the whole cache nor holds any lock for more than one item.
import CacheStore
import Glibc
import MemcacheProtocol

extension CommandSession {
    /// Items per class per batch (the transport asks for a few batches per event, then lets others run).
    static let metadumpRounds = 1000

    func processLRUCrawler(_ line: UnsafeRawBufferPointer) {
        let n = tokens.ntokens
        func sub(_ s: String) -> Bool { n >= 3 && token(line, 1).elementsEqual(s.utf8) }
        let crawler = server.crawler
        if n == 4 && sub("crawl") {
            if !crawler.enabled.load(ordering: .relaxed) { wbuf.append(Reply.crawlerDisabled); return }
            let arg = token(line, 2)
            if arg.elementsEqual("hash".utf8) { wbuf.append(Reply.crawlerUnknownError); return }
            guard let ids = parseClassList(arg) else { wbuf.append(Reply.crawlerBadClass); return }
            // lru_crawler_tocrawl caps the items checked per class; metadump below ignores it (as memcached).
            guard let crawl = store.startCrawl(classIds: ids, toCrawl: crawler.toCrawl.load(ordering: .relaxed)) else {
                wbuf.append(Reply.crawlerBusy)
                return
            }
            crawler.starts.add(1, ordering: .relaxed)
            crawler.runInBackground(crawl)
            wbuf.append(Reply.ok)
        } else if n == 4 && sub("metadump") {
            if !crawler.enabled.load(ordering: .relaxed) { wbuf.append(Reply.crawlerDisabled); return }
            if !server.settings.dumpEnabled { wbuf.append(Reply.metadumpNotAllowed); return }
            if output.repliesSinceTransmit > 0 { wbuf.append(Reply.metadumpPipelined); return }
            let arg = token(line, 2)
            let byHash = arg.elementsEqual("hash".utf8)
            var ids: [Int] = []
            if !byHash {
                guard let parsed = parseClassList(arg) else { wbuf.append(Reply.crawlerBadClass); return }
                ids = parsed
            }
            guard let crawl = store.startCrawl(classIds: ids, byHash: byHash) else {
                wbuf.append(Reply.crawlerBusy)
                return
            }
            crawler.starts.add(1, ordering: .relaxed)
            startStream(.metadump(crawl))
        } else if n == 4 && (sub("tocrawl") || sub("sleep")) {
            guard let v = Numbers.strtoul(token(line, 2)) else { wbuf.append(Reply.badFormat); return }
            if sub("sleep") {
                if v > 1_000_000 { wbuf.append(Reply.crawlerSleepTooLong); return }
                crawler.sleepMicros.store(Int(v), ordering: .relaxed)
            } else {
                crawler.toCrawl.store(Int(v), ordering: .relaxed)
            }
            wbuf.append(Reply.ok)
        } else if n == 3 && sub("enable") {
            // memcached cannot start its crawler thread twice.
            let (was, _) = crawler.enabled.compareExchange(expected: false, desired: true, ordering: .relaxed)
            wbuf.append(was ? Reply.ok : Reply.crawlerStartFailed)
        } else if n == 3 && sub("disable") {
            crawler.enabled.store(false, ordering: .relaxed)
            wbuf.append(Reply.ok)
        } else {
            wbuf.append(Reply.error)
        }
    }

    /// memcached lru_crawler_crawl's class list: `all`, or comma-separated ids (empty items skipped,
    /// strtok-style), each POWER_SMALLEST ..< MAX_NUMBER_OF_SLAB_CLASSES; nil → BADCLASS.
    private func parseClassList(_ arg: UnsafeRawBufferPointer) -> [Int]? {
        if arg.elementsEqual("all".utf8) { return Array(1..<64) }
        var ids: [Int] = []
        for part in arg.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
            let slice = UnsafeRawBufferPointer(rebasing: part)
            guard let id = Numbers.strtoul(slice), id >= 1, id < 64 else { return nil }
            ids.append(Int(id))
        }
        return ids
    }

    /// One metadump batch (`metadumpRounds` items per class) into the output; `END` once the walk is done.
    func continueMetadump(_ crawl: LRUCrawl) -> StreamProgress {
        let started = server.clock.processStarted
        let out = wbuf
        let done = crawl.step(rounds: CommandSession.metadumpRounds) { m in
            let keyEq: StaticString = "key=", expEq: StaticString = " exp=", laEq: StaticString = " la="
            let casEq: StaticString = " cas=", fetchYes: StaticString = " fetch=yes", fetchNo: StaticString = " fetch=no"
            let clsEq: StaticString = " cls=", sizeEq: StaticString = " size="
            out.append(keyEq)
            URIEncode.append(m.key, to: out)
            out.append(expEq)
            if m.exptime == 0 { out.appendDecimal(-1) } else { out.appendDecimal(Int(m.exptime) + started) }
            out.append(laEq)
            out.appendDecimal(Int(m.lastAccess) + started)
            out.append(casEq)
            out.appendDecimal(m.cas)
            out.append(m.fetched ? fetchYes : fetchNo)
            out.append(clsEq)
            out.appendDecimal(m.classId)
            out.append(sizeEq)
            out.appendDecimal(m.totalSize)
            out.append(UInt8(ascii: "\n"))
        }
        if !done { return .more }
        crawl.finish()
        streamFinished()
        // 1.6.18 hands the connection to its crawler thread and back: commands pipelined behind
        // the metadump are lost (observed), so they are dropped here too.
        rbuf.reset()
        wbuf.append(Reply.end)
        return .finished
    }
}
