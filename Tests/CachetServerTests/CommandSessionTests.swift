// Command handlers without a socket: bytes into a CommandSession, its replies out, as a transport would
// move them. The replies are memcached 1.6.18's (the integration suite checks the same cases against a
// running memcached; these pin the session's own contract: data blocks, swallowing, culling, streams).
import CacheStore
import Glibc
import Synchronization
import Testing
@testable import CachetServer

/// Records the wake-ups a watcher asks for (a worker would drive the connection).
final class RecordingWaker: WatcherWaking {
    private let woken = Mutex<[Int32]>([])
    func watcherHasLines(_ w: Watcher) { woken.withLock { $0.append(w.cfd) } }
    var wakeUps: [Int32] { woken.withLock { $0 } }
}

/// One server context (store, settings) and sessions on it, driven the way Connection drives them.
struct SessionHarness {
    let server: ServerContext
    let scratch = CommandScratch()
    let waker = RecordingWaker()

    init(_ args: [String] = []) throws {
        guard case .run(let settings) = SettingsParser.parse(["-m", "8"] + args) else {
            throw HarnessError.settingsRejected
        }
        let now = Int(time(nil))
        let clock = StoreClock(now: now)
        let store = CacheStore(config: settings.storeConfig, clock: clock)
        server = ServerContext(settings: settings, store: store, clock: clock, tls: nil, now: now)
    }

    enum HarnessError: Error { case settingsRejected }

    func session(cfd: Int32 = 7) -> CommandSession {
        CommandSession(server: server, stats: ThreadStats(), scratch: scratch, cfd: cfd, recordSize: nil, waker: waker)
    }
}

extension CommandSession {
    /// Appends `bytes`, steps until the session wants more input (or closes), and returns the last step.
    @discardableResult
    func receive(_ bytes: String) -> Step {
        var b = bytes
        b.withUTF8 { rbuf.append(UnsafeRawBufferPointer($0)) }
        while true {
            let s = step()
            if s != .done || isStreaming || closeAfterWrite { return s }
        }
    }

    /// Everything queued for sending, as a transport's flush would take it.
    func drain() -> String {
        var out: [UInt8] = []
        while true {
            let run = output.nextRun()
            if run.isEmpty { break }
            out.append(contentsOf: run)
            output.consume(run.count)
        }
        output.markTransmitted()
        return String(decoding: out, as: UTF8.self)
    }

    /// `receive` then `drain`.
    func roundTrip(_ bytes: String) -> String {
        receive(bytes)
        return drain()
    }
}

@Suite struct CommandSessionTests {
    @Test func storageAndRetrieval() throws {
        let s = try SessionHarness().session()
        #expect(s.roundTrip("set k 5 0 3\r\nabc\r\nget k\r\n") == "STORED\r\nVALUE k 5 3\r\nabc\r\nEND\r\n")
        #expect(s.roundTrip("append k 0 0 2\r\nde\r\ngets k\r\n").hasPrefix("STORED\r\nVALUE k 5 5 "))
        #expect(s.roundTrip("incr k 1\r\n") == "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
        #expect(s.roundTrip("delete k\r\ndelete k\r\nget k\r\n") == "DELETED\r\nNOT_FOUND\r\nEND\r\n")
    }

    @Test func aValueThatArrivesInPiecesWaitsForItsLastByte() throws {
        let s = try SessionHarness().session()
        #expect(s.receive("set k 0 0 5\r\nab") == .needMore)
        #expect(s.pendingNeed == "set k 0 0 5\r\n".utf8.count + 7)
        #expect(s.drain() == "")
        #expect(s.receive("cde") == .needMore)
        #expect(s.roundTrip("\r\nget k\r\n") == "STORED\r\nVALUE k 0 5\r\nabcde\r\nEND\r\n")
        #expect(s.pendingNeed == 0)
    }

    @Test func aBadDataChunkIsRejected() throws {
        let s = try SessionHarness().session()
        #expect(s.roundTrip("set k 0 0 3\r\nabcd\r\n") == "CLIENT_ERROR bad data chunk\r\nERROR\r\n")
    }

    @Test func aTooLargeValueIsSwallowedNotParsed() throws {
        let s = try SessionHarness().session()
        let value = String(repeating: "get x\r\n", count: 150_000)   // 1.05 MB (over -I 1m) of lines that look like commands
        #expect(s.receive("set big 0 0 \(value.utf8.count)\r\n" + value.prefix(700)) == .discarding)
        #expect(s.swallow > 0)
        #expect(s.roundTrip(String(value.dropFirst(700)) + "\r\nget big\r\n")
                == "SERVER_ERROR object too large for cache\r\nEND\r\n")
        #expect(s.swallow == 0)
    }

    @Test func metaCommands() throws {
        let s = try SessionHarness().session()
        #expect(s.roundTrip("ms k 2 T0 F3\r\nhi\r\nmg k v f\r\nmn\r\n") == "HD\r\nVA 2 f3\r\nhi\r\nMN\r\n")
        #expect(s.roundTrip("ma k\r\n") == "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
        #expect(s.roundTrip("md k q\r\nmg k\r\n") == "EN\r\n")
        #expect(s.roundTrip("mg k x\r\n") == "CLIENT_ERROR invalid flag\r\n")
    }

    @Test func quitClosesAfterTheRepliesAreSent() throws {
        let s = try SessionHarness().session()
        s.receive("version\r\nquit\r\nget never\r\n")
        #expect(s.closeAfterWrite)
        #expect(s.closeReason == .normal)
        #expect(s.drain().hasPrefix("VERSION "))
    }

    @Test func anHTTPRequestClosesAndCullsRepliesNotYetTransmitted() throws {
        let s = try SessionHarness().session()
        // memcached drops the STORED it had not sent yet; the get before it was transmitted.
        #expect(s.receive("get a\r\nset a 0 0 1\r\nx\r\nGET / HTTP/1.1\r\n") == .close)
        #expect(s.drain() == "END\r\n")
    }

    @Test func metadumpIsAStreamTheTransportPulls() throws {
        let s = try SessionHarness().session()
        for i in 0..<5 { #expect(s.roundTrip("set key\(i) 0 0 1\r\nx\r\n") == "STORED\r\n") }
        s.receive("lru_crawler metadump all\r\n")
        #expect(s.isStreaming)
        var progress = CommandSession.StreamProgress.more
        var dump = ""
        for _ in 0..<100 where progress != .finished {
            progress = s.continueStream()
            dump += s.drain()
        }
        #expect(progress == .finished)
        #expect(!s.isStreaming)
        #expect(dump.hasSuffix("END\r\n"))
        for i in 0..<5 { #expect(dump.contains("key=key\(i) exp=-1 ")) }
    }

    @Test func aWatcherIsWokenByAnotherSessionsCommandAndGetsItsLine() throws {
        let h = try SessionHarness()
        let watcher = h.session(cfd: 21)
        let client = h.session(cfd: 22)
        #expect(watcher.roundTrip("watch fetchers\r\n") == "OK\r\n")
        #expect(watcher.isStreaming)
        #expect(watcher.continueStream() == .waiting)
        #expect(client.roundTrip("get nothing\r\n") == "END\r\n")
        #expect(h.waker.wakeUps == [21])
        #expect(watcher.continueStream() == .more)
        let lines = watcher.drain()
        #expect(lines.contains("type=item_get key=nothing status=not_found clsid=0 cfd=22"))
        watcher.endStream()
        #expect(h.server.watchLog.count.load(ordering: .relaxed) == 0)
    }
}
