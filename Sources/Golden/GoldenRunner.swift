import Foundation

/// The outcome of one golden case.
public struct GoldenCaseResult: Sendable {
    public enum Status: String, Sendable { case passed, failed, unsupported }
    /// Case file name (without directory).
    public var file: String
    /// Case name inside the file (or the file name for one-case files).
    public var name: String
    public var status: Status
    /// Measured worst errors or the reason for failure, one line.
    public var detail: String

    public init(file: String, name: String, status: Status, detail: String) {
        self.file = file
        self.name = name
        self.status = status
        self.detail = detail
    }
}

/// Errors reading golden case files.
public enum GoldenError: Error, CustomStringConvertible, Sendable {
    case unreadable(path: String, reason: String)
    case malformed(path: String, field: String)
    case noCases(directory: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read golden file \(p): \(r)"
        case .malformed(let p, let f): return "golden file \(p) is malformed at field '\(f)'"
        case .noCases(let d): return "no golden case files (*.json with a 'kind') found in \(d)"
        }
    }
}

/// Runs every golden case file of a directory, dispatching on the file's top-level `kind`.
public enum GoldenRunner {
    /// Runs every `*.json` file in `directory` (sorted by name). Files without a known `kind` are skipped.
    public static func run(directory: URL) throws -> [GoldenCaseResult] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else {
            throw GoldenError.unreadable(path: directory.path, reason: "not a readable directory")
        }
        var results: [GoldenCaseResult] = []
        var sawCase = false
        for name in names.sorted() where name.hasSuffix(".json") {
            let url = directory.appendingPathComponent(name)
            let obj = try loadJSON(url)
            guard let kind = obj["kind"] as? String else { continue }
            sawCase = true
            results += try run(kind: kind, object: obj, url: url)
        }
        if !sawCase { throw GoldenError.noCases(directory: directory.path) }
        return results
    }

    /// Runs one already-parsed case file.
    public static func run(kind: String, object: [String: Any], url: URL) throws -> [GoldenCaseResult] {
        switch kind {
        case "demo-chunk-sizes", "demo-dct-basis", "demo-transform", "demo-step":
            return try DemoGolden.verify(kind: kind, object: object, url: url)
        case "gpt":
            return try GPTGolden.verify(object: object, url: url)
        default:
            return [GoldenCaseResult(file: url.lastPathComponent, name: url.lastPathComponent,
                                     status: .unsupported, detail: "unknown kind '\(kind)'")]
        }
    }

    /// Parses a JSON object file.
    public static func loadJSON(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw GoldenError.unreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw GoldenError.unreadable(path: url.path, reason: "not a JSON object")
        }
        return obj
    }

    /// Where the shared golden folder is when running from a checkout (`../shared/golden`), or nil.
    public static func defaultSharedDirectory(from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> URL? {
        var dir = start
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("../shared/golden").standardizedFileURL
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
