import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RevokeCore
import RevokeHTTP

/// The context of every request: Hummingbird's, plus who is calling.
public struct RevokeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The name of the API key the request presented, once authorized; the audit's actor.
    public var actor: String?
    /// The connection, for a stream that must be cut off (a reader that does not keep up).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Bodies over 64 KiB are refused with 413.
    public var maxUploadSize: Int { Limits.maximumBodyBytes }
}

extension Request {
    /// The body of a JSON endpoint as a JSON object.
    /// - Throws: 415 unless the body is `application/json` (a charset is allowed), 413 over
    ///   64 KiB, 400 when it is not a JSON object.
    mutating func jsonObject(context: RevokeRequestContext) async throws -> [String: JSONValue] {
        try requireMediaType(MediaType.json)
        return try Self.jsonObject(from: try await collectBody(upTo: context.maxUploadSize))
    }

    /// Parses a body already read as a JSON object.
    /// - Throws: 400 when it is not valid JSON or not an object.
    static func jsonObject(from body: ByteBuffer) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try body.withUnsafeReadableBytes { try JSONValue(parsing: $0) }
        } catch {
            throw APIError.invalidRequest("the body is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else { throw APIError.invalidRequest("the body must be a JSON object") }
        return object
    }

    /// A form body (`application/x-www-form-urlencoded`, else 415) by field. An empty body is
    /// an empty form, whatever its `Content-Type` (or none): a POST with nothing in it misses
    /// a parameter (400), as OAuth's and OpenID's specifications answer it.
    mutating func form(context: RevokeRequestContext) async throws -> [String: String] {
        let body = try await collectBody(upTo: context.maxUploadSize)
        if body.readableBytes == 0 { return [:] }
        try requireMediaType(MediaType.form)
        return FormURLEncoded.parse(String(buffer: body))
    }

    /// A form body's non-empty field `name`, else 400 naming it (``form(context:)``).
    mutating func formField(_ name: String, context: RevokeRequestContext) async throws -> String {
        try Self.field(name, of: try await form(context: context))
    }

    /// A form's non-empty field `name`, else 400 naming it.
    static func field(_ name: String, of form: [String: String]) throws(APIError) -> String {
        guard let value = form[name], !value.isEmpty else { throw APIError.invalidRequest("the form needs a \(name)") }
        return value
    }

    /// Refuses a body that is not of this media type with 415.
    func requireMediaType(_ expected: String) throws {
        try Self.requireMediaType(expected, contentType: headers[.contentType])
    }

    /// Refuses a `Content-Type` (or none) that is not this media type with 415.
    static func requireMediaType(_ expected: String, contentType: String?) throws(APIError) {
        guard let contentType, mediaType(of: contentType, is: expected) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "the body must be \(expected)")
        }
    }

    /// Whether a `Content-Type` value names `expected` (lowercase ASCII), in any case, with any
    /// parameters (`; charset=utf-8`) and spaces around it; compared byte by byte, as it runs
    /// on every request.
    static func mediaType(of value: String, is expected: String) -> Bool {
        var type = value.utf8[...]
        if let semicolon = type.firstIndex(of: UInt8(ascii: ";")) { type = type[..<semicolon] }
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        while let first = type.first, isSpace(first) { type = type.dropFirst() }
        while let last = type.last, isSpace(last) { type = type.dropLast() }
        return type.elementsEqual(expected.utf8) { byte, wanted in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == wanted
        }
    }

    /// A path parameter, percent-decoded.
    func pathParameter(_ name: String, context: RevokeRequestContext) throws -> String {
        guard let raw = context.parameters.get(name), let decoded = raw.removingPercentEncoding else {
            throw APIError.invalidRequest("the \(name) in the path is not valid percent-encoded UTF-8")
        }
        return decoded
    }
}

/// A JSON response with keys in a stable order, written without `JSONEncoder` (the check
/// routes answer with it).
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status, headers: [.contentType: MediaType.jsonAnswer],
        body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
}

/// A JSON response with keys in a stable order.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(
        status: status, headers: [.contentType: MediaType.jsonAnswer],
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
