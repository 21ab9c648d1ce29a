import DeMo
import Foundation
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

/// With overlap, a peer computes the next contribution before the previous step is applied; the
/// engine takes that gradient at the parameters its own pending payload predicts.
@Suite struct OverlapPredictionTests {
    func engine() throws -> GPTEngine {
        // One BLAS thread: a threaded GEMM's bits depend on how many workers were free while other
        // suites run beside this one.
        if BLAS.threads != 1 { BLAS.setThreads(1) }
        let text = Array(String(repeating: "Now is the winter of our discontent made glorious summer by this sun of York. ", count: 40).utf8)
        let corpus = try Corpus(bytes: text, source: "test", contextLength: 32)
        return try GPTEngine(model: try GPTModel(config: try GPTConfig.preset(named: "nano"), maxBatchSize: 2, seed: 9),
                             sampler: BatchSampler(corpus: corpus, seed: 9, batchSize: 2, seqLen: 32), peer: 0,
                             optimizer: .demo(DeMoConfig(decay: 0.999, topk: 8, chunk: 16, weightDecay: 0, valueFormat: .f32)),
                             schedule: .constant(3e-3), clipNorm: 1)
    }

    @Test func aloneThePredictedGradientIsTheSynchronousOneBitForBit() throws {
        // In order: contribute 0, apply 0, contribute 1.
        let inOrder = try engine()
        let a0 = try inOrder.contribute(step: 0).body
        try inOrder.apply(step: 0, contributions: [(0, a0)])
        let a1 = try inOrder.contribute(step: 1).body
        // Overlapped: contribute 0, contribute 1 (step 0 not applied yet), apply 0.
        let ahead = try engine()
        let b0 = try ahead.contribute(step: 0).body
        let before = ahead.digest()
        let b1 = try ahead.contribute(step: 1).body
        #expect(ahead.digest() == before, "the prediction must leave the parameters as they were")
        try ahead.apply(step: 0, contributions: [(0, b0)])
        #expect(b0 == a0 ? true : false, "two fresh engines give the same first contribution")
        #expect(b1 == a1 ? true : false, "one peer: its own payload is the whole step, so the prediction is exact")
        #expect(ahead.digest() == inOrder.digest())
    }

    @Test func withoutOverlapNothingIsPredicted() throws {
        // A contribution whose step was applied (or replaced by a snapshot) is never replayed.
        let e = try engine()
        let c0 = try e.contribute(step: 0).body
        try e.restore(snapshot: e.snapshot())
        let afterRestore = try e.contribute(step: 1).body
        let f = try engine()
        _ = try f.contribute(step: 0)
        try f.apply(step: 0, contributions: [])   // applied with nobody's contribution
        let afterEmpty = try f.contribute(step: 1).body
        #expect(afterRestore == afterEmpty ? true : false, "neither predicts from the dropped step-0 payload")
        #expect(!c0.isEmpty)
    }
}
