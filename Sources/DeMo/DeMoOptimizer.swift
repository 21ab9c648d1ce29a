import Dispatch
import Tensors

/// DeMo hyper-parameters that do not change during a run (the learning rate is passed per step).
public struct DeMoConfig: Sendable, Hashable, Codable {
    /// Momentum decay β in [0, 1): `residual = β·residual + lr·g`.
    public var decay: Double
    /// Coefficients sent per chunk (clamped per tensor to [1, chunk elements]).
    public var topk: Int
    /// Target chunk size T per dimension (the chunk is the largest divisor of the size <= T).
    public var chunk: Int
    /// Decoupled weight decay: `p *= 1 - lr·wd` before the sign step (0 = off).
    public var weightDecay: Double
    /// Wire format of the transmitted values (`f32` reproduces the reference exactly).
    public var valueFormat: DeMoValueFormat
    /// How `apply` combines the contributors' coefficients (`mean` is the reference's rule).
    public var aggregate: DeMoAggregate
    /// The per-chunk transform: the DCT (the paper) or none (top-k of the raw entries).
    public var transform: DeMoTransform

    public init(decay: Double = 0.999, topk: Int = 32, chunk: Int = 64, weightDecay: Double = 0,
                valueFormat: DeMoValueFormat = .bf16, aggregate: DeMoAggregate = .clipped,
                transform: DeMoTransform = .dct) {
        self.decay = decay
        self.topk = topk
        self.chunk = chunk
        self.weightDecay = weightDecay
        self.valueFormat = valueFormat
        self.aggregate = aggregate
        self.transform = transform
    }

    private enum CodingKeys: String, CodingKey { case decay, topk, chunk, weightDecay, valueFormat, aggregate, transform }

    /// Decodes a config; one written before `aggregate` existed gets the default (`clipped`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        decay = try c.decode(Double.self, forKey: .decay)
        topk = try c.decode(Int.self, forKey: .topk)
        chunk = try c.decode(Int.self, forKey: .chunk)
        weightDecay = try c.decode(Double.self, forKey: .weightDecay)
        valueFormat = try c.decode(DeMoValueFormat.self, forKey: .valueFormat)
        aggregate = try c.decodeIfPresent(DeMoAggregate.self, forKey: .aggregate) ?? .clipped
        transform = try c.decodeIfPresent(DeMoTransform.self, forKey: .transform) ?? .dct
    }
}

/// The per-chunk transform DeMo compresses in.
public enum DeMoTransform: String, Sendable, Hashable, Codable, CaseIterable {
    /// The 2-D DCT-II of each chunk (the paper; energy compacts into few coefficients).
    case dct
    /// None: the chunk's own entries are the coefficients (SparseLoCo/Templar's choice). Same
    /// code path with identity bases, so payloads, codec and plan are unchanged.
    case none
}

/// How `DeMoOptimizer.apply` combines the contributions of one step (DESIGN §DeMo, "Robust
/// aggregation").
public enum DeMoAggregate: String, Sendable, Hashable, Codable, CaseIterable {
    /// Per-coefficient mean over the contributors that sent it (the reference). One loud peer's
    /// coefficients outweigh everyone else's and take over the sign of every step.
    case mean
    /// Per tensor, each contributor's values are scaled by `min(1, median / norm)` (L2 norms of
    /// its coefficients for that tensor; the lower median over the contributors with a non-zero
    /// norm), then the mean. The identity when norms are equal or there is one contributor.
    case clipped
}

/// The DeMo optimizer of one peer over a flat `ParameterLayout`.
///
/// * `prepare` (local): `residual = β·residual + lr·g`, per-chunk DCT, top-k per chunk, quantize to
///   the value format, `residual -= IDCT(sent)`; returns the payload to broadcast.
/// * `apply` (global): per-coefficient mean over the peers that sent it, IDCT, sign, decoupled
///   weight decay, `p += -lr·sign`. Deterministic: contributions are sorted by peer id and summed in
///   that order with plain loops (no BLAS), so peers applying the same set end bit-identical.
///
/// Ownership/threading: a value type owning the residual (`layout.totalCount` floats, same layout
/// as the parameters). Use from one thread at a time; `prepare` uses BLAS (multi-threaded inside).
public struct DeMoOptimizer: Sendable {
    public let layout: ParameterLayout
    public let config: DeMoConfig
    public let plan: DeMoPlan
    @_spi(DeMoInternals) public let transforms: [ChunkTransform]
    /// The error-feedback momentum, one float per parameter (checkpoint it with the parameters).
    public private(set) var residual: [Float]

    /// Largest accepted target chunk size.
    public static let maxChunk = 4096

    /// Builds the plan and DCT bases. Throws `DeMoError.badHyperparameter` for decay outside
    /// [0, 1), topk/chunk < 1, chunk > `maxChunk` or a negative/non-finite weight decay.
    public init(layout: ParameterLayout, config: DeMoConfig) throws {
        guard config.decay >= 0, config.decay < 1 else {
            throw DeMoError.badHyperparameter("decay \(config.decay) must be in [0, 1)")
        }
        guard config.topk >= 1, config.chunk >= 1 else {
            throw DeMoError.badHyperparameter("topk (\(config.topk)) and chunk (\(config.chunk)) must be >= 1")
        }
        // Every chunk size gets a dense n×n basis: cap it so a typo cannot allocate gigabytes.
        guard config.chunk <= Self.maxChunk else {
            throw DeMoError.badHyperparameter("chunk \(config.chunk) is above \(Self.maxChunk); the paper uses 64")
        }
        guard config.weightDecay.isFinite, config.weightDecay >= 0 else {
            throw DeMoError.badHyperparameter("weight decay \(config.weightDecay) must be finite and >= 0")
        }
        self.layout = layout
        self.config = config
        plan = DeMoPlan(layout: layout, chunk: config.chunk, topk: config.topk)
        var bases: [Int: DCTBasis] = [:]
        for n in plan.chunkSizes { bases[n] = config.transform == .dct ? DCTBasis(n: n) : DCTBasis(identity: n) }
        transforms = plan.tensors.map { ChunkTransform(plan: $0, bases: bases) }
        residual = [Float](repeating: 0, count: layout.totalCount)
    }

    /// Replaces the residual (e.g. from a checkpoint). Must have `layout.totalCount` finite floats.
    public mutating func setResidual(_ r: [Float]) throws {
        guard r.count == layout.totalCount else {
            throw DeMoError.bufferSize(what: "residual", expected: layout.totalCount, got: r.count)
        }
        for tp in plan.tensors {
            if let i = r[tp.range].firstIndex(where: { !$0.isFinite }) {
                throw DeMoError.nonFiniteResidual(tensor: tp.name, index: i - tp.offset)
            }
        }
        residual = r
    }

    /// Local half of a step. `gradients` holds this peer's gradient in the layout
    /// (`layout.totalCount` floats); `lr` is this step's learning rate. Throws
    /// `DeMoError.missingGradient`/`.nonFiniteGradient`/`.bufferSize` without touching the residual.
    public mutating func prepare(gradients: UnsafeBufferPointer<Float>, lr: Double) throws -> DeMoPayload {
        try prepareTraced(gradients: gradients, lr: lr, trace: false).payload
    }

    /// `prepare`, optionally recording per-tensor intermediates (encoded coefficients and local
    /// estimate, tensor layout) for the golden checks.
    @_spi(DeMoInternals)
    public mutating func prepareTraced(gradients: UnsafeBufferPointer<Float>, lr: Double, trace: Bool) throws
        -> (payload: DeMoPayload, traces: [DeMoTensorTrace]) {
        try prepareTraced(gradients: gradients, lr: lr, trace: trace, threads: nil)
    }

    /// `prepareTraced` with a forced thread count for every large tensor (nil: automatic), for tests.
    mutating func prepareTraced(gradients: UnsafeBufferPointer<Float>, lr: Double, trace: Bool, threads forced: Int?) throws
        -> (payload: DeMoPayload, traces: [DeMoTensorTrace]) {
        try validateGradients(gradients, lr: lr)
        let decay = Float(config.decay), lrF = Float(lr)
        let format = config.valueFormat
        let plan = self.plan, transforms = self.transforms
        let threads = max(1, forced ?? Self.applyThreads)
        // Bands of a large tensor are spread over worker threads, each running single-threaded BLAS
        // (OpenBLAS's own threads would only spin between the small per-band products, on the cores
        // the scalar top-k and sparse IDCT need). BLAS is single-threaded for every tensor: OpenBLAS
        // splits a product differently with more threads and the bits can change. So every band's
        // arithmetic is the same whichever thread runs it and however many there are.
        let savedBLAS = BLAS.threads
        if savedBLAS != 1 { BLAS.setThreads(1) }
        defer { if savedBLAS != 1 { BLAS.setThreads(savedBLAS) } }
        var tensors: [DeMoTensorPayload] = []
        var traces: [DeMoTensorTrace] = []
        residual.withUnsafeMutableBufferPointer { res in
            for (t, tp) in plan.tensors.enumerated() {
                let tr = transforms[t]
                var idx = [UInt32](repeating: 0, count: tp.sentCount)
                var val = [Float](repeating: 0, count: tp.sentCount)
                var scales = [Float](repeating: 0, count: format.hasChunkScale ? tp.chunkCount : 0)
                var trEnc = [Float](repeating: 0, count: trace ? tp.count : 0), trEst = trEnc
                idx.withUnsafeMutableBufferPointer { ib in
                    val.withUnsafeMutableBufferPointer { vb in
                        scales.withUnsafeMutableBufferPointer { sb in
                            trEnc.withUnsafeMutableBufferPointer { eb in
                                trEst.withUnsafeMutableBufferPointer { xb in
                                    let job = PrepareBands(
                                        tp: tp, tr: tr, residual: res.baseAddress! + tp.offset,
                                        gradient: gradients.baseAddress! + tp.offset,
                                        indices: ib.baseAddress, values: vb.baseAddress, scales: sb.baseAddress,
                                        traceEncoded: trace ? eb.baseAddress : nil, traceEstimate: trace ? xb.baseAddress : nil,
                                        decay: decay, lr: lrF, format: format)
                                    let big = forced != nil || tp.count >= Self.prepareParallelThreshold
                                    let workers = big ? min(threads, tp.gridRows) : 1
                                    if workers <= 1 {
                                        job.run(bands: 0..<tp.gridRows)
                                    } else {
                                        DispatchQueue.concurrentPerform(iterations: workers) { w in
                                            job.run(bands: (tp.gridRows * w / workers)..<(tp.gridRows * (w + 1) / workers))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                if trace { traces.append(DeMoTensorTrace(encoded: trEnc, localEstimate: trEst)) }
                tensors.append(DeMoTensorPayload(chunkCount: tp.chunkCount, k: tp.k, indices: idx,
                                                 values: val, scales: scales))
            }
        }
        return (DeMoPayload(format: format, tensors: tensors), traces)
    }

    /// Tensors with at least this many elements are prepared on several threads.
    static var prepareParallelThreshold: Int { 1 << 16 }

    private func validateGradients(_ g: UnsafeBufferPointer<Float>, lr: Double) throws {
        guard lr.isFinite, lr >= 0 else { throw DeMoError.badHyperparameter("learning rate \(lr) must be finite and >= 0") }
        for tp in plan.tensors {
            guard tp.range.upperBound <= g.count else {
                throw DeMoError.missingGradient(tensor: tp.name, needed: tp.range.upperBound, available: g.count)
            }
            for i in tp.range where !g[i].isFinite {
                throw DeMoError.nonFiniteGradient(tensor: tp.name, index: i - tp.offset)
            }
        }
        guard g.count == layout.totalCount else {
            throw DeMoError.bufferSize(what: "gradient buffer", expected: layout.totalCount, got: g.count)
        }
    }

    /// Writes the IDCT of a sparse tensor payload (`k` ascending coefficients per chunk) into `out`
    /// (tensor layout, `tp.count` floats), band by band with `SparseIDCT`.
    @_spi(DeMoInternals)
    public static func sparseDecode(_ tp: DeMoTensorPlan, _ tr: ChunkTransform, _ idx: [UInt32], _ val: [Float],
                                    into out: UnsafeMutablePointer<Float>) {
        var dec = SparseIDCT(rowBasis: tr.rowBasis, colBasis: tr.colBasis)
        let perBand = tp.gridCols * tp.k
        idx.withUnsafeBufferPointer { ip in
            val.withUnsafeBufferPointer { vp in
                for y in 0..<tp.gridRows {
                    dec.decodeBand(tp, idx: ip.baseAddress! + y * perBand, val: vp.baseAddress! + y * perBand,
                                   into: out + y * tr.bandCount)
                }
            }
        }
    }
}

/// The local half of a step for a range of chunk bands of one tensor. Holds raw pointers into the
/// residual, the gradient and the payload arrays; every band reads and writes only its own slice of
/// them, so workers given disjoint band ranges never share memory (hence `@unchecked Sendable`).
private struct PrepareBands: @unchecked Sendable {
    let tp: DeMoTensorPlan
    let tr: ChunkTransform
    let residual: UnsafeMutablePointer<Float>
    let gradient: UnsafePointer<Float>
    let indices: UnsafeMutablePointer<UInt32>?, values: UnsafeMutablePointer<Float>?, scales: UnsafeMutablePointer<Float>?
    let traceEncoded: UnsafeMutablePointer<Float>?, traceEstimate: UnsafeMutablePointer<Float>?
    let decay: Float, lr: Float
    let format: DeMoValueFormat

    func run(bands: Range<Int>) {
        guard !bands.isEmpty, let indices, let values else { return }
        let band = tr.bandCount, perBand = tp.gridCols * tp.k
        let work = UnsafeMutablePointer<Float>.allocate(capacity: max(1, band))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, band))
        defer { work.deallocate(); scratch.deallocate() }
        var dec = SparseIDCT(rowBasis: tr.rowBasis, colBasis: tr.colBasis)
        let decay = self.decay, lrF = self.lr
        for y in bands {
            let r = residual + y * band
            let g = gradient + y * band
            // Reference order: one float multiply by Float(β), then fma(g, Float(lr), ·).
            VectorKernels.momentum(r, g, decay: decay, lr: lrF, count: band)
            tr.encodeBand(r, into: work, scratch: scratch)
            if let te = traceEncoded { (te + y * band).update(from: work, count: band) }
            let ip = indices + y * perBand, vp = values + y * perBand
            TopK.selectBand(work, plan: tp, indices: ip, values: vp)
            if format != .f32 {
                for x in 0..<tp.gridCols {
                    let q = format.quantize(vp + x * tp.k, count: tp.k)
                    if format.hasChunkScale, let scales { scales[y * tp.gridCols + x] = q }
                }
            }
            // Local estimate of what was sent (the quantized values), then feedback.
            dec.decodeBand(tp, idx: ip, val: vp, into: work)
            for i in 0..<band { r[i] -= work[i] }
            if let tx = traceEstimate { (tx + y * band).update(from: work, count: band) }
        }
    }
}

/// Per-tensor intermediates of `prepareTraced`, tensor layout (see `ChunkTransform`).
@_spi(DeMoInternals)
public struct DeMoTensorTrace: Sendable {
    /// Per-chunk DCT of the residual after the momentum update.
    public var encoded: [Float]
    /// IDCT of what was sent (subtracted from the residual).
    public var localEstimate: [Float]
}
