import Tensors

/// Errors from loading parameters into a `GPTModel`.
public enum GPTModelError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A tensor the layout needs is absent from the supplied map.
    case missingParameter(String)
    /// A supplied tensor has the wrong number of elements for its slot.
    case wrongSize(name: String, expected: Int, actual: Int)
    /// The batch or sequence size requested at init is not positive or exceeds the context.
    case invalidCapacity(batch: Int, seqLen: Int, blockSize: Int)

    public var description: String {
        switch self {
        case .missingParameter(let n):
            return "GPT parameters: tensor '\(n)' is missing; the checkpoint was made for a different model config"
        case .wrongSize(let n, let e, let a):
            return "GPT parameters: tensor '\(n)' has \(a) values, the model needs \(e); check the model config matches the checkpoint"
        case .invalidCapacity(let b, let t, let bs):
            return "GPT model: batch \(b) and sequence length \(t) must be > 0 with sequence length ≤ blockSize \(bs)"
        }
    }
}

/// A GPT-2 shaped byte-level language model with hand-written forward and backward passes (llm.c
/// style): one flat parameter buffer, one flat gradient buffer in the same `layout`, and every
/// activation preallocated at init for batches up to `maxBatchSize` × `maxSeqLen`. `forward` and
/// `backward` allocate nothing.
///
/// Threading: not thread-safe; use one instance from one thread at a time. Internally forward and
/// backward split the batch over `threads` workers (each runs the whole network on its rows, weight
/// gradients are summed at the end). With one worker, BLAS uses the process-wide setting
/// (`BLAS.setThreads`); with several, BLAS is switched to one thread during the pass and switched
/// back afterwards — a process-wide change, so other threads calling BLAS at the same time (rare
/// outside tests) briefly see one BLAS thread. On the 2-core target `threads: 2` is the intended
/// configuration.
///
/// Ownership: the model owns `parameters` and `gradients`; the buffer pointers stay valid for the
/// model's lifetime and may be read or written in place (e.g. by an optimizer) between calls.
public final class GPTModel {
    public let config: GPTConfig
    /// Names, shapes and offsets of the tensors in `parameters` and `gradients`.
    public let layout: ParameterLayout
    public let maxBatchSize: Int
    public let maxSeqLen: Int
    /// Worker threads for forward/backward (≥ 1). The batch is split into this many slices of rows,
    /// each run through the whole network by one worker with single-threaded kernels. While more
    /// than one worker runs, the model sets BLAS to one thread and restores the caller's setting
    /// afterwards, so workers and BLAS threads never oversubscribe the cores.
    /// Each extra worker costs one extra gradient buffer (allocated on the first backward using it).
    public var threads: Int

    /// All parameters, laid out by `layout`.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// d(mean loss)/d(parameters) of the last `backward()`, same layout (overwritten by each backward).
    public let gradients: UnsafeMutableBufferPointer<Float>

    let buffers: GPTBuffers
    let blocks: [BlockOffsets]
    let wpeOffset: Int, lnfwOffset: Int, lnfbOffset: Int
    let inputs: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Int32>
    /// (B, T) of the last forward, and whether it had targets (needed by `backward`).
    public internal(set) var lastBatch = 0, lastSeqLen = 0
    var haveTargets = false
    /// Private weight-gradient buffers of workers 1..., `gradientShardCount × layout.totalCount`.
    var gradientShards: UnsafeMutablePointer<Float>
    var gradientShardCount = 0

    /// Builds a model with parameters initialised from `seed` (see `GPTParameters.initialize`).
    /// Throws `GPTConfigError` for an invalid config and `GPTModelError.invalidCapacity` when
    /// `maxBatchSize < 1` or `maxSeqLen` is not in `1...blockSize` (default: `blockSize`).
    public init(config: GPTConfig, maxBatchSize: Int = 1, maxSeqLen: Int? = nil, seed: UInt64 = 0,
                threads: Int = 1) throws {
        try config.validate()
        let T = maxSeqLen ?? config.blockSize
        guard maxBatchSize > 0, T > 0, T <= config.blockSize else {
            throw GPTModelError.invalidCapacity(batch: maxBatchSize, seqLen: T, blockSize: config.blockSize)
        }
        self.config = config
        self.maxBatchSize = maxBatchSize
        self.maxSeqLen = T
        self.threads = max(1, threads)
        let layout = GPTParameters.layout(for: config)
        self.layout = layout
        parameters = .allocate(capacity: layout.totalCount)
        parameters.initialize(repeating: 0)
        gradients = .allocate(capacity: layout.totalCount)
        gradients.initialize(repeating: 0)
        buffers = GPTBuffers(config: config, maxBatch: maxBatchSize, maxSeqLen: T)
        blocks = (0..<config.nLayer).map { BlockOffsets(layout: layout, block: $0) }
        wpeOffset = layout.slot(named: "transformer.wpe.weight")!.offset
        lnfwOffset = layout.slot(named: "transformer.ln_f.weight")!.offset
        lnfbOffset = layout.slot(named: "transformer.ln_f.bias")!.offset
        inputs = .allocate(capacity: maxBatchSize * T)
        inputs.initialize(repeating: 0, count: maxBatchSize * T)
        targets = .allocate(capacity: maxBatchSize * T)
        targets.initialize(repeating: 0, count: maxBatchSize * T)
        gradientShards = .allocate(capacity: 0)
        GPTParameters.initialize(parameters, config: config, seed: seed)
    }

    /// Makes sure `count` extra gradient buffers exist.
    func ensureGradientShards(_ count: Int) {
        guard count > gradientShardCount else { return }
        gradientShards.deallocate()
        gradientShards = .allocate(capacity: count * layout.totalCount)
        gradientShardCount = count
    }

    deinit {
        parameters.deallocate()
        gradients.deallocate()
        buffers.deallocate()
        inputs.deallocate()
        targets.deallocate()
        gradientShards.deallocate()
    }

    /// Number of parameters.
    public var parameterCount: Int { layout.totalCount }

    /// Logits (B, T, V) of the last forward, row-major; valid until the next forward.
    public var logits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: buffers.logits, count: lastBatch * lastSeqLen * config.vocabSize)
    }

    /// Softmax probabilities (B, T, V) of the last forward; valid until the next forward or backward.
    public var probabilities: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: buffers.probs, count: lastBatch * lastSeqLen * config.vocabSize)
    }

    /// Copies parameters in by name. Every tensor of `layout` must be present with the right size;
    /// extra names are ignored. On error nothing has been changed.
    public func loadParameters(from tensors: [String: [Float]]) throws {
        for slot in layout.slots {
            guard let values = tensors[slot.name] else { throw GPTModelError.missingParameter(slot.name) }
            guard values.count == slot.count else {
                throw GPTModelError.wrongSize(name: slot.name, expected: slot.count, actual: values.count)
            }
        }
        for slot in layout.slots {
            tensors[slot.name]!.withUnsafeBufferPointer { src in
                (parameters.baseAddress! + slot.offset).update(from: src.baseAddress!, count: slot.count)
            }
        }
    }

    /// Every parameter tensor by name (copies).
    public func exportParameters() -> [String: [Float]] { Self.export(parameters, layout: layout) }

    /// Every gradient tensor by name (copies) from the last `backward()`.
    public func exportGradients() -> [String: [Float]] { Self.export(gradients, layout: layout) }

    static func export(_ buf: UnsafeMutableBufferPointer<Float>, layout: ParameterLayout) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for slot in layout.slots { out[slot.name] = Array(buf[slot.range]) }
        return out
    }

    @inline(__always) func param(_ offset: Int) -> UnsafeMutablePointer<Float> { parameters.baseAddress! + offset }
    @inline(__always) func grad(_ offset: Int) -> UnsafeMutablePointer<Float> { gradients.baseAddress! + offset }
}
