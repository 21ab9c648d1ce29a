import Foundation

/// Appends JSON lines to a file (rounds.jsonl, heartbeats.jsonl). Each line is written with one
/// `write` call and flushed, so a reader (`murmur status`, `murmur logs --follow`) never sees half a
/// line unless the process dies inside that call. Thread-safe: the loop and the worker both log.
public final class JSONLWriter: @unchecked Sendable {
    // @unchecked: `handle` is only written to with `lock` held.
    private let lock = NSLock()
    private let handle: FileHandle?
    public let url: URL?

    /// Opens `url` for appending (creating folders and the file). `nil` discards every line.
    public init(url: URL?) throws {
        self.url = url
        guard let url else { handle = nil; return }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let h = try FileHandle(forWritingTo: url)
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle?.close() }

    /// Writes one object as a line. Keys are emitted in sorted order so lines diff well.
    public func write(_ object: [String: Any]) {
        guard let handle else { return }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        lock.withLock { handle.write(data) }
    }
}

/// Milliseconds since 1970, for log lines.
public func wallMillis() -> UInt64 { UInt64((Date().timeIntervalSince1970 * 1000).rounded()) }

/// A JSON-safe number: NaN and infinities become nil (JSON has none).
func jsonNumber(_ x: Float) -> Any { x.isFinite ? Double(x) : NSNull() }

/// RFC 3339 UTC time with milliseconds, e.g. `2026-11-24T19:35:07.242Z`.
public func rfc3339(millis: UInt64) -> String {
    var t = time_t(millis / 1000)
    var parts = tm()
    gmtime_r(&t, &parts)
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                  Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(millis % 1000))
}
