import Foundation
import RevokeCore
import Testing

@Suite struct JSONParserTests {
    static let valid = [
        #"{}"#, #"[]"#, #" {"a" : [1, -2, 3.5, 1e3, -0.25E-2, 0, 123456789012345678901234567890] } "#,
        #"{"jti":"a\"b\\c\/d\u00e9\ud83d\udd11\n\t\r\b\f","iat":1700000000,"claims":{"sub":"alice"}}"#,
        #"[true,false,null,"",{"x":{"y":[[]]}}]"#, #""plain""#, #"42"#, #"{"é漢字🔑":"\u0000"}"#,
        "\t\r\n[ 1 , 2 ]\n",
    ]

    @Test(arguments: valid)
    func agreesWithJSONDecoder(_ text: String) throws {
        let ours = try JSONValue(parsing: Array(text.utf8))
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == foundation)
    }

    static let invalid = [
        "", " ", "{", "}", "[1,]", #"{"a":1,}"#, "01", "-", "1.", ".5", "1e", "+1", "NaN", "Infinity", "1e999",
        #"{'a':1}"#, #"{"a" 1}"#, #"{a:1}"#, "[1 2]", "tru", "nul", "true false", #""unterminated"#,
        "\"tab\there\"", #""\x""#, #""\u12""#, #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, "// c\n1", "[1]x",
        #"{"k":1,"k":2}"#, #"{"a":{"jti":"x","jti":"y"}}"#,
    ]

    @Test(arguments: invalid)
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect((try? JSONValue(parsing: Array(fine.utf8))) != nil)
        // Far too deep for any stack: refused, not a crash.
        let hostile = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Array(hostile.utf8)) }
    }

    @Test func reportsWhereItWentWrong() {
        #expect(throws: JSONParseError(reason: "expected ',' or ']'", offset: 3)) { try JSONValue(parsing: Array("[1 2]".utf8)) }
    }

    @Test(arguments: valid)
    func writesWhatJSONEncoderWrites(_ text: String) throws {
        let value = try JSONValue(parsing: Array(text.utf8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let ours = value.serialized()
        #expect(try JSONValue(parsing: ours) == value)
        // Integers and strings are written byte for byte as JSONEncoder writes them.
        if !text.contains(".") && !text.contains("e") && !text.contains("E") && !text.contains("123456789012") {
            #expect(String(decoding: ours, as: UTF8.self) == String(decoding: try encoder.encode(value), as: UTF8.self))
        }
    }
}
