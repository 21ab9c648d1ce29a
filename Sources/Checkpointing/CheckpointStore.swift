import Foundation

/// A folder of numbered checkpoint files `<prefix>-<step, 8 digits>.safetensors`, newest last.
///
/// Saving is atomic (`AtomicFile`; folder mode 0700, files 0600) and prunes all but the newest `keep` files. Loading walks from
/// the newest file to the oldest and returns the first one the caller's `verify` accepts, reporting
/// every file it skipped and why — a truncated or bit-flipped newest file is never loaded, and the
/// previous good one is used instead. Not thread-safe; one store per peer.
public struct CheckpointStore: Sendable {
    public let directory: URL
    public let prefix: String
    public let keep: Int

    public init(directory: URL, prefix: String = "ckpt", keep: Int = 3) {
        self.directory = directory
        self.prefix = prefix
        self.keep = max(1, keep)
    }

    /// The file name used for `step`.
    public func url(forStep step: Int) -> URL {
        let digits = String(step)
        let padded = String(repeating: "0", count: max(0, 8 - digits.count)) + digits
        return directory.appendingPathComponent("\(prefix)-\(padded).safetensors")
    }

    /// Existing checkpoint files with their steps, oldest first.
    public func list() -> [(step: Int, url: URL)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        var out: [(Int, URL)] = []
        for n in names where n.hasPrefix(prefix + "-") && n.hasSuffix(".safetensors") {
            let mid = n.dropFirst(prefix.count + 1).dropLast(".safetensors".count)
            if let s = Int(mid) { out.append((s, directory.appendingPathComponent(n))) }
        }
        return out.sorted { $0.0 < $1.0 }.map { (step: $0.0, url: $0.1) }
    }

    /// Writes `bytes` as the checkpoint of `step`, then removes all but the newest `keep`.
    @discardableResult
    public func save(_ bytes: [UInt8], step: Int) throws(CheckpointStoreError) -> URL {
        // Checkpoints hold the whole model and optimizer state: folder 0700, files 0600.
        try AtomicFile.makePrivateDirectory(directory) { name in
            (name.hasPrefix(prefix + "-") && name.hasSuffix(".safetensors")) || (name.hasPrefix(".\(prefix)-") && name.contains(".tmp-"))
        }
        let u = url(forStep: step)
        try AtomicFile.write(bytes, to: u, mode: 0o600)
        let all = list()
        if all.count > keep {
            for old in all.prefix(all.count - keep) { try? FileManager.default.removeItem(at: old.url) }
        }
        return u
    }

    /// The newest checkpoint that `verify` accepts, plus the files skipped (path and reason).
    /// `verify` returns the decoded value or throws to reject the file.
    public func loadNewest<T>(verify: (URL, [UInt8]) throws -> T) throws(CheckpointStoreError) -> (value: T, url: URL, skipped: [String]) {
        var skipped: [String] = []
        for entry in list().reversed() {
            guard let data = FileManager.default.contents(atPath: entry.url.path) else {
                skipped.append("\(entry.url.lastPathComponent): unreadable")
                continue
            }
            do {
                let v = try verify(entry.url, [UInt8](data))
                return (v, entry.url, skipped)
            } catch {
                skipped.append("\(entry.url.lastPathComponent): \(error)")
            }
        }
        throw .noValidCheckpoint(directory: directory.path, rejected: skipped)
    }
}
