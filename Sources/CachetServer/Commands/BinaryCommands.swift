// memcached's binary protocol (proto_bin.c): one packet at a time from the head of `rbuf`, framed by
// MemcacheProtocol/BinaryPacket.swift, run by the same operations the text protocol uses (runStoreItem,
// runDelete, runDelta, store.get + accountGet) and answered in packets. What memcached does that a client
// can see is kept: quiet forms answer only errors and get hits; errors, noop and quit make memcached
// write out everything queued (conn_mwrite), other replies wait for the batch to end; an unknown
// opcode's body is discarded counted from the end of its key; bad magic or a header with key and extras
// larger than memcached's 16 KB read buffer closes at once, dropping replies not yet written.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// memcached's read buffer: a header, extras and key that cannot fit in it close the connection.
    static let binaryHeadLimit = 16384

    /// Parses and runs the packet at the head of `rbuf`.
    func processBinaryRequest() -> Step {
        let buf = rbuf.readable
        guard let h = BinaryRequestHeader(buf) else { return .needMore }
        if h.magic != BinaryRequestHeader.requestMagic { return .close }
        let fixed = h.fixedLength
        if fixed > CommandSession.binaryHeadLimit {
            return buf.count >= CommandSession.binaryHeadLimit ? .close : .needMore
        }
        if buf.count < fixed { return .needMore }
        lastCmdTime = server.clock.currentTime
        let before = wbuf.count
        let step = dispatchBinary(h, buf)
        if output.transmitPoint { output.markTransmitted() } else { output.repliesSinceTransmit += wbuf.count - before }
        return step
    }

    /// memcached's dispatch_bin_command. Handlers that need no value leave consuming the header, extras
    /// and key to this function; those that carry a value consume it all themselves.
    private func dispatchBinary(_ h: BinaryRequestHeader, _ buf: UnsafeRawBufferPointer) -> Step {
        let fixed = h.fixedLength
        if h.lengthsDisagree {
            binaryError(h, .unknownCommand)
            closeAfterWrite = true
            rbuf.consume(fixed)
            return .done
        }
        if server.settings.saslEnabled && !saslAllows(h.opcode) {
            binaryError(h, .authError)
            closeAfterWrite = true
            rbuf.consume(fixed)
            return .done
        }
        // Keys are 16-bit on the wire but at most 250 bytes in the cache.
        switch h.keyLength > keyMaxLength ? .protocolError : h.validation {
        case .protocolError:
            binaryError(h, .invalidArguments)
            closeAfterWrite = true
            rbuf.consume(fixed)
            return .done
        case .unknownCommand:
            binaryError(h, .unknownCommand, swallow: h.bodyLength)
            rbuf.consume(fixed)
            return .done
        case .run:
            break
        }
        let extras = UnsafeRawBufferPointer(rebasing: buf[BinaryRequestHeader.size..<(BinaryRequestHeader.size + h.extrasLength)])
        let key = UnsafeRawBufferPointer(rebasing: buf[(BinaryRequestHeader.size + h.extrasLength)..<fixed])
        switch h.opcode {
        case BinaryOpcode.get, BinaryOpcode.getq, BinaryOpcode.getk, BinaryOpcode.getkq:
            binaryGet(h, key, touchExptime: nil)
        case BinaryOpcode.touch, BinaryOpcode.gat, BinaryOpcode.gatq, BinaryOpcode.gatk, BinaryOpcode.gatkq:
            binaryGet(h, key, touchExptime: Int64(Binary.u32(extras, 0)))
        case BinaryOpcode.set, BinaryOpcode.setq, BinaryOpcode.add, BinaryOpcode.addq, BinaryOpcode.replace,
             BinaryOpcode.replaceq, BinaryOpcode.append, BinaryOpcode.appendq, BinaryOpcode.prepend,
             BinaryOpcode.prependq:
            return binaryStore(h, buf, key: key, extras: extras)
        case BinaryOpcode.delete, BinaryOpcode.deleteq:
            switch runDelete(key, casUnique: h.cas) {
            case .deleted: binarySuccess(h)
            case .casMismatch: binaryError(h, .keyExists)
            case .notFound: binaryError(h, .keyNotFound)
            }
        case BinaryOpcode.increment, BinaryOpcode.incrementq, BinaryOpcode.decrement, BinaryOpcode.decrementq:
            binaryDelta(h, key: key, extras: extras)
        case BinaryOpcode.quit, BinaryOpcode.quitq:
            binarySuccess(h)
            output.transmitPoint = true
            closeAfterWrite = true
            closeReason = .normal
        case BinaryOpcode.flush, BinaryOpcode.flushq:
            binaryFlush(h, extras: extras)
        case BinaryOpcode.noop:
            binarySuccess(h)
            output.transmitPoint = true   // a noop ends a quiet batch: everything queued is written
        case BinaryOpcode.version:
            binaryHeader(h, body: memcachedCompatVersion.utf8.count)
            wbuf.append(memcachedCompatVersion)
        case BinaryOpcode.stat:
            binaryStat(h, key)
        default:
            // SASL list/auth/step: memcached without -S answers them as unknown commands and discards
            // the value after the mechanism name.
            if !server.settings.saslEnabled {
                binaryError(h, .unknownCommand, swallow: h.bodyLength - h.keyLength)
            } else if h.opcode == BinaryOpcode.saslListMechs {
                binarySaslList(h)
            } else {
                return binarySaslAuth(h, buf, key: key)
            }
        }
        rbuf.consume(fixed)
        return .done
    }

    // MARK: replies

    /// A response header echoing the request's opcode and opaque.
    @inline(__always)
    func binaryHeader(_ h: BinaryRequestHeader, _ status: BinaryStatus = .success, extras: Int = 0, key: Int = 0,
                      body: Int = 0, cas: UInt64 = 0) {
        BinaryResponseHeader(opcode: h.opcode, status: status, keyLength: key, extrasLength: extras,
                             bodyLength: body, opaque: h.opaque, cas: cas).write(to: wbuf)
    }

    /// A reply without extras, key or value; the quiet forms send none.
    @inline(__always) func binarySuccess(_ h: BinaryRequestHeader, cas: UInt64 = 0) {
        if !h.isQuiet { binaryHeader(h, cas: cas) }
    }

    /// An error with memcached's text for it, sent even for a quiet form. memcached writes everything
    /// queued right after an error, unless it first discards `swallow` bytes of the request.
    func binaryError(_ h: BinaryRequestHeader, _ status: BinaryStatus, swallow: Int = 0, text: StaticString? = nil) {
        let text = text ?? status.message
        binaryHeader(h, status, body: text.utf8CodeUnitCount)
        wbuf.append(text)
        if swallow > 0 {
            self.swallow = swallow
        } else {
            output.transmitPoint = true
        }
    }

    // MARK: commands

    /// get/getq/getk/getkq, touch, gat/gatq/gatk/gatkq (memcached's process_bin_get_or_touch). A hit is
    /// always answered (flags as extras, the key for the K forms, the value except for touch); a miss
    /// only by the loud forms.
    private func binaryGet(_ h: BinaryRequestHeader, _ key: UnsafeRawBufferPointer, touchExptime: Int64?) {
        let op = h.opcode
        let returnKey = op == BinaryOpcode.getk || op == BinaryOpcode.getkq || op == BinaryOpcode.gatk
            || op == BinaryOpcode.gatkq
        let returnValue = op != BinaryOpcode.touch
        let out = wbuf, output = self.output
        let hash = store.hash(key)
        var segment = 0
        var cas: UInt64 = 0
        let result = store.get(key, hash: hash, touchExptime: touchExptime) { item in
            segment = item.lruSegment
            cas = item.cas
            let keyLength = returnKey ? item.key.count : 0
            let valueLength = returnValue ? item.valueLength : 0
            BinaryResponseHeader(opcode: op, keyLength: keyLength, extrasLength: 4,
                                 bodyLength: 4 + keyLength + valueLength, opaque: h.opaque, cas: item.cas).write(to: out)
            Binary.append32(out, item.flags)
            if returnKey { out.append(item.key) }
            if returnValue { output.appendValue(item) }
        }
        // memcached's reply holds the item until it is written (an incr meanwhile makes a new item).
        if result.isHit { output.heldItems.append((hash, cas)) }
        accountGet(key, result, segment: segment, touch: touchExptime != nil)
        if result.isHit || h.isQuiet { return }
        if returnKey {
            // The K forms name the missing key (and, unlike the other errors, are not written at once).
            binaryHeader(h, .keyNotFound, key: key.count, body: key.count)
            wbuf.append(key)
        } else {
            binaryError(h, .keyNotFound)
        }
    }

    /// set/add/replace/append/prepend and their quiet forms (process_bin_update,
    /// process_bin_append_prepend, complete_update_bin). A non-zero CAS turns set/add/replace into a
    /// CAS store and makes append/prepend check it.
    private func binaryStore(_ h: BinaryRequestHeader, _ buf: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                             extras: UnsafeRawBufferPointer) -> Step {
        let op = h.opcode
        let fixed = h.fixedLength
        let isConcat = h.extrasLength == 0
        // memcached computes the value length in an int: a body length near 2^32 makes it negative.
        let vlen = Int(Int32(truncatingIfNeeded: h.bodyLength - h.keyLength - h.extrasLength))
        let flags = isConcat ? 0 : Binary.u32(extras, 0)
        let exptime = isConcat ? 0 : Int64(Binary.u32(extras, 4))
        let mode: StoreMode
        switch op {
        case BinaryOpcode.append, BinaryOpcode.appendq: mode = .append
        case BinaryOpcode.prepend, BinaryOpcode.prependq: mode = .prepend
        case _ where h.cas != 0: mode = .cas
        case BinaryOpcode.add, BinaryOpcode.addq: mode = .add
        case BinaryOpcode.replace, BinaryOpcode.replaceq: mode = .replace
        default: mode = .set
        }
        // memcached allocates the item before the value arrives: one it cannot hold is refused at once
        // and the value discarded as it comes.
        let ntotal = CacheStore.itemTotalSize(keyLength: key.count, valueLength: max(vlen, 0), flags: flags,
                                              casEnabled: store.config.casEnabled)
        if vlen < 0 || ntotal > store.config.itemSizeMax {
            if server.prefixStats.isOn { server.prefixStats.record(key, .set) }
            binaryError(h, .tooLarge, swallow: vlen)
            // A set that cannot store must not leave the old value behind.
            if op == BinaryOpcode.set || op == BinaryOpcode.setq { _ = store.delete(key, hash: store.hash(key)) }
            rbuf.consume(fixed)
            return .done
        }
        let classId = store.classId(forTotalSize: ntotal)
        guard dataBlockBuffered(end: fixed + vlen) else { return .needMore }
        if server.prefixStats.isOn { server.prefixStats.record(key, .set) }
        let value = UnsafeRawBufferPointer(rebasing: buf[fixed..<(fixed + vlen)])
        let r = runStoreItem(mode, key: key, flags: flags, exptime: exptime, value: value, casUnique: h.cas,
                             classId: classId)
        switch r.result {
        case .stored: binarySuccess(h, cas: r.cas)
        case .exists: binaryError(h, .keyExists)
        case .notFound: binaryError(h, .keyNotFound)
        case .outOfMemory:
            // memcached could not allocate the item (its text reply without "SERVER_ERROR ").
            binaryError(h, .outOfMemory, text: "Out of memory allocating item")
        case .notStored, .tooLarge:
            // memcached words a failed add as "exists" and a failed replace as "not found".
            switch mode {
            case .add: binaryError(h, .keyExists)
            case .replace: binaryError(h, .keyNotFound)
            default: binaryError(h, .notStored)
            }
        }
        rbuf.consume(fixed + vlen)
        return .done
    }

    /// incr/decr (complete_incr_bin): extras are the delta, the initial value and an expiration; a miss
    /// creates the item with the initial value unless the expiration is 0xffffffff. The reply is the new
    /// value as 8 bytes, with the item's CAS.
    private func binaryDelta(_ h: BinaryRequestHeader, key: UnsafeRawBufferPointer, extras: UnsafeRawBufferPointer) {
        let incr = h.opcode == BinaryOpcode.increment || h.opcode == BinaryOpcode.incrementq
        let delta = Binary.u64(extras, 0)
        let initial = Binary.u64(extras, 8)
        let expiration = Binary.u32(extras, 16)
        let create = expiration != 0xffff_ffff
        let r = runDelta(key, incr: incr, delta: delta, casUnique: h.cas, countMiss: !create)
        if r.casMismatch {
            binaryError(h, .keyExists)
            return
        }
        switch r.result {
        case .ok(let value, _): binaryCounter(h, value, cas: r.cas)
        case .nonNumeric: binaryError(h, .deltaBadValue)
        case .outOfMemory: binaryError(h, .outOfMemory, text: "Out of memory incrementing value")
        case .notFound:
            guard create else {
                binaryError(h, .keyNotFound)
                return
            }
            // An add of the initial value (memcached's store_item, which counts no set).
            var digits = String(initial)
            let made = digits.withUTF8 { v in
                store.storeItem(.add, key: key, hash: store.hash(key), flags: 0, exptime: Int64(expiration),
                                value: UnsafeRawBufferPointer(v), casUnique: 0, unlinkOnFailure: false,
                                options: MetaStoreOptions())
            }
            switch made.result {
            case .stored: binaryCounter(h, initial, cas: made.cas)
            case .tooLarge, .outOfMemory: binaryError(h, .outOfMemory, text: "Out of memory allocating new item")
            default: binaryError(h, .notStored)
            }
        }
    }

    private func binaryCounter(_ h: BinaryRequestHeader, _ value: UInt64, cas: UInt64) {
        if h.isQuiet { return }
        binaryHeader(h, body: 8, cas: cas)
        Binary.append64(wbuf, value)
    }

    /// flush/flushq: an optional 4-byte delay. With -F memcached refuses it as an auth failure and, unlike
    /// the text command, does not count it.
    private func binaryFlush(_ h: BinaryRequestHeader, extras: UnsafeRawBufferPointer) {
        if !server.settings.flushEnabled {
            binaryError(h, .authError)
            return
        }
        let delay = h.extrasLength == 4 ? Int64(Binary.u32(extras, 0)) : 0
        store.flushAll(delay: delay)
        stats.add(.flushCmds)
        binarySuccess(h)
    }
}
