// The binary stat opcode (memcached's process_bin_stat): the same statistics as the text `stats`
// family, produced by the same code as "STAT name value" lines and re-framed as one packet per stat
// (key = name, value = value) and an empty packet at the end. Which groups it knows follows memcached:
// nothing = the general stats; "reset", "settings" and "detail" match as prefixes; "items", "slabs",
// "sizes", "sizes_enable" and "sizes_disable" exactly; anything else (conns, cachedump…) is "Not found".
import MemcacheProtocol

extension CommandSession {
    func binaryStat(_ h: BinaryRequestHeader, _ key: UnsafeRawBufferPointer) {
        func starts(_ s: StaticString) -> Bool {
            key.count >= s.utf8CodeUnitCount
                && key.prefix(s.utf8CodeUnitCount).elementsEqual(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        func equals(_ s: StaticString) -> Bool {
            key.elementsEqual(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        let before = wbuf.count
        var terminated = true
        if key.isEmpty {
            generalStats()
        } else if starts("reset") {
            server.resetStats()
        } else if starts("settings") {
            settingsStats()
        } else if starts("detail") {
            let sub = UnsafeRawBufferPointer(rebasing: key[(key.startIndex + 6)...])
            func subIs(_ s: String) -> Bool { sub.starts(with: s.utf8) }
            if subIs(" dump") {
                // One stat, "detailed", whose value is the text dump (with its END line).
                server.prefixStats.dump(into: wbuf)
                let dump = takeOutput(since: before)
                binaryHeader(h, key: 8, body: 8 + dump.count)
                wbuf.append("detailed")
                dump.withUnsafeBytes { wbuf.append($0) }
                binaryHeader(h)
                return
            } else if subIs(" on") {
                server.prefixStats.enabled.store(true, ordering: .relaxed)
            } else if subIs(" off") {
                server.prefixStats.enabled.store(false, ordering: .relaxed)
            } else {
                binaryError(h, .keyNotFound)
                return
            }
        } else if equals("items") {
            itemStats()
        } else if equals("slabs") {
            slabStats()
        } else if equals("sizes") {
            sizeStats()
        } else if equals("sizes_enable") || equals("sizes_disable") {
            // memcached sends these without the closing empty packet (as the text form has no END).
            sizesSwitchStats(enable: equals("sizes_enable"))
            terminated = false
        } else {
            binaryError(h, .keyNotFound)
            return
        }
        let lines = takeOutput(since: before)
        lines.withUnsafeBytes { appendStatPackets(h, $0) }
        if terminated { binaryHeader(h) }
    }

    /// Removes and returns what was appended to `wbuf` since it held `count` bytes.
    private func takeOutput(since count: Int) -> [UInt8] {
        let n = wbuf.count - count
        let bytes = [UInt8](UnsafeRawBufferPointer(start: wbuf.readPointer + count, count: n))
        wbuf.truncate(to: wbuf.tail - n)
        return bytes
    }

    /// Each "STAT name value\r\n" line as a packet; other lines (none are expected) are skipped.
    private func appendStatPackets(_ h: BinaryRequestHeader, _ text: UnsafeRawBufferPointer) {
        var i = 0
        let n = text.count
        while i < n {
            var end = i
            while end + 1 < n && !(text[end] == 0x0d && text[end + 1] == 0x0a) { end += 1 }
            if end + 1 >= n { end = n }
            // "STAT " name " " value
            if end - i > 5 && text[i] == UInt8(ascii: "S") && text[i + 4] == UInt8(ascii: " ") {
                let nameStart = i + 5
                var space = nameStart
                while space < end && text[space] != UInt8(ascii: " ") { space += 1 }
                let name = UnsafeRawBufferPointer(rebasing: text[nameStart..<space])
                let value = space < end ? UnsafeRawBufferPointer(rebasing: text[(space + 1)..<end])
                                        : UnsafeRawBufferPointer(start: nil, count: 0)
                binaryHeader(h, key: name.count, body: name.count + value.count)
                wbuf.append(name)
                wbuf.append(value)
            }
            i = end + 2
        }
    }
}
