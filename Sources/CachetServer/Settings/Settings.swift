// TEMPORARY minimal settings (replaced by the full memcached-compatible parser).
import CacheStore
import CachetTLS

public enum ListenerTLS: Sendable { case inherit, none, basic, mutual }
public struct ListenerSpec: Sendable { public var host: String?; public var port: Int; public var tls: ListenerTLS }

public struct Settings: Sendable {
    public var port = 11211
    public var udpPort = 0
    public var inter: String? = nil
    public var listeners: [ListenerSpec] = []
    public var socketPath: String? = nil
    public var unixMask = 0o700
    public var shutdownEnabled = false
    public var daemonize = false
    public var user: String? = nil
    public var maxBytes = 64 << 20
    public var evictionsEnabled = true
    public var maxConns = 1024
    public var verbosity = 0
    public var pidFile: String? = nil
    public var growthFactor = 1.25
    public var chunkSize = 48
    public var numThreads = 4
    public var reqsPerEvent = 20
    public var casEnabled = true
    public var backlog = 1024
    public var itemSizeMax = 1 << 20
    public var flushEnabled = true
    public var idleTimeout = 0
    public var maxConnsFast = true
    public var tls = TLSSettings()
    public var storeConfig: StoreConfig {
        var c = StoreConfig()
        c.memoryLimit = maxBytes; c.chunkSize = chunkSize; c.growthFactor = growthFactor
        c.itemSizeMax = itemSizeMax; c.casEnabled = casEnabled; c.evictionsEnabled = evictionsEnabled
        return c
    }
    public init() {}
}

public enum SettingsOutcome { case run(Settings); case exit(code: Int32, stdout: String, stderr: String) }

public enum SettingsParser {
    public static func parse(_ args: [String]) -> SettingsOutcome {
        var s = Settings()
        var i = 1
        func next() -> String { i += 1; return i < args.count ? args[i] : "" }
        while i < args.count {
            let a = args[i]
            switch a {
            case "-p": s.port = Int(next()) ?? 11211
            case "-U": s.udpPort = Int(next()) ?? 0
            case "-l": s.inter = next()
            case "-s": s.socketPath = next()
            case "-t": s.numThreads = Int(next()) ?? 4
            case "-c": s.maxConns = Int(next()) ?? 1024
            case "-R": s.reqsPerEvent = Int(next()) ?? 20
            case "-m": s.maxBytes = (Int(next()) ?? 64) << 20
            case "-I": s.itemSizeMax = Int(next()) ?? (1 << 20)
            case "-u": s.user = next()
            case "-M": s.evictionsEnabled = false
            case "-C": s.casEnabled = false
            case "-A": s.shutdownEnabled = true
            case "-F": s.flushEnabled = false
            case "-v": s.verbosity += 1
            case "-o":
                let o = next()
                if o.hasPrefix("idle_timeout=") { s.idleTimeout = Int(o.dropFirst(13)) ?? 0 }
            default: break
            }
            i += 1
        }
        if let inter = s.inter {
            for part in inter.split(separator: ",") {
                let p = part.split(separator: ":")
                s.listeners.append(ListenerSpec(host: String(p[0]), port: p.count > 1 ? Int(p[1])! : s.port, tls: .inherit))
            }
        } else if s.port != 0 && s.socketPath == nil {
            s.listeners.append(ListenerSpec(host: nil, port: s.port, tls: .inherit))
        }
        return .run(s)
    }
}
