// `-Y` ASCII authentication (memcached 1.6.18's try_read_command_asciiauth): until a client logs in, the
// only thing read is a login — `set <any key> <any> <any> <n>\r\n` followed by `<n>` bytes `<user>
// <password>\r\n` — and every other line is answered `CLIENT_ERROR unauthenticated` (quit and meta
// commands included). A good login answers STORED and the session reads commands from then on; a bad one
// `CLIENT_ERROR authentication failure`. `auth_cmds` / `auth_errors` count the attempts.
//
// As in memcached, the replies of a login phase are not stacked: a reply written before memcached would
// have transmitted the previous one replaces it (several pipelined lines get one answer, the last).
// A line longer than 2048 bytes without a newline closes the connection.
//
// Superset (memcached 1.6.42 bounds it too): a login whose declared length exceeds `maxBlock` is answered
// `CLIENT_ERROR auth token too long` and the connection closes, instead of waiting for gigabytes.
import MemcacheProtocol

extension CommandSession {
    /// A login block is `user password\r\n`; an auth file line is far shorter than this.
    static let maxAuthBlock = 1024

    func authStep() -> Step {
        if let need = authBlockLength { return authBlock(need) }
        let buf = rbuf.readable
        if buf.count < 2 { return .needMore }
        guard let nl = buf.firstIndex(of: UInt8(ascii: "\n")) else {
            if buf.count <= 2048 { return .needMore }
            // memcached closes at once: a login reply it had not sent yet is lost with it.
            if let last = authReply, last.transmits == output.transmits { output.truncate(to: wbuf.head + last.mark) }
            return .close
        }
        var end = nl
        if end > 0 && buf[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: buf[0..<end])
        lastCmdTime = server.clock.currentTime
        tokens.tokenize(line)
        rbuf.consume(nl + 1)
        guard tokens.count >= 5, tokens.bytes(line, 0).elementsEqual("set".utf8),
              let size = Numbers.strtoul(tokens.bytes(line, 4)) else {
            authReply(Reply.unauthenticated)
            return .done
        }
        if Int(size) > CommandSession.maxAuthBlock {
            authReply(Reply.authTokenTooLong)
            closeAfterWrite = true
            return .done
        }
        authBlockLength = Int(size) + 2
        return authBlock(Int(size) + 2)
    }

    /// The login's `user password\r\n` block.
    private func authBlock(_ need: Int) -> Step {
        if rbuf.count < need {
            pendingNeed = need
            return .needMore
        }
        pendingNeed = 0
        authBlockLength = nil
        let block = UnsafeRawBufferPointer(rebasing: rbuf.readable[0..<need])
        defer { rbuf.consume(need) }
        if need < 2 || block[need - 2] != 0x0d || block[need - 1] != 0x0a {
            authReply(Reply.badCommandLineTermination)
            return .done
        }
        let payload = UnsafeRawBufferPointer(rebasing: block[0..<(need - 2)])
        tokens.tokenize(payload)
        guard tokens.count >= 2 else {
            authReply(Reply.badAuthenticationTokenFormat)
            return .done
        }
        stats.add(.authCmds)
        if server.authFile?.check(user: tokens.bytes(payload, 0), password: tokens.bytes(payload, 1)) == true {
            authenticated = true
            authReply(Reply.stored)
        } else {
            stats.add(.authErrors)
            authReply(Reply.authenticationFailure)
        }
        return .done
    }

    /// Writes a login-phase reply over the previous one when memcached would not have sent that yet.
    private func authReply(_ s: StaticString) {
        if let last = authReply, last.transmits == output.transmits {
            output.truncate(to: wbuf.head + last.mark)
        }
        authReply = (wbuf.count, output.transmits)
        wbuf.append(s)
    }
}
