import Foundation
import Tensors

/// Errors loading a text corpus.
public enum CorpusError: Error, CustomStringConvertible, Sendable {
    case missing(path: String, hint: String)
    case unreadable(path: String, reason: String)
    case tooSmall(path: String, bytes: Int, needed: Int)
    case checksumMismatch(path: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case .missing(let p, let hint): return "corpus file \(p) does not exist. \(hint)"
        case .unreadable(let p, let r): return "cannot read corpus file \(p): \(r)"
        case .tooSmall(let p, let n, let need):
            return "corpus \(p) has \(n) bytes; at least \(need) are needed (10% validation split must hold a context window plus one byte). Use a larger text file."
        case .checksumMismatch(let p, let e, let a):
            return "corpus \(p) has SHA-256 \(a) but its checksum file says \(e): the file was changed or truncated. Run `murmur data fetch --force` to fetch it again."
        }
    }
}

/// A byte-level text corpus split 90/10 into training and validation parts.
///
/// Tokens are bytes (vocabulary 256), so any file works. The split is positional: the first 90% of the
/// bytes train, the last 10% validate — nothing of the validation text leaks into training windows.
/// Immutable after construction; safe to share across threads.
public struct Corpus: Sendable {
    /// Every byte of the corpus.
    public let bytes: [UInt8]
    /// Index of the first validation byte.
    public let splitIndex: Int
    /// Where it was read from (for messages and checkpoints).
    public let source: String

    public var trainCount: Int { splitIndex }
    /// SHA-256 of the bytes (hex), computed once at load.
    public let sha256: String
    public var validationCount: Int { bytes.count - splitIndex }

    /// Wraps `bytes`, requiring both splits to hold at least one window of `contextLength + 1` bytes.
    public init(bytes: [UInt8], source: String, contextLength: Int = 1) throws(CorpusError) {
        let split = bytes.count * 9 / 10
        let need = contextLength + 1
        guard split >= need, bytes.count - split >= need else {
            throw .tooSmall(path: source, bytes: bytes.count, needed: need * 10 + 10)
        }
        self.bytes = bytes
        self.splitIndex = split
        self.source = source
        self.sha256 = SHA256Hex.hash(bytes)
    }

    /// Reads a text file as a corpus.
    public static func load(path: String, contextLength: Int, missingHint: String = "Pass an existing text file with --data FILE.") throws(CorpusError) -> Corpus {
        guard FileManager.default.fileExists(atPath: path) else { throw .missing(path: path, hint: missingHint) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try Corpus(bytes: [UInt8](data), source: path, contextLength: contextLength)
    }
}
