// The little HTTP the metrics endpoint speaks: find the end of a request head, read its request line,
// and answer with a complete HTTP/1.1 response that closes the connection. Pure (no sockets).

enum HTTPRequest {
    /// Index just past the blank line that ends the head (`\r\n\r\n`, or a bare `\n\n`), if it arrived.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] == 10 {
                if i + 1 < bytes.count && bytes[i + 1] == 10 { return i + 2 }
                if i + 2 < bytes.count && bytes[i + 1] == 13 && bytes[i + 2] == 10 { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// The response to one request head; `page` is called only for a request that gets the page.
    static func reply(to head: ArraySlice<UInt8>, page: () -> String) -> String {
        let firstLine = head.prefix { $0 != 13 && $0 != 10 }
        let parts = firstLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self),
              let target = String(validating: parts[1], as: UTF8.self),
              let version = String(validating: parts[2], as: UTF8.self),
              version == "HTTP/1.0" || version == "HTTP/1.1", target.hasPrefix("/") || target.hasPrefix("http")
        else {
            return HTTPReply.status(400, "Bad Request", body: "not an HTTP/1.x request\n")
        }
        guard method == "GET" || method == "HEAD" else {
            return HTTPReply.status(405, "Method Not Allowed", body: "only GET and HEAD\n", extra: "Allow: GET, HEAD\r\n")
        }
        var path = Substring(target)
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<q] }
        if path.hasPrefix("http://") || path.hasPrefix("https://") {
            let afterScheme = path[path.index(path.firstIndex(of: ":")!, offsetBy: 3)...]
            path = afterScheme.firstIndex(of: "/").map { afterScheme[$0...] } ?? "/"
        }
        let headOnly = method == "HEAD"
        switch path {
        case "/metrics":
            return HTTPReply.ok(page(), contentType: "text/plain; version=0.0.4; charset=utf-8", headOnly: headOnly)
        case "/":
            return HTTPReply.ok("Cachet: Prometheus metrics at /metrics\n", contentType: "text/plain; charset=utf-8",
                                headOnly: headOnly)
        default:
            return HTTPReply.status(404, "Not Found", body: "only /metrics here\n")
        }
    }
}

enum HTTPReply {
    static func ok(_ body: String, contentType: String, headOnly: Bool) -> String {
        "HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Cache-Control: no-store\r\nConnection: close\r\n\r\n" + (headOnly ? "" : body)
    }

    static func status(_ code: Int, _ reason: String, body: String, extra: String = "") -> String {
        "HTTP/1.1 \(code) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + extra + "Connection: close\r\n\r\n" + body
    }
}
