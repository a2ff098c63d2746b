// Slab class geometry against the table real memcached 1.6.18 prints with -vv.
import Testing
import CacheStore

@Suite struct SlabClassTableTests {
    @Test func defaultTableMatchesMemcached() {
        // memcached -vv (1.6.18, -n 48 -f 1.25): 39 classes.
        let t = CacheStore.slabClassTable(StoreConfig())
        #expect(t.count == 39)
        let rows: [(Int, Int, Int)] = [
            (1, 96, 10922), (2, 120, 8738), (3, 152, 6898), (4, 192, 5461), (5, 240, 4369), (6, 304, 3449),
            (7, 384, 2730), (8, 480, 2184), (9, 600, 1747), (10, 752, 1394), (11, 944, 1110), (12, 1184, 885),
            (20, 7104, 147), (30, 66232, 15), (32, 103496, 10), (33, 129376, 8), (37, 315872, 3),
            (38, 394840, 2), (39, 524288, 2),
        ]
        for (id, size, per) in rows {
            #expect(t[id - 1] == SlabClassInfo(id: id, chunkSize: size, perSlab: per))
        }
        #expect(t.map(\.id) == Array(1...39))
    }

    @Test func slabSizesMatchMemcached() {
        // memcached -vv -o slab_sizes=100-200-300: sizes aligned to 8, then the slab_chunk_max class.
        var c = StoreConfig()
        c.slabSizes = [100, 200, 300]
        let t = CacheStore.slabClassTable(c)
        #expect(t == [SlabClassInfo(id: 1, chunkSize: 104, perSlab: 10082), SlabClassInfo(id: 2, chunkSize: 200, perSlab: 5242),
                      SlabClassInfo(id: 3, chunkSize: 304, perSlab: 3449), SlabClassInfo(id: 4, chunkSize: 524288, perSlab: 2)])
    }

    @Test func preallocateGivesEveryClassAPage() {
        var c = StoreConfig()
        c.memoryLimit = 64 << 20
        let region = try? LargePageRegion.make(size: c.memoryLimit).get()
        let store = CacheStore(config: c, clock: StoreClock(now: 1_700_000_000), largePages: region)
        #expect(store.preallocate())
        #expect(store.statsSnapshot().totalMalloced == store.slabClasses.count << 20)
        // Fewer megabytes than classes: the region runs out (memcached's "max memory must be at least N
        // megabytes"); without a region (no transparent huge pages) pages are mapped one by one and the
        // first page of a class is always allowed, as in memcached's fallback.
        c.memoryLimit = 10 << 20
        let smallRegion = try? LargePageRegion.make(size: c.memoryLimit).get()
        let small = CacheStore(config: c, clock: StoreClock(now: 1_700_000_000), largePages: smallRegion)
        #expect(small.preallocate() == (smallRegion == nil))
    }

    @Test func factor2Chunk100MatchesMemcached() {
        // memcached -vv -f 2 -n 100
        var c = StoreConfig()
        c.growthFactor = 2; c.chunkSize = 100
        let t = CacheStore.slabClassTable(c)
        #expect(t.map(\.chunkSize) == [152, 304, 608, 1216, 2432, 4864, 9728, 19456, 38912, 77824, 155648, 524288])
        #expect(t.map(\.perSlab) == [6898, 3449, 1724, 862, 431, 215, 107, 53, 26, 13, 6, 2])
    }

    @Test func tableIsCappedAt63Classes() {
        // memcached -vv -f 1.01: 96 * 1.01 truncates back to 96, so classes 1...62 are all 96 bytes.
        var c = StoreConfig()
        c.growthFactor = 1.01
        let t = CacheStore.slabClassTable(c)
        #expect(t.count == 63)
        #expect(t[61] == SlabClassInfo(id: 62, chunkSize: 96, perSlab: 10922))
        #expect(t.last == SlabClassInfo(id: 63, chunkSize: 524288, perSlab: 2))
        // memcached -vv -f 1.1: class 62 is 43008 bytes, then the 512 KB class.
        c.growthFactor = 1.1
        let t2 = CacheStore.slabClassTable(c)
        #expect(t2.count == 63)
        #expect(t2[61] == SlabClassInfo(id: 62, chunkSize: 43008, perSlab: 24))
    }
}
