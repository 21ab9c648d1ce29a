/// Parsing and printing of the human durations used in topology files.
///
/// Accepted: a non-negative decimal number followed by `ms`, `s`, `m` or `h`
/// (`250ms`, `1s`, `1.5s`, `2m`). A bare number is rejected: the unit is never guessed.
public enum DurationText {
    /// Parses `text`; returns nil when it is not a valid duration.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        let units: [(String, Double)] = [("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        // "ms" must be tried before "m" and "s".
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = String(trimmed.dropLast(suffix.count))
            guard !number.isEmpty,
                  number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                  let value = Double(number), value.isFinite, value >= 0 else { return nil }
            let nanos = (value * scale * 1e9).rounded()
            guard nanos < 1e18 else { return nil }
            return .nanoseconds(Int64(nanos))
        }
        return nil
    }

    /// Formats a duration the way a topology file would write it (`250ms`, `1.5s`).
    public static func format(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        if ms < 1000 || ms % 100 != 0 { return "\(ms)ms" }
        return "\(Double(ms) / 1000)s"
    }
}

extension Duration {
    /// Whole milliseconds (truncated), for logs and socket options that take milliseconds.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in seconds as a Double, for arithmetic such as adaptive deadlines.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
