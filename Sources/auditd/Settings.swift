import ArgumentParser
import Foundation

/// One setting of the daemon. The table `DaemonConfig.settings` is the only place a setting is
/// named: its JSON key (`segment_bytes`), its flag (`--segment-bytes`), its help, its range and
/// where it lands in `DaemonConfig` all come from its one row.
struct Setting: Sendable {
    /// How the value is written and where it goes.
    enum Field: @unchecked Sendable {
        case text(WritableKeyPath<DaemonConfig, String>)
        case optionalText(WritableKeyPath<DaemonConfig, String?>)
        case number(WritableKeyPath<DaemonConfig, Int>, ClosedRange<Int>)
        case optionalNumber(WritableKeyPath<DaemonConfig, Int?>, ClosedRange<Int>)
        case ids(WritableKeyPath<DaemonConfig, [UInt32]>)
        case texts(WritableKeyPath<DaemonConfig, [String]>)
    }

    /// The JSON key.
    let key: String
    /// The flag, without dashes; a list's flag is given once per value.
    let flag: String
    /// What it does.
    let help: String
    let field: Field

    init(_ key: String, flag: String? = nil, _ field: Field, _ help: String) {
        self.key = key
        self.flag = flag ?? key.replacingOccurrences(of: "_", with: "-")
        self.field = field
        self.help = help
    }

    /// Sets the value from a flag's text (a list's values are collected first).
    func apply(flag values: [String], to c: inout DaemonConfig) throws {
        guard let last = values.last else { return }
        func number(_ s: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--\(flag) '\(s)' is not a whole number")
            }
            try check(v, range)
            return v
        }
        switch field {
        case .text(let k): c[keyPath: k] = last
        case .optionalText(let k): c[keyPath: k] = last
        case .number(let k, let r): c[keyPath: k] = try number(last, r)
        case .optionalNumber(let k, let r): c[keyPath: k] = try number(last, r)
        case .ids(let k):
            c[keyPath: k] = try last.split(separator: ",").map {
                guard let v = UInt32($0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--\(flag): '\($0)' is not a numeric id")
                }
                return v
            }
        case .texts(let k): c[keyPath: k] = values
        }
    }

    /// Sets the value from the config file's JSON value.
    func apply(json value: JSONValue, to c: inout DaemonConfig, file: String) throws {
        func bad(_ what: String) -> ValidationError { ValidationError("config file \(file): \(key) must be \(what)") }
        func number(_ v: JSONValue, _ range: ClosedRange<Int>) throws -> Int {
            guard case .number(let i) = v else { throw bad("a whole number") }
            try check(i, range)
            return i
        }
        switch (field, value) {
        case (.text(let k), .text(let s)): c[keyPath: k] = s
        case (.optionalText(let k), .null): c[keyPath: k] = nil
        case (.optionalText(let k), .text(let s)): c[keyPath: k] = s
        case (.number(let k, let r), _): c[keyPath: k] = try number(value, r)
        case (.optionalNumber(let k, _), .null): c[keyPath: k] = nil
        case (.optionalNumber(let k, let r), _): c[keyPath: k] = try number(value, r)
        case (.ids(let k), .list(let a)):
            c[keyPath: k] = try a.map {
                guard case .number(let n) = $0, let v = UInt32(exactly: n) else { throw bad("an array of numeric ids") }
                return v
            }
        case (.texts(let k), .list(let a)):
            c[keyPath: k] = try a.map {
                guard case .text(let s) = $0 else { throw bad("an array of strings") }
                return s
            }
        case (.text, _), (.optionalText, _): throw bad("a string")
        case (.ids, _): throw bad("an array of numeric ids")
        case (.texts, _): throw bad("an array of strings")
        }
    }

    /// The range check, for values from either source (and for a config built in code).
    func check(_ v: Int, _ range: ClosedRange<Int>) throws {
        guard range.contains(v) else {
            let bound =
                range.upperBound == Int.max
                ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            throw ValidationError("\(key) \(v) must be \(bound)")
        }
    }

    /// Checks the value `c` holds (defaults and both sources end here).
    func validate(_ c: DaemonConfig) throws {
        switch field {
        case .number(let k, let r): try check(c[keyPath: k], r)
        case .optionalNumber(let k, let r): if let v = c[keyPath: k] { try check(v, r) }
        default: break
        }
    }

    /// The value `c` holds, as the help shows defaults.
    func shown(_ c: DaemonConfig) -> String {
        switch field {
        case .text(let k): return c[keyPath: k]
        case .optionalText(let k): return c[keyPath: k] ?? "(derived)"
        case .number(let k, _): return String(c[keyPath: k])
        case .optionalNumber(let k, _): return c[keyPath: k].map(String.init) ?? "(derived)"
        case .ids(let k): return c[keyPath: k].map(String.init).joined(separator: ",")
        case .texts(let k): return c[keyPath: k].isEmpty ? "none" : c[keyPath: k].joined(separator: ", ")
        }
    }

    /// One line of `--help`.
    var helpLine: String {
        let value: String
        switch field {
        case .number(_, let r), .optionalNumber(_, let r):
            value = r.upperBound == Int.max ? "N≥\(r.lowerBound)" : "\(r.lowerBound)…\(r.upperBound)"
        case .ids: value = "ID,ID"
        case .texts: value = "VALUE (repeatable)"
        default: value = "TEXT"
        }
        return "--\(flag) \(value)  [\(key); default \(shown(DaemonConfig()))]\n    \(help)"
    }
}

/// A value of the config file: what a setting can hold, or what it refuses.
enum JSONValue: Decodable, Sendable {
    case null
    case flag(Bool)
    case number(Int)
    case fraction(Double)
    case text(String)
    case list([JSONValue])
    case object

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .flag(b)
        } else if let i = try? c.decode(Int.self) {
            self = .number(i)
        } else if let d = try? c.decode(Double.self) {
            self = .fraction(d)
        } else if let s = try? c.decode(String.self) {
            self = .text(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .list(a)
        } else {
            _ = try c.decode([String: JSONValue].self)
            self = .object
        }
    }
}

/// The flags the table defines, pulled from the command line ArgumentParser left over.
enum SettingFlags {
    /// `--name value` and `--name=value` pairs, by setting; anything else is an error that says
    /// what the settings are.
    static func parse(_ args: [String]) throws -> [(Setting, [String])] {
        let byFlag = Dictionary(uniqueKeysWithValues: DaemonConfig.settings.map { ($0.flag, $0) })
        var values: [String: [String]] = [:]
        var order: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            guard a.hasPrefix("--") else { throw ValidationError("unexpected argument '\(a)'; see auditd --help") }
            var name = String(a.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard byFlag[name] != nil else {
                throw ValidationError(
                    "unknown option '--\(name)' (the settings are: \(DaemonConfig.settings.map { "--" + $0.flag }.joined(separator: ", ")))"
                )
            }
            if value == nil {
                guard i + 1 < args.count else { throw ValidationError("--\(name) needs a value") }
                value = args[i + 1]
                i += 1
            }
            if values[name] == nil { order.append(name) }
            values[name, default: []].append(value ?? "")
            i += 1
        }
        return order.compactMap { n in byFlag[n].map { ($0, values[n] ?? []) } }
    }
}
