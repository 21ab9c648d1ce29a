import Tensors

/// One batch of token windows: `inputs` and `targets` are (B, T) row-major, `targets` shifted by one.
public struct TokenBatch: Sendable, Equatable {
    public var batchSize: Int
    public var seqLen: Int
    public var inputs: [Int32]
    public var targets: [Int32]

    public init(batchSize: Int, seqLen: Int) {
        self.batchSize = batchSize
        self.seqLen = seqLen
        inputs = [Int32](repeating: 0, count: batchSize * seqLen)
        targets = inputs
    }
}

/// Deterministic batches: the training batch of step s on peer p is a pure function of
/// (run seed, peer index, step), so N peers read different data with nobody handing it out, and a peer
/// that restarts from a checkpoint at step s reads exactly what it would have read.
///
/// Validation batches are fixed windows spread evenly over the validation split, the same on every
/// peer and every call, so validation losses are comparable across peers and runs.
public struct BatchSampler: Sendable {
    public let corpus: Corpus
    public let seed: UInt64
    public let batchSize: Int
    public let seqLen: Int

    /// SHA-256 of the corpus bytes (hex), recorded in checkpoints.
    public var corpusDigest: String { corpus.sha256 }

    public init(corpus: Corpus, seed: UInt64, batchSize: Int, seqLen: Int) {
        precondition(batchSize > 0 && seqLen > 0)
        self.corpus = corpus
        self.seed = seed
        self.batchSize = batchSize
        self.seqLen = seqLen
    }

    /// Fills `batch` with the training windows of (`peer`, `step`). Windows start anywhere in the
    /// training split such that the targets stay inside it.
    public func trainBatch(peer: Int, step: Int, into batch: inout TokenBatch) {
        var rng = SeededRNG(mixing: [seed, 0x7261_696E, UInt64(peer), UInt64(step)])
        let span = UInt64(corpus.trainCount - seqLen)  // start ∈ [0, span): start+seqLen < trainCount
        fill(&batch) { _ in Int(rng.next() % span) }
    }

    /// The same as `trainBatch(peer:step:into:)`, returning a new batch.
    public func trainBatch(peer: Int, step: Int) -> TokenBatch {
        var b = TokenBatch(batchSize: batchSize, seqLen: seqLen)
        trainBatch(peer: peer, step: step, into: &b)
        return b
    }

    /// Number of validation batches available with non-overlapping windows (at most `limit`).
    public func validationBatchCount(limit: Int) -> Int {
        let windows = (corpus.validationCount - 1) / seqLen
        return max(1, min(limit, windows / batchSize))
    }

    /// Validation batch `index` of `count`: windows evenly spaced over the validation split.
    public func validationBatch(index: Int, of count: Int, into batch: inout TokenBatch) {
        let total = count * batchSize
        let usable = corpus.validationCount - seqLen - 1
        fill(&batch) { b in
            let w = index * batchSize + b
            return corpus.splitIndex + (total <= 1 ? 0 : usable * w / (total - 1))
        }
    }

    private func fill(_ batch: inout TokenBatch, start: (Int) -> Int) {
        if batch.batchSize != batchSize || batch.seqLen != seqLen { batch = TokenBatch(batchSize: batchSize, seqLen: seqLen) }
        corpus.bytes.withUnsafeBufferPointer { src in
            batch.inputs.withUnsafeMutableBufferPointer { inp in
                batch.targets.withUnsafeMutableBufferPointer { tgt in
                    for b in 0..<batchSize {
                        let s = start(b)
                        for t in 0..<seqLen {
                            inp[b * seqLen + t] = Int32(src[s + t])
                            tgt[b * seqLen + t] = Int32(src[s + t + 1])
                        }
                    }
                }
            }
        }
    }
}
