import Foundation
import RevokeCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Printing: tables for people, JSON for scripts, progress on a terminal, errors on one line.
enum Terminal {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("revokectl: \(message)\n".utf8))
    }

    static func json(_ value: JSONValue) {
        print(String(decoding: value.serialized(), as: UTF8.self))
    }

    /// Whether standard error is a terminal (progress is shown only there).
    static var showsProgress: Bool { isatty(STDERR_FILENO) == 1 }

    /// Rewrites the progress line on standard error.
    static func progress(_ text: String) {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
    }

    static func endProgress() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    /// Columns padded to their widest cell; the first row is the header.
    static func table(_ rows: [[String]]) {
        guard let columns = rows.map(\.count).max() else { return }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  "))
        }
    }

    /// A record as `name  value` lines, times shown as dates.
    static func record(_ object: [String: JSONValue], order: [String]) {
        let names = order.filter { object[$0] != nil } + object.keys.filter { !order.contains($0) }.sorted()
        table(names.map { name in [name.replacingOccurrences(of: "_", with: " "), text(object[name]!, name: name)] })
    }

    /// A value for people: times (`*_at`, `before`) as UTC dates, null as "never" or "-".
    static func text(_ value: JSONValue, name: String) -> String {
        let isTime = name.hasSuffix("_at") || name == "before" || name == "at"
        switch value {
        case .null: return name == "expires_at" ? "never" : "-"
        case .bool(let flag): return flag ? "yes" : "no"
        case .string(let string): return string.isEmpty ? "-" : string
        case .number(let number) where isTime: return Times.describe(number)
        case .number(let number): return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        default: return String(decoding: value.serialized(), as: UTF8.self)
        }
    }
}

/// Times on the command line and on screen.
enum Times {
    /// Unix seconds, an ISO 8601 date (`2026-12-01T00:00:00Z`, or a day `2026-12-01`), `now`,
    /// or a duration from now (`+90m`, `+24h`, `+7d`) or before it (`-2h`).
    static func parse(_ text: String, now: Date = Date()) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "now" { return Int64(now.timeIntervalSince1970) }
        if let seconds = Int64(trimmed) { return seconds }
        if let sign = trimmed.first, sign == "+" || sign == "-", let unit = trimmed.last,
            let amount = Int64(trimmed.dropFirst().dropLast()), amount >= 0, amount < 1_000_000_000
        {
            let scale: Int64? = switch unit {
            case "s": 1
            case "m": 60
            case "h": 3600
            case "d": 86400
            default: nil
            }
            guard let scale else { return nil }
            let offset = amount * scale * (sign == "-" ? -1 : 1)
            return Int64(now.timeIntervalSince1970) + offset
        }
        let full = ISO8601DateFormatter()
        if let date = full.date(from: trimmed) { return Int64(date.timeIntervalSince1970) }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let date = day.date(from: trimmed) { return Int64(date.timeIntervalSince1970) }
        return nil
    }

    static let timeHelp = "Unix seconds, an ISO 8601 date, now, or +90m / +24h / +7d from now"

    static func describe(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e11 else { return String(seconds) }
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
