// Owns the raw layout of an item in slab memory: the 48-byte header (memcached's budget), the optional CAS,
// the key, the value, and the chunk chain of items bigger than slab_chunk_max.
//
// Item (one slab chunk; ntotal = 48 + cas + nkey + 1 + (flags ? 4 : 0) + nbytes, memcached's formula):
//   0  hNext   ptr   hash-chain next (AssocTable)
//   8  prev    ptr   LRU (towards head)
//  16  next    ptr   LRU (towards tail)
//  24  time    u32   last access, relative
//  28  exptime u32   relative, 0 = never
//  32  nbytes  u32   value length + 2 ("\r\n")
//  36  flags   u32   client flags
//  40  hash    u32   murmur3 of the key (segment/bucket without rehashing the key)
//  44  nkey    u8
//  45  itFlags u8    linked | fetched | chunked | stale | tokenSent | keyBinary | active | pinned
//  46  clsid   u8    slab class whose LRU and `stats items` counters hold the item, in the low 6 bits, and its
//                    LRU segment (HOT 0, WARM 1, COLD 2, TEMP 3) in the top 2 — memcached's slabs_clsid | lru id
//  47  memClsid u8   slab class the header's memory came from (= clsid for plain items; memcached's
//                    item_chunk.orig_clsid for chunked ones)
//  48  cas     u64   only when CAS is enabled
//  key[nkey], one spare byte (memcached's NUL), then (the 4 flag bytes memcached counts are left at the end):
//   plain item:   value bytes, "\r\n"
//   chunked item: (aligned to 8) firstChunk ptr. No value bytes in the header (memcached's header chunk has
//                 size 0); the header is sized like memcached's: 48 + cas + nkey + 1 + (flags ? 4 : 0) + 48
//                 (sizeof(item_chunk)), which leaves room for the pointer.
// Value chunk (memcached do_item_alloc_chunk: min(remaining + 48, slab_chunk_max) bytes from the smallest class
// that fits, so all but the last come from the largest class):
//   0 next ptr, 8 len u32, 12 clsid u8, 13..47 unused (memcached's 48-byte item_chunk header), 48 data[len].
//   A chunk holds up to (class size - 48) bytes of the value *plus its "\r\n"* (memcached stores nbytes
//   there); we store no "\r\n", so `len` counts value bytes only and a last chunk may hold 0 of them.
//
// Invariant: an `ItemRef` is only dereferenced by a thread holding the item's hash-segment lock, or by the
// thread that allocated it before it is linked; fields also read under the class lock (`prev`, `next`,
// `nkey`, `nbytes`, `clsid`, chunk chain) are only written while holding both locks or before linking, except
// `time` and `itFlags`, which a fetch writes under the segment lock alone: those two are relaxed atomics.
import CItemFlags
import Glibc

struct ItemFlags {
    static let linked: UInt8 = 1
    static let fetched: UInt8 = 2
    static let chunked: UInt8 = 4
    /// Meta protocol (memcached ITEM_STALE, ITEM_TOKEN_SENT, ITEM_KEY_BINARY): marked stale by `md I` or a
    /// stale `ms I`; a recache win token (W) was handed out; the key was given base64-encoded (`b`).
    static let stale: UInt8 = 8
    static let tokenSent: UInt8 = 16
    static let keyBinary: UInt8 = 32
    /// Segmented LRU (memcached ITEM_ACTIVE): fetched again after its first fetch; the LRU maintainer keeps
    /// such items in WARM (or rescues them from COLD) and clears the bit when it does.
    static let active: UInt8 = 64
    /// A connection is sending the value straight from slab memory (ItemPins.swift): not evicted, not
    /// rewritten in place, and its memory outlives an unlink until the last reference is dropped.
    static let pinned: UInt8 = 128
}

/// Byte offsets that depend on whether CAS is enabled.
struct ItemLayout: Sendable {
    let casSize: Int
    var keyOffset: Int { itemHeaderSize + casSize }
    init(casEnabled: Bool) { casSize = casEnabled ? 8 : 0 }

    /// memcached's ntotal (item_make_header): non-zero client flags count 4 bytes (memcached keeps them in
    /// a suffix then; we keep them in the header, but count them so class choice and `bytes` match).
    @inline(__always) func totalSize(keyLength: Int, valueLength: Int, flags: UInt32) -> Int {
        keyOffset + keyLength + 1 + (flags != 0 ? 4 : 0) + valueLength + 2
    }
    /// Where a chunked item's chain pointer lives.
    @inline(__always) func chunkInfoOffset(keyLength: Int) -> Int {
        (keyOffset + keyLength + 1 + 7) & ~7
    }
    /// memcached do_item_alloc's `htotal` for a chunked item's header: item + cas + key + 1 + suffix +
    /// sizeof(item_chunk). Observed: key "c600k" → 110 → class 2 (120); a 250-byte key with flags → class 7.
    @inline(__always) func chunkedHeaderSize(keyLength: Int, flags: UInt32) -> Int {
        keyOffset + keyLength + 1 + (flags != 0 ? 4 : 0) + chunkHeaderSize
    }
}

/// Header of a value chunk of a chunked item: memcached's sizeof(item_chunk) on 64-bit, which decides how
/// many value bytes a chunk of a class holds and so which classes the chunks come from.
var chunkHeaderSize: Int { 48 }

@inline(__always) func loadPointer(_ p: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutableRawPointer? {
    UnsafeMutableRawPointer(bitPattern: p.load(fromByteOffset: offset, as: UInt.self))
}
@inline(__always) func storePointer(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UnsafeMutableRawPointer?) {
    p.storeBytes(of: UInt(bitPattern: v), toByteOffset: offset, as: UInt.self)
}

/// A typed view of an item header in slab memory (no ownership, no refcount).
struct ItemRef: Equatable {
    let raw: UnsafeMutableRawPointer
    @inline(__always) init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    var hNext: UnsafeMutableRawPointer? {
        @inline(__always) get { loadPointer(raw, 0) }
        @inline(__always) nonmutating set { storePointer(raw, 0, newValue) }
    }
    var prev: UnsafeMutableRawPointer? {
        @inline(__always) get { loadPointer(raw, 8) }
        @inline(__always) nonmutating set { storePointer(raw, 8, newValue) }
    }
    var next: UnsafeMutableRawPointer? {
        @inline(__always) get { loadPointer(raw, 16) }
        @inline(__always) nonmutating set { storePointer(raw, 16, newValue) }
    }
    /// Last access. A fetch refreshes it under the item's segment lock only (memcached does the same), while
    /// the LRU maintainer reads it under a class lock: a relaxed atomic word (a plain mov).
    var time: UInt32 {
        @inline(__always) get { cachet_load_u32(raw + 24) }
        @inline(__always) nonmutating set { cachet_store_u32(raw + 24, newValue) }
    }
    var exptime: UInt32 {
        @inline(__always) get { raw.load(fromByteOffset: 28, as: UInt32.self) }
        @inline(__always) nonmutating set { raw.storeBytes(of: newValue, toByteOffset: 28, as: UInt32.self) }
    }
    var nbytes: UInt32 {
        @inline(__always) get { raw.load(fromByteOffset: 32, as: UInt32.self) }
        @inline(__always) nonmutating set { raw.storeBytes(of: newValue, toByteOffset: 32, as: UInt32.self) }
    }
    var clientFlags: UInt32 {
        @inline(__always) get { raw.load(fromByteOffset: 36, as: UInt32.self) }
        @inline(__always) nonmutating set { raw.storeBytes(of: newValue, toByteOffset: 36, as: UInt32.self) }
    }
    var hash: UInt32 {
        @inline(__always) get { raw.load(fromByteOffset: 40, as: UInt32.self) }
        @inline(__always) nonmutating set { raw.storeBytes(of: newValue, toByteOffset: 40, as: UInt32.self) }
    }
    var nkey: Int {
        @inline(__always) get { Int(raw.load(fromByteOffset: 44, as: UInt8.self)) }
        @inline(__always) nonmutating set { raw.storeBytes(of: UInt8(newValue), toByteOffset: 44, as: UInt8.self) }
    }
    /// Shared between lock domains: written under the item's segment lock (a get marks it fetched or active),
    /// read by eviction and the crawler under a class lock (the bits they act on, such as active, only with the
    /// segment lock too) — so every access is a relaxed atomic byte access (a plain mov).
    var itFlags: UInt8 {
        @inline(__always) get { cachet_load_byte(raw + 45) }
        @inline(__always) nonmutating set { cachet_store_byte(raw + 45, newValue) }
    }
    /// Setting it puts the item in LRU segment 0 (HOT); `lruSegment` moves it between segments.
    var classId: Int {
        @inline(__always) get { Int(raw.load(fromByteOffset: 46, as: UInt8.self) & 63) }
        @inline(__always) nonmutating set { raw.storeBytes(of: UInt8(newValue), toByteOffset: 46, as: UInt8.self) }
    }
    /// The LRU list of its class the item is on (LRUSegment); written with the class lock and the item's lock.
    var lruSegment: Int {
        @inline(__always) get { Int(raw.load(fromByteOffset: 46, as: UInt8.self) >> 6) }
        @inline(__always) nonmutating set {
            let cid = raw.load(fromByteOffset: 46, as: UInt8.self) & 63
            raw.storeBytes(of: cid | UInt8(newValue << 6), toByteOffset: 46, as: UInt8.self)
        }
    }
    /// An LRU crawler's sentinel (LRUCrawler.swift) rather than an item: its nbytes is 0, while every item's
    /// counts at least the value's "\r\n" (memcached tells its crawlers apart the same way).
    var isCrawlerSentinel: Bool { @inline(__always) get { nbytes == 0 } }
    /// The class the header's own chunk belongs to (differs from `classId` only for chunked items).
    var memClassId: Int {
        @inline(__always) get { Int(raw.load(fromByteOffset: 47, as: UInt8.self)) }
        @inline(__always) nonmutating set { raw.storeBytes(of: UInt8(newValue), toByteOffset: 47, as: UInt8.self) }
    }
    @inline(__always) func cas(_ layout: ItemLayout) -> UInt64 {
        layout.casSize == 0 ? 0 : raw.load(fromByteOffset: itemHeaderSize, as: UInt64.self)
    }
    @inline(__always) func setCas(_ v: UInt64, _ layout: ItemLayout) {
        if layout.casSize != 0 { raw.storeBytes(of: v, toByteOffset: itemHeaderSize, as: UInt64.self) }
    }
    var isChunked: Bool { @inline(__always) get { itFlags & ItemFlags.chunked != 0 } }
    var valueLength: Int { @inline(__always) get { Int(nbytes) - 2 } }

    @inline(__always) func key(_ layout: ItemLayout) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: raw + layout.keyOffset, count: nkey)
    }
    @inline(__always) func totalSize(_ layout: ItemLayout) -> Int { totalSize(layout.keyOffset) }
    /// Wrapping adds: each term is small (a header offset, a byte, a u32), so the sum cannot overflow, and the
    /// LRU lists size every item they move with it.
    @inline(__always) func totalSize(_ keyOffset: Int) -> Int {
        keyOffset &+ nkey &+ 1 &+ (clientFlags != 0 ? 4 : 0) &+ Int(nbytes)
    }

    /// Plain items: the value bytes (followed in memory by "\r\n").
    @inline(__always) func plainValue(_ layout: ItemLayout) -> UnsafeMutableRawPointer {
        raw + layout.keyOffset + nkey + 1
    }
    /// Chunked items: address of the chain pointer.
    @inline(__always) func chunkInfo(_ layout: ItemLayout) -> UnsafeMutableRawPointer {
        raw + layout.chunkInfoOffset(keyLength: nkey)
    }

    /// Calls `body` with each stretch of the value's bytes, in order (no "\r\n").
    @inline(__always)
    func forEachSegment(keyAddress: UnsafeRawPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        let start = UnsafeMutableRawPointer(mutating: keyAddress) + nkey + 1
        guard isChunked else {
            body(UnsafeRawBufferPointer(start: start, count: valueLength))
            return
        }
        let info = UnsafeMutableRawPointer(bitPattern: (UInt(bitPattern: start) + 7) & ~7)!
        var chunk = loadPointer(info, 0)
        while let c = chunk {
            let n = Int(c.load(fromByteOffset: 8, as: UInt32.self))
            if n > 0 { body(UnsafeRawBufferPointer(start: c + chunkHeaderSize, count: n)) }
            chunk = loadPointer(c, 0)
        }
    }
}

extension ItemRef {
    /// As `forEachSegment`, limited to value bytes `range`.
    func forEachSegment(keyAddress: UnsafeRawPointer, in range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) {
        var offset = 0
        forEachSegment(keyAddress: keyAddress) { seg in
            let lo = max(range.lowerBound - offset, 0), hi = min(range.upperBound - offset, seg.count)
            offset += seg.count
            if lo < hi { body(UnsafeRawBufferPointer(rebasing: seg[lo..<hi])) }
        }
    }
}

/// Copies bytes into a freshly allocated item's value area, crossing chunk boundaries.
struct ValueWriter {
    private var dst: UnsafeMutableRawPointer
    private var room: Int
    private var nextChunk: UnsafeMutableRawPointer?

    init(item: ItemRef, layout: ItemLayout) {
        if item.isChunked {
            dst = item.raw
            room = 0
            nextChunk = loadPointer(item.chunkInfo(layout), 0)
        } else {
            dst = item.plainValue(layout)
            room = item.valueLength
            nextChunk = nil
        }
    }

    mutating func write(_ src: UnsafeRawBufferPointer) {
        guard var s = src.baseAddress else { return }
        var n = src.count
        while n > 0 {
            if room == 0 {
                guard let c = nextChunk else { preconditionFailure("ValueWriter: value longer than the item") }
                dst = c + chunkHeaderSize
                room = Int(c.load(fromByteOffset: 8, as: UInt32.self))
                nextChunk = loadPointer(c, 0)
                continue
            }
            let k = min(n, room)
            memcpy(dst, s, k)
            dst += k; s += k; room -= k; n -= k
        }
    }
}
