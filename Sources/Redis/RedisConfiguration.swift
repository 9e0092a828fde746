/// Where and how to reach Redis: one server, or the primary that Sentinel names; in clear
/// text or over TLS.
public struct RedisConfiguration: Sendable, Hashable {
    /// Host name or IP address of the server (unused with ``sentinel``: the sentinels name it).
    public var host: String
    /// TCP port of the server.
    public var port: Int
    /// ACL user name (`AUTH user password`); nil for the default user.
    public var username: String?
    /// Password sent with `AUTH` on every new connection; nil for none.
    public var password: String?
    /// Database index selected with `SELECT` on every new connection.
    public var database: Int
    /// How long opening a connection and its handshake may take.
    public var connectTimeout: Duration
    /// How long a command may wait for its reply before the connection is dropped.
    public var commandTimeout: Duration
    /// First delay before a reconnection attempt; doubled after each failure.
    public var reconnectBackoff: Duration
    /// Longest delay between reconnection attempts.
    public var maximumReconnectBackoff: Duration
    /// TLS for every connection (to the sentinels too); nil for clear text.
    public var tls: RedisTLS?
    /// The sentinels to ask for the primary; nil to connect to ``host``:``port``.
    public var sentinel: RedisSentinelConfiguration?

    /// A configuration for `host:port`.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(1),
        reconnectBackoff: Duration = .milliseconds(50), maximumReconnectBackoff: Duration = .seconds(2),
        tls: RedisTLS? = nil, sentinel: RedisSentinelConfiguration? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectBackoff = reconnectBackoff
        self.maximumReconnectBackoff = maximumReconnectBackoff
        self.tls = tls
        self.sentinel = sentinel
    }

    /// The URL forms this configuration reads.
    public static let urlForms =
        "redis://[[user]:password@]host[:port][/db], rediss://... (TLS), "
        + "redis-sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db], rediss-sentinel://..."

    /// Parses one of:
    /// - `redis://[[user]:password@]host[:port][/db]` (port 6379 by default);
    /// - `rediss://...`, the same over TLS;
    /// - `redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]`, the
    ///   sentinels (port 26379 by default) to ask for the primary named `master-name`; the
    ///   credentials are the primary's;
    /// - `rediss-sentinel://...`, the same with TLS to the sentinels and the data nodes.
    ///
    /// The credentials and the master name may be percent-encoded; an IPv6 host goes in brackets.
    /// TLS files are not part of the URL: set ``tls`` (the scheme sets it to the system's trust).
    /// - Throws: ``RedisError`` with code ``RedisError/Code/invalidConfiguration`` and a
    ///   message that says what is wrong (never the password itself).
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidConfiguration, "invalid Redis URL: \(why)")
        }
        let schemes: [(prefix: String, tls: Bool, sentinel: Bool)] = [
            ("redis://", false, false), ("rediss://", true, false),
            ("redis-sentinel://", false, true), ("rediss-sentinel://", true, true),
        ]
        guard let scheme = schemes.first(where: { url.hasPrefix($0.prefix) }) else {
            throw invalid("it must start with redis://, rediss://, redis-sentinel:// or rediss-sentinel://")
        }
        var rest = Substring(url.dropFirst(scheme.prefix.count))
        self.init()
        if scheme.tls { tls = RedisTLS() }

        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let user: Substring
            let secret: Substring?
            if let colon = credentials.firstIndex(of: ":") {
                user = credentials[..<colon]
                secret = credentials[credentials.index(after: colon)...]
            } else {
                // `redis://secret@host` is the common shorthand for a password alone.
                user = ""
                secret = credentials
            }
            guard let decodedUser = Self.percentDecode(user), let decodedSecret = secret.map(Self.percentDecode) ?? nil
            else { throw invalid("bad percent-encoding in the credentials") }
            username = decodedUser.isEmpty ? nil : decodedUser
            password = decodedSecret.isEmpty ? nil : decodedSecret
        }

        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        let addresses = try rest.split(separator: ",", omittingEmptySubsequences: false).map { part throws(RedisError) in
            try Self.address(part, defaultPort: scheme.sentinel ? 26379 : 6379, invalid: invalid)
        }
        if scheme.sentinel {
            let segments = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let first = segments.first, !first.isEmpty, let masterName = Self.percentDecode(first) else {
                throw invalid("the master name is missing (redis-sentinel://host:port/master-name)")
            }
            guard masterName.utf8.count <= 256, masterName.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                throw invalid("the master name must be 1 to 256 bytes without spaces or control characters")
            }
            sentinel = RedisSentinelConfiguration(sentinels: addresses, masterName: masterName)
            (host, port) = (addresses[0].host, addresses[0].port)
            path = segments.count == 2 ? segments[1] : ""
        } else {
            guard addresses.count == 1 else { throw invalid("one host only (several are for redis-sentinel://)") }
            (host, port) = (addresses[0].host, addresses[0].port)
        }
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else { throw invalid("the database must be a number, 0 or more") }
            database = value
        }
    }

    /// `host[:port]` or `[v6]:port`.
    private static func address(
        _ text: Substring, defaultPort: Int, invalid: (String) -> RedisError
    ) throws(RedisError) -> RedisAddress {
        var hostPart = text
        var portPart: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw invalid("unclosed [ in the host") }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw invalid("unexpected text after the IPv6 host")
            }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portPart = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw invalid("the host is missing") }
        var port = defaultPort
        if let portPart {
            guard let value = Int(portPart), (1...65535).contains(value) else {
                throw invalid("the port must be a number from 1 to 65535")
            }
            port = value
        }
        return RedisAddress(host: String(hostPart), port: port)
    }

    private static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The same configuration aimed at one server (a sentinel, or the primary one named).
    func aimed(at address: RedisAddress) -> RedisConfiguration {
        var copy = self
        copy.host = address.host
        copy.port = address.port
        copy.sentinel = nil
        return copy
    }
}

/// A host and port.
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where the sentinels are and which primary to ask them for.
public struct RedisSentinelConfiguration: Sendable, Hashable {
    /// The sentinels, asked in turn (the last one that answered first).
    public var sentinels: [RedisAddress]
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
    public var masterName: String
    /// `requirepass` of the sentinels, when they have one (the URL's password is the primary's).
    public var password: String?

    public init(sentinels: [RedisAddress], masterName: String, password: String? = nil) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.password = password
    }
}

/// TLS settings for `rediss://`: whom to trust and, optionally, the client's own certificate.
/// The server's certificate is always verified, and the URL's host (or the address a sentinel
/// named) against it: a certificate that does not verify is a refused connection.
public struct RedisTLS: Sendable, Hashable {
    /// PEM file of the certificate authorities to trust; nil for the system's trust store.
    public var caFile: String?
    /// PEM file of the client certificate (chain), for servers that ask for one.
    public var certificateFile: String?
    /// PEM file of the client certificate's private key.
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// The address without the password, for logs.
    public var description: String {
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        if let sentinel {
            let scheme = tls == nil ? "redis-sentinel" : "rediss-sentinel"
            let hosts = sentinel.sentinels.map(\.description).joined(separator: ",")
            return "\(scheme)://\(credentials)\(hosts)/\(sentinel.masterName)/\(database)"
        }
        return "\(tls == nil ? "redis" : "rediss")://\(credentials)\(RedisAddress(host: host, port: port))/\(database)"
    }
}
