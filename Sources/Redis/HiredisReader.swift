import CHiredis

/// Owns one hiredis `redisReader`: bytes from the socket go in, complete replies come out as
/// ``RedisValue``s. Each C reply tree is copied into Swift values and freed at once.
///
/// Not thread-safe (neither is the C reader): a connection's channel handler owns it and uses
/// it only on its event loop.
final class HiredisReader {
    private var reader: UnsafeMutablePointer<redisReader>?

    /// Creates a reader.
    /// - Throws: ``RedisError`` if hiredis cannot allocate one.
    init() throws(RedisError) {
        guard let reader = redisReaderCreate() else {
            throw RedisError(.protocolError, "hiredis could not allocate a reply reader")
        }
        chiredis_reader_keep_buffer(reader)
        chiredis_reader_limit_elements(reader)
        self.reader = reader
    }

    deinit {
        if let reader { redisReaderFree(reader) }
    }

    /// Appends bytes read from the socket.
    func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        guard let reader, let base = bytes.baseAddress, !bytes.isEmpty else { return }
        if redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) != REDIS_OK {
            throw readerError(reader)
        }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws(RedisError) -> RedisValue? {
        guard let reader else { return nil }
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw readerError(reader) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.value(of: raw.assumingMemoryBound(to: redisReply.self))
    }

    private func readerError(_ reader: UnsafeMutablePointer<redisReader>) -> RedisError {
        RedisError(.protocolError, "unreadable reply from Redis: \(String(cString: chiredis_reader_errstr(reader)))")
    }

    /// Copies one reply tree into Swift values.
    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let node = reply.pointee
        switch node.type {
        case chiredis_reply_string, chiredis_reply_verb, chiredis_reply_bignum:
            return .bulkString(bytes(node.str, node.len))
        case chiredis_reply_status:
            return .simpleString(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case chiredis_reply_error:
            return .error(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case chiredis_reply_integer:
            return .integer(Int64(node.integer))
        case chiredis_reply_nil:
            return .null
        case chiredis_reply_double:
            return .double(chiredis_reply_dval(reply))
        case chiredis_reply_bool:
            return .boolean(node.integer != 0)
        case chiredis_reply_array, chiredis_reply_set, chiredis_reply_push, chiredis_reply_map:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(node.elements))
            if let children = node.element {
                for index in 0..<Int(node.elements) {
                    if let child = children[index] { elements.append(value(of: child)) } else { elements.append(.null) }
                }
            }
            return node.type == chiredis_reply_map ? .map(elements) : .array(elements)
        default:
            return .error("reply of unknown type \(node.type)")
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }
}
