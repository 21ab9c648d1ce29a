import Foundation
import Testing
@testable import MurmurCLI
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
