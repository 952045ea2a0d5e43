/// RFC 3339 UTC timestamps with millisecond precision, the only time format entries use.
public enum Timestamp {
    /// Milliseconds since the Unix epoch of an RFC 3339 UTC time ("…Z", optional fraction;
    /// `T` and `Z` in either case, as RFC 3339 §5.6 allows).
    public static func parse(_ s: String) -> Int64? {
        Array(s.utf8).withUnsafeBufferPointer { parse(bytes: $0) }
    }

    /// `parse` over UTF-8 bytes, without making a String.
    public static func parse(bytes u: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard u.count >= 20, u.last == UInt8(ascii: "Z") || u.last == UInt8(ascii: "z") else { return nil }
        func num(_ a: Int, _ n: Int) -> Int? {
            var v = 0
            for k in a..<a + n {
                guard k < u.count, u[k] >= 0x30, u[k] <= 0x39 else { return nil }
                v = v * 10 + Int(u[k] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), u[4] == 0x2D, let mo = num(5, 2), u[7] == 0x2D, let d = num(8, 2),
            u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"), let h = num(11, 2), u[13] == 0x3A,
            let mi = num(14, 2), u[16] == 0x3A, let sec = num(17, 2),
            (1...12).contains(mo), d >= 1, d <= daysIn(y, mo), h < 24, mi < 60, sec < 60
        else { return nil }
        var ms = 0
        var k = 19
        if u[k] == UInt8(ascii: ".") {
            k += 1
            var digits = 0
            while k < u.count - 1 {
                guard u[k] >= 0x30, u[k] <= 0x39, digits < 9 else { return nil }
                if digits < 3 { ms = ms * 10 + Int(u[k] - 0x30) }
                digits += 1
                k += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 3)..<3 { ms *= 10 }
        }
        guard k == u.count - 1 else { return nil }
        let days = daysFromCivil(y, mo, d)
        return (Int64(days) * 86400 + Int64(h * 3600 + mi * 60 + sec)) * 1000 + Int64(ms)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out`, byte by byte.
    public static func append(_ ms: Int64, to out: inout [UInt8]) {
        let secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let milli = Int(ms - secs * 1000)
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let rem = Int(secs - days * 86400)
        let (y, m, d) = civilFromDays(Int(days))
        @inline(__always) func digits(_ v: Int, _ n: Int) {
            var div = 1
            for _ in 1..<n { div *= 10 }
            var x = v
            while div > 0 {
                out.append(UInt8(48 + (x / div) % 10))
                x %= div
                div /= 10
            }
        }
        digits(y, 4)
        out.append(0x2D)
        digits(m, 2)
        out.append(0x2D)
        digits(d, 2)
        out.append(0x54)
        digits(rem / 3600, 2)
        out.append(0x3A)
        digits(rem / 60 % 60, 2)
        out.append(0x3A)
        digits(rem % 60, 2)
        out.append(0x2E)
        digits(milli, 3)
        out.append(0x5A)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func format(_ ms: Int64) -> String {
        if ms >= 0 && ms < 253_402_300_800_000 {
            var out = [UInt8]()
            out.reserveCapacity(24)
            append(ms, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        let secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let milli = Int(ms - secs * 1000)
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let rem = Int(secs - days * 86400)
        let (y, m, d) = civilFromDays(Int(days))
        func p(_ v: Int, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return
            "\(p(y, 4))-\(p(m, 2))-\(p(d, 2))T\(p(rem / 3600, 2)):\(p(rem / 60 % 60, 2)):\(p(rem % 60, 2)).\(p(milli, 3))Z"
    }

    static func daysIn(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
