// delete / incr / decr / touch (memcached's process_delete_command, process_arithmetic_command,
// process_touch_command): the text line is parsed into a typed request (MemcacheProtocol/TextRequests.swift),
// run by the protocol-independent operation (KeyOperations.swift), and answered in text.
import CacheStore
import MemcacheProtocol

extension CommandSession {
    /// Writes a refused line's CLIENT_ERROR (unless noreply silences it, as memcached's out_string does).
    @inline(__always) func refuse(_ f: TextRequestFailure) {
        reply(f.error.reply, noreply: f.noreply)
    }

    func processDelete(_ line: UnsafeRawBufferPointer) {
        let r: DeleteRequest
        switch DeleteRequest.parse(line, tokens) {
        case .success(let req): r = req
        case .failure(let f): refuse(f); return
        }
        let deleted = runDelete(r.key.bytes(in: line))
        reply(deleted ? Reply.deleted : Reply.notFound, noreply: r.noreply)
    }

    func processArithmetic(_ line: UnsafeRawBufferPointer, incr: Bool) {
        let r: ArithmeticRequest
        switch ArithmeticRequest.parse(line, tokens) {
        case .success(let req): r = req
        case .failure(let f): refuse(f); return
        }
        switch runDelta(r.key.bytes(in: line), incr: incr, delta: r.delta) {
        case .ok(let value, _):
            if !r.noreply {
                wbuf.appendDecimal(value)
                wbuf.append(Reply.crlf)
            }
        case .notFound: reply(Reply.notFound, noreply: r.noreply)
        case .nonNumeric: reply(Reply.nonNumeric, noreply: r.noreply)
        case .outOfMemory: reply(Reply.outOfMemory, noreply: r.noreply)
        }
    }

    func processTouch(_ line: UnsafeRawBufferPointer) {
        let r: TouchRequest
        switch TouchRequest.parse(line, tokens) {
        case .success(let req): r = req
        case .failure(let f): refuse(f); return
        }
        let hit = runTouch(r.key.bytes(in: line), exptime: positiveExptime(r.exptime)).isHit
        reply(hit ? Reply.touched : Reply.notFound, noreply: r.noreply)
    }
}
