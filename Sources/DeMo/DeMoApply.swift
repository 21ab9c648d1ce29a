import Foundation
import Tensors

extension DeMoOptimizer {
    /// Global half of a step: combines every peer's payload and updates `params` in place.
    ///
    /// With `aggregate: clipped` (the default) each contributor's values of a tensor are first
    /// multiplied by `min(1, median norm / its norm)` (`clipFactors`; exactly 1 when not clipped, so
    /// one contributor or contributors of equal norm give the reference's result bit for bit).
    /// Per tensor and chunk, each coefficient is the mean over the peers that sent it (summed in
    /// ascending peer order in Float, divided by the count — the reference's scatter "mean"); the
    /// sparse result is inverse-transformed, and every parameter moves by
    /// `p = p·Float(1 − lr·wd)` (when wd ≠ 0, factor computed in Double) then `p = p + Float(−lr)·sign`.
    ///
    /// Deterministic: the input order of `contributions` does not matter (they are sorted by
    /// `peer`), no BLAS is used, and the floating-point operation order depends only on the
    /// contributions — two processes applying the same set end bit-identical (tensors of 2^20+
    /// elements are split by chunk bands over up to 8 threads; that does not change any result).
    /// The peer's own payload must be among the contributions if it is to count.
    ///
    /// Everything is validated first (tensor count, chunks, k, index range and order, finite values,
    /// unique peers, `params.count`); on error nothing is written. Throws `DeMoError`.
    public func apply(_ contributions: [DeMoContribution], lr: Double,
                      to params: UnsafeMutableBufferPointer<Float>) throws {
        _ = try apply(contributions, lr: lr, to: params, threads: nil, score: false)
    }

    /// `apply`, also scoring every contributor against the others (see `DeMoContributorScore`),
    /// sorted by peer. The parameters end exactly as `apply` leaves them.
    public func applyScored(_ contributions: [DeMoContribution], lr: Double,
                            to params: UnsafeMutableBufferPointer<Float>) throws -> [DeMoContributorScore] {
        try apply(contributions, lr: lr, to: params, threads: nil, score: true)
    }

    /// `apply` with a forced thread count for every tensor (nil: automatic), for tests.
    @discardableResult
    func apply(_ contributions: [DeMoContribution], lr: Double,
               to params: UnsafeMutableBufferPointer<Float>, threads: Int?, score: Bool = false) throws -> [DeMoContributorScore] {
        guard params.count == layout.totalCount else {
            throw DeMoError.bufferSize(what: "parameter buffer", expected: layout.totalCount, got: params.count)
        }
        guard lr.isFinite, lr >= 0 else { throw DeMoError.badHyperparameter("learning rate \(lr) must be finite and >= 0") }
        let sorted = try validated(contributions)
        let wd = config.weightDecay
        let decayFactor = Float(1 - lr * wd)
        let step = Float(-lr)
        let n = sorted.count
        var ratio = [Double](repeating: 0, count: n), clippedTensors = [Int](repeating: 0, count: n)
        var agree = [Int](repeating: 0, count: n), counted = [Int](repeating: 0, count: n)
        guard let start = params.baseAddress else {  // empty layout: nothing to update
            return score ? Self.scores(sorted, ratio, clippedTensors, agree, counted) : []
        }
        let base = DisjointBands(pointer: start)
        for t in plan.tensors.indices {
            let tp = plan.tensors[t]
            let clip = clipFactors(tensor: t, sorted)
            if score {
                for j in 0..<n {
                    ratio[j] = max(ratio[j], clip.ratio[j])
                    if clip.factor[j] != 1 { clippedTensors[j] += 1 }
                }
            }
            // Bands are independent and each element's arithmetic does not depend on which thread
            // computes it, so splitting large tensors across threads keeps the result bit-identical.
            let workers = max(1, min(threads ?? (tp.count >= Self.parallelThreshold ? Self.applyThreads : 1), tp.gridRows))
            // Per worker and contributor: coefficients that agree in sign with the others' sum, and
            // coefficients the others also sent. Integer counts: the same whatever the split.
            let counts = DisjointCounts(count: score ? 2 * n * workers : 0)
            defer { counts.pointer.deallocate() }
            let body: @Sendable (Int) -> Void = { w in
                var agg = BandAggregator(self, tensor: t, sorted, factors: clip.factor)
                let band = agg.band
                let a = UnsafeMutablePointer<Float>.allocate(capacity: band)
                defer { a.deallocate() }
                let tally = score ? counts.pointer + 2 * n * w : nil
                for y in stride(from: w, to: tp.gridRows, by: workers) {
                    agg.aggregateBand(y, into: a, tally: tally)
                    let p = base.pointer + tp.offset + y * band
                    if wd != 0 { for i in 0..<band { p[i] = p[i] * decayFactor } }
                    for i in 0..<band {
                        let s: Float = a[i] > 0 ? 1 : (a[i] < 0 ? -1 : 0)
                        p[i] = p[i] + step * s
                    }
                }
            }
            if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
            if score {
                for w in 0..<workers {
                    for j in 0..<n { agree[j] += counts.pointer[2 * n * w + 2 * j]; counted[j] += counts.pointer[2 * n * w + 2 * j + 1] }
                }
            }
        }
        return score ? Self.scores(sorted, ratio, clippedTensors, agree, counted) : []
    }

    private static func scores(_ sorted: [DeMoContribution], _ ratio: [Double], _ clipped: [Int],
                               _ agree: [Int], _ counted: [Int]) -> [DeMoContributorScore] {
        sorted.indices.map { j in
            DeMoContributorScore(peer: sorted[j].peer,
                                 agreement: counted[j] > 0 ? Double(agree[j]) / Double(counted[j]) : nil,
                                 normRatio: ratio[j], clippedTensors: clipped[j])
        }
    }

    /// Per contributor (in `sorted` order) for tensor `t`: the factor its values are multiplied by
    /// (exactly 1 when not clipped, and always 1 with `mean`) and its norm over the median norm
    /// (0 when the median is 0).
    ///
    /// Norms are summed in Double over the contributor's values in payload order, so they depend
    /// only on its payload; the median is the lower median of the non-zero norms (a contributor
    /// that sends zeros neither moves the step nor lowers everyone else's bound), taken from the
    /// norms sorted by value: the factors depend only on the set of contributions.
    @_spi(DeMoInternals)
    public func clipFactors(tensor t: Int, _ sorted: [DeMoContribution]) -> (factor: [Float], ratio: [Double]) {
        let norms = sorted.map { c -> Double in
            var s = 0.0
            for v in c.payload.tensors[t].values { let d = Double(v); s += d * d }
            return s.squareRoot()
        }
        let nonZero = norms.filter { $0 > 0 }.sorted()
        guard !nonZero.isEmpty else { return ([Float](repeating: 1, count: sorted.count), norms.map { _ in 0 }) }
        let median = nonZero[(nonZero.count - 1) / 2]
        let ratio = norms.map { $0 / median }
        guard config.aggregate == .clipped else { return ([Float](repeating: 1, count: sorted.count), ratio) }
        // norm <= median: exactly 1, never a quotient that happens to round to 1.
        let factor = norms.map { $0 <= median ? Float(1) : Float(median / $0) }
        return (factor, ratio)
    }

    /// Tensors with at least this many elements are applied on several threads.
    static var parallelThreshold: Int { 1 << 20 }
    /// Threads `apply` uses for a large tensor (at most 8).
    static var applyThreads: Int { min(8, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Sorts by peer and validates every contribution against the plan.
    @_spi(DeMoInternals)
    public func validated(_ contributions: [DeMoContribution]) throws -> [DeMoContribution] {
        let sorted = contributions.sorted { $0.peer < $1.peer }
        for i in sorted.indices {
            if i > 0 && sorted[i].peer == sorted[i - 1].peer { throw DeMoError.duplicatePeer(sorted[i].peer) }
            do { try sorted[i].payload.validate(against: plan) } catch {
                throw DeMoError.invalidContribution(peer: sorted[i].peer, issue: error)
            }
        }
        return sorted
    }

    /// The combined update direction of tensor `t` before sign(), in tensor layout (`count`
    /// floats written to `out`). `sorted` must come from `validated(_:)`.
    @_spi(DeMoInternals)
    public func aggregate(tensor t: Int, _ sorted: [DeMoContribution], into out: UnsafeMutablePointer<Float>) {
        var agg = BandAggregator(self, tensor: t, sorted, factors: clipFactors(tensor: t, sorted).factor)
        for y in 0..<plan.tensors[t].gridRows { agg.aggregateBand(y, into: out + y * agg.band, tally: nil) }
    }
}

/// Scatter-mean and sparse inverse DCT of one band of chunks of one tensor, over validated
/// contributions, each scaled by its clip factor. Owns band-sized scratch so the work stays in cache.
struct BandAggregator {
    let tp: DeMoTensorPlan
    let payloads: [DeMoTensorPayload]
    /// Per contributor: the factor its values are multiplied by (exactly 1: added unchanged).
    let factors: [Float]
    var dec: SparseIDCT
    var sum: [Float], hits: [Int32], slotIdx: [UInt32], slotVal: [Float]
    var band: Int { tp.chunkRows * tp.cols }

    init(_ o: DeMoOptimizer, tensor t: Int, _ sorted: [DeMoContribution], factors: [Float]) {
        tp = o.plan.tensors[t]
        payloads = sorted.map { $0.payload.tensors[t] }
        self.factors = factors
        dec = SparseIDCT(rowBasis: o.transforms[t].rowBasis, colBasis: o.transforms[t].colBasis)
        sum = [Float](repeating: 0, count: tp.totalk)
        hits = [Int32](repeating: 0, count: tp.totalk)
        slotIdx = [UInt32](repeating: 0, count: tp.totalk)
        slotVal = [Float](repeating: 0, count: tp.totalk)
    }

    /// Aggregates band `y` into `dst` (`band` floats). With `tally` (2 counts per contributor),
    /// adds per contributor the coefficients whose sign agrees with the sum of the others' (scaled)
    /// values at that slot, and the coefficients where that sum is not zero.
    mutating func aggregateBand(_ y: Int, into dst: UnsafeMutablePointer<Float>, tally: UnsafeMutablePointer<Int>?) {
        let k = tp.k
        for x in 0..<tp.gridCols {
            let c = y * tp.gridCols + x
            // Scatter-mean: accumulate in peer order, then divide by the number of senders.
            for (j, tpay) in payloads.enumerated() {
                let f = factors[j]
                if f == 1 {
                    for i in (c * k)..<((c + 1) * k) {
                        let ix = Int(tpay.indices[i])
                        sum[ix] += tpay.values[i]
                        hits[ix] += 1
                    }
                } else {
                    for i in (c * k)..<((c + 1) * k) {
                        let ix = Int(tpay.indices[i])
                        sum[ix] += tpay.values[i] * f
                        hits[ix] += 1
                    }
                }
            }
            if let tally, payloads.count > 1 {
                for (j, tpay) in payloads.enumerated() {
                    let f = factors[j]
                    var agreeing = 0, counted = 0
                    for i in (c * k)..<((c + 1) * k) {
                        let own = f == 1 ? tpay.values[i] : tpay.values[i] * f
                        let others = sum[Int(tpay.indices[i])] - own
                        if others != 0 {
                            counted += 1
                            if (own > 0 && others > 0) || (own < 0 && others < 0) { agreeing += 1 }
                        }
                    }
                    tally[2 * j] += agreeing
                    tally[2 * j + 1] += counted
                }
            }
            var nnz = 0
            if payloads.count == 1 {
                // One sender: its indices are already the ascending slot list.
                for i in (c * k)..<((c + 1) * k) {
                    let ix = Int(payloads[0].indices[i])
                    slotIdx[nnz] = UInt32(ix); slotVal[nnz] = sum[ix] / Float(hits[ix])
                    sum[ix] = 0; hits[ix] = 0; nnz += 1
                }
            } else {
                for ix in 0..<tp.totalk where hits[ix] > 0 {
                    slotIdx[nnz] = UInt32(ix)
                    slotVal[nnz] = sum[ix] / Float(hits[ix])
                    sum[ix] = 0; hits[ix] = 0
                    nnz += 1
                }
            }
            let n = nnz
            slotIdx.withUnsafeBufferPointer { ip in
                slotVal.withUnsafeBufferPointer { vp in
                    dec.decode(idx: ip.baseAddress!, val: vp.baseAddress!, nnz: n,
                               into: dst + x * tp.chunkCols, ld: tp.cols)
                }
            }
        }
    }
}

/// Per contributor, what `applyScored` learned about it in one step: how it compares with the
/// others. Deterministic like the parameters (integer counts and per-tensor norms), so every peer
/// computes the same scores from the same set.
public struct DeMoContributorScore: Sendable, Equatable {
    public var peer: Int
    /// Fraction of its coefficients whose sign agrees with the sum of the other contributors'
    /// (clipped) values at the same slot, over the slots where that sum is not zero; nil when no
    /// other contributor sent any of its slots (e.g. it is alone). Honest peers agree more often
    /// than not; a negated peer mostly disagrees.
    public var agreement: Double?
    /// The largest, over tensors, of its norm divided by the median norm (see `DeMoAggregate`).
    public var normRatio: Double
    /// Tensors where its values were scaled down (always 0 with `mean`).
    public var clippedTensors: Int
}

/// Per-worker integer tallies of one tensor's apply; each worker writes only its own slice.
private struct DisjointCounts: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int>
    init(count: Int) {
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
}

/// The parameter buffer shared by `apply`'s threads. Each thread writes only its own chunk bands
/// (disjoint element ranges) and the caller waits for all of them, hence `@unchecked Sendable`.
private struct DisjointBands: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
}
