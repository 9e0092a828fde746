/// Where and how to reach Redis.
public struct RedisConfiguration: Sendable, Hashable {
    /// Host name or IP address.
    public var host: String
    /// TCP port.
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

    /// A configuration for `host:port`.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(1),
        reconnectBackoff: Duration = .milliseconds(50), maximumReconnectBackoff: Duration = .seconds(2)
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
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// The password may be percent-encoded; an IPv6 host goes in brackets.
    /// - Throws: ``RedisError`` with code ``RedisError/Code/invalidConfiguration`` and a
    ///   message that says what is wrong (never the password itself).
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidConfiguration, "invalid Redis URL: \(why)")
        }
        guard url.hasPrefix("redis://") else { throw invalid("it must start with redis://") }
        var rest = Substring(url.dropFirst("redis://".count))
        self.init()

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

        var hostPart = rest
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
        host = String(hostPart)
        if let portPart {
            guard let value = Int(portPart), (1...65535).contains(value) else {
                throw invalid("the port must be a number from 1 to 65535")
            }
            port = value
        }
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else { throw invalid("the database must be a number, 0 or more") }
            database = value
        }
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
}

extension RedisConfiguration: CustomStringConvertible {
    /// The address without the password, for logs.
    public var description: String {
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "redis://\(credentials)\(shownHost):\(port)/\(database)"
    }
}
