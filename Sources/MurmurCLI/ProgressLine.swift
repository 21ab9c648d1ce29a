import Foundation

/// A progress line that refreshes in place on a terminal and prints plain lines otherwise (logs,
/// pipes, CI), at most one every `plainEvery` seconds so a log stays readable.
final class ProgressLine {
    let total: Int
    let isTTY: Bool
    let plainEvery: Double
    private var lastPlain = Date.distantPast
    private var lastText = ""
    private var lastTTY = Date.distantPast

    init(total: Int, plainEvery: Double = 5) {
        self.total = total
        self.isTTY = isatty(STDOUT_FILENO) == 1
        self.plainEvery = plainEvery
    }

    func update(step: Int, text: String) {
        lastText = text
        let now = Date()
        if isTTY {
            if now.timeIntervalSince(lastTTY) < 0.1 && step != total { return }
            lastTTY = now
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + text).utf8))
        } else if now.timeIntervalSince(lastPlain) >= plainEvery || step == total {
            lastPlain = now
            print(text)
            fflush(nil)
        }
    }

    /// A message on its own line, without losing the progress line.
    func log(_ s: String) {
        if isTTY { FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + s + "\n" + lastText).utf8)) } else { print(s); fflush(nil) }
    }

    func finish() { if isTTY { print("") } }

    /// "1h02m", "3m05s", "42s".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }
}
