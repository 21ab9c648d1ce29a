import Foundation

/// Reading a run folder (`runs/<run>/<peer>/rounds.jsonl`, `heartbeats.jsonl`, `summary.json`,
/// `runs/<run>/pids.json`) for `up`, `status` and `report`. Read-only; tolerant of half-written
/// last lines (a peer may be writing while we read).
struct RunFiles {
    let directory: URL

    func peerDirectory(_ id: String) -> URL { directory.appendingPathComponent(id) }

    /// The last complete JSON line of a file, read from its tail only.
    static func lastLine(_ url: URL, tailBytes: Int = 8192) -> [String: Any]? {
        guard let h = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        let start = size > UInt64(tailBytes) ? size - UInt64(tailBytes) : 0
        try? h.seek(toOffset: start)
        guard let data = try? h.readToEnd() else { return nil }
        for line in data.split(separator: 0x0A).reversed() {
            if let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] { return obj }
        }
        return nil
    }

    /// Every JSON line of a file.
    static func lines(_ url: URL) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    func lastRound(_ id: String) -> [String: Any]? { Self.lastLine(peerDirectory(id).appendingPathComponent("rounds.jsonl")) }
    func rounds(_ id: String) -> [[String: Any]] { Self.lines(peerDirectory(id).appendingPathComponent("rounds.jsonl")) }
    func heartbeats(_ id: String) -> [[String: Any]] { Self.lines(peerDirectory(id).appendingPathComponent("heartbeats.jsonl")) }

    func summary(_ id: String) -> [String: Any]? {
        guard let d = FileManager.default.contents(atPath: peerDirectory(id).appendingPathComponent("summary.json").path) else { return nil }
        return try? JSONSerialization.jsonObject(with: d) as? [String: Any]
    }

    /// Seconds since the peer's heartbeat log last changed.
    func heartbeatAge(_ id: String) -> Double? {
        let path = peerDirectory(id).appendingPathComponent("heartbeats.jsonl").path
        guard let m = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return nil }
        return Date().timeIntervalSince(m)
    }

    var pidsURL: URL { directory.appendingPathComponent("pids.json") }

    func readPIDs() -> [String: Int32] {
        guard let d = FileManager.default.contents(atPath: pidsURL.path),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return [:] }
        return o.compactMapValues { ($0 as? Int).map(Int32.init) }
    }

    func writePIDs(_ pids: [String: Int32]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let d = try JSONSerialization.data(withJSONObject: pids.mapValues { Int($0) }, options: [.sortedKeys])
        try d.write(to: pidsURL, options: .atomic)
    }

    /// Whether `pid` is a live process.
    static func alive(_ pid: Int32) -> Bool { pid > 0 && kill(pid, 0) == 0 }
}
