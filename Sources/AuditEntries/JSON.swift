/// A strict JSON value (RFC 8259) restricted to what entries may hold: no floating point.
public indirect enum JSONValue: Sendable, Equatable {
    /// A string.
    case string(String)
    /// An integer within ±2^53.
    case int(Int64)
    /// true or false.
    case bool(Bool)
    /// null.
    case null
    /// An array.
    case array([JSONValue])
    /// An object, keys in input order (duplicates are refused by the parser).
    case object([JSONMember])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let m) = self { return m.first { $0.key == key }?.value }
        return nil
    }

    /// The string, if this is one.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// One member of a JSON object. (A struct rather than a tuple: arrays of tuples cost a runtime
/// metadata lookup on every use.)
public struct JSONMember: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value.
    public var value: JSONValue

    /// A member.
    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// Why bytes are not acceptable JSON, with the byte offset.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// Where.
    public var offset: Int
    /// In words.
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A single-pass, non-recursive-descent-unbounded JSON parser: strict grammar, UTF-8
/// validated, duplicate keys refused, depth and size limited, never traps.
public struct JSONParser {
    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private let maxDepth: Int

    /// Parses one JSON value occupying all of `bytes` (surrounding whitespace allowed).
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 8) throws(JSONError) -> JSONValue {
        let r: Result<JSONValue, JSONError> = bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(b: buf, maxDepth: maxDepth)
            do throws(JSONError) {
                p.skipWS()
                let v = try p.value(depth: 0)
                p.skipWS()
                guard p.i == buf.count else { throw p.fail("unexpected data after the value") }
                return .success(v)
            } catch {
                return .failure(error)
            }
        }
        return try r.get()
    }

    private init(b: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.b = b
        self.maxDepth = maxDepth
    }

    private func fail(_ m: String) -> JSONError { JSONError(message: m, offset: i) }

    private mutating func skipWS() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard i < b.count else { throw fail("unexpected end of input") }
        switch b[i] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw fail("nested deeper than \(maxDepth) levels") }
            i += 1
            var members: [JSONMember] = []
            members.reserveCapacity(12)
            skipWS()
            if i < b.count, b[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            while true {
                skipWS()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                if members.contains(where: { $0.key == k }) { throw fail("duplicate key \"\(k)\"") }
                skipWS()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(k)\"") }
                i += 1
                skipWS()
                members.append(JSONMember(k, try value(depth: depth + 1)))
                skipWS()
                guard i < b.count else { throw fail("unterminated object") }
                if b[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if b[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(members)
                }
                throw fail("expected ',' or '}' in object")
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw fail("nested deeper than \(maxDepth) levels") }
            i += 1
            var items: [JSONValue] = []
            skipWS()
            if i < b.count, b[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                skipWS()
                items.append(try value(depth: depth + 1))
                skipWS()
                guard i < b.count else { throw fail("unterminated array") }
                if b[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if b[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                }
                throw fail("expected ',' or ']' in array")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .int(try number())
        default:
            throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { throw fail("unexpected end of input") }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
        i += n
    }

    private mutating func number() throws(JSONError) -> Int64 {
        let start = i
        var neg = false
        if b[i] == UInt8(ascii: "-") {
            neg = true
            i += 1
        }
        guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { throw fail("invalid number") }
        if b[i] == 0x30, i + 1 < b.count, b[i + 1] >= 0x30, b[i + 1] <= 0x39 {
            throw fail("numbers may not have leading zeros")
        }
        var v: Int64 = 0
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
            v = v * 10 + Int64(b[i] - 0x30)
            if v > 1 << 53 {
                i = start
                throw fail("integer out of range (must be within ±2^53)")
            }
            i += 1
        }
        if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i = start
            throw fail("floating-point numbers are not accepted; send an integer or a string")
        }
        return neg ? -v : v
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard i + 4 <= b.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x61...0x66: d = UInt32(c - 0x57)
            case 0x41...0x46: d = UInt32(c - 0x37)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws(JSONError) -> String {
        i += 1
        let start = i
        // Fast path: no escapes. Bytes all below 0x80 are valid UTF-8 as they are: only a
        // string with others is validated (`String(validating:)` instantiates generic metadata
        // on every call, a tenth of parsing an entry).
        var high: UInt8 = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let s = UnsafeBufferPointer(rebasing: b[start..<i])
                if high < 0x80 {
                    i += 1
                    return String(decoding: s, as: UTF8.self)
                }
                guard let str = String(validating: s, as: UTF8.self) else {
                    i = start
                    throw fail("string is not valid UTF-8")
                }
                i += 1
                return str
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in string (escape it)") }
            high |= c
            i += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: b[start..<i]))
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                guard let str = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                return str
            }
            if c < 0x20 { throw fail("control character in string (escape it)") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < b.count else { break }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if cp >= 0xD800 && cp < 0xDC00 {
                    guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate in \\u escape")
                    }
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("invalid surrogate pair") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                } else if cp >= 0xDC00 && cp < 0xE000 {
                    throw fail("lone surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(cp) else { throw fail("invalid code point") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw fail("invalid escape \\\(Character(Unicode.Scalar(e)))")
            }
        }
        throw fail("unterminated string")
    }
}

/// Canonical JSON (format-spec.md §5.1): the RFC 8785 (JCS) serialisation of the value, which
/// for what entries may hold (ASCII keys, integers, strings) means: no whitespace, object
/// members sorted by key bytes, strings escaped only where JSON requires, integers in decimal.
public enum CanonicalJSON {
    /// The canonical bytes of `v`.
    public static func encode(_ v: JSONValue) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(512)
        write(v, &out)
        return out
    }

    static func write(_ v: JSONValue, _ out: inout [UInt8]) {
        switch v {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let x): out.append(contentsOf: Array((x ? "true" : "false").utf8))
        case .int(let x): out.append(contentsOf: Array(String(x).utf8))
        case .string(let s): writeString(s, &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (k, x) in a.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                write(x, &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let m):
            out.append(UInt8(ascii: "{"))
            // Keys are sorted by their bytes (RFC 8785 order for the ASCII keys entries allow).
            let sorted =
                m.count < 2 || zip(m, m.dropFirst()).allSatisfy({ $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) })
                ? m : m.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (k, kv) in sorted.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                writeString(kv.key, &out)
                out.append(UInt8(ascii: ":"))
                write(kv.value, &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `s` as a JSON string literal (canonical escaping).
    public static func quoted(_ s: String) -> String {
        var out = [UInt8]()
        writeString(s, &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func writeString(_ s: String, _ out: inout [UInt8]) {
        var str = s
        let done: Bool = str.withUTF8 { u in
            // Fast path: nothing to escape, copy the bytes whole.
            for c in u where c < 0x20 || c == 0x22 || c == 0x5C { return false }
            out.append(0x22)
            out.append(contentsOf: u)
            out.append(0x22)
            return true
        }
        if done { return }
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(0x22)
        for c in s.utf8 {
            switch c {
            case 0x22:
                out.append(0x5C)
                out.append(0x22)
            case 0x5C:
                out.append(0x5C)
                out.append(0x5C)
            case 0x08:
                out.append(0x5C)
                out.append(UInt8(ascii: "b"))
            case 0x0C:
                out.append(0x5C)
                out.append(UInt8(ascii: "f"))
            case 0x0A:
                out.append(0x5C)
                out.append(UInt8(ascii: "n"))
            case 0x0D:
                out.append(0x5C)
                out.append(UInt8(ascii: "r"))
            case 0x09:
                out.append(0x5C)
                out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
            default: out.append(c)
            }
        }
        out.append(0x22)
    }
}
