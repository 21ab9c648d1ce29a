import Foundation
import Tensors

extension DeMoOptimizer {
    /// Global half of a step: combines every peer's payload and updates `params` in place.
    ///
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
        try apply(contributions, lr: lr, to: params, threads: nil)
    }

    /// `apply` with a forced thread count for every tensor (nil: automatic), for tests.
    func apply(_ contributions: [DeMoContribution], lr: Double,
               to params: UnsafeMutableBufferPointer<Float>, threads: Int?) throws {
        guard params.count == layout.totalCount else {
            throw DeMoError.bufferSize(what: "parameter buffer", expected: layout.totalCount, got: params.count)
        }
        guard lr.isFinite, lr >= 0 else { throw DeMoError.badHyperparameter("learning rate \(lr) must be finite and >= 0") }
        let sorted = try validated(contributions)
        let wd = config.weightDecay
        let decayFactor = Float(1 - lr * wd)
        let step = Float(-lr)
        guard let start = params.baseAddress else { return }  // empty layout: nothing to update
        let base = DisjointBands(pointer: start)
        for t in plan.tensors.indices {
            let tp = plan.tensors[t]
            // Bands are independent and each element's arithmetic does not depend on which thread
            // computes it, so splitting large tensors across threads keeps the result bit-identical.
            let workers = max(1, min(threads ?? (tp.count >= Self.parallelThreshold ? Self.applyThreads : 1), tp.gridRows))
            let body: @Sendable (Int) -> Void = { w in
                var agg = BandAggregator(self, tensor: t, sorted)
                let band = agg.band
                let a = UnsafeMutablePointer<Float>.allocate(capacity: band)
                defer { a.deallocate() }
                for y in stride(from: w, to: tp.gridRows, by: workers) {
                    agg.aggregateBand(y, into: a)
                    let p = base.pointer + tp.offset + y * band
                    if wd != 0 { for i in 0..<band { p[i] = p[i] * decayFactor } }
                    for i in 0..<band {
                        let s: Float = a[i] > 0 ? 1 : (a[i] < 0 ? -1 : 0)
                        p[i] = p[i] + step * s
                    }
                }
            }
            if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
        }
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
        var agg = BandAggregator(self, tensor: t, sorted)
        for y in 0..<plan.tensors[t].gridRows { agg.aggregateBand(y, into: out + y * agg.band) }
    }
}

/// Scatter-mean and sparse inverse DCT of one band of chunks of one tensor, over validated
/// contributions. Owns band-sized scratch so the work stays in cache.
struct BandAggregator {
    let tp: DeMoTensorPlan
    let payloads: [DeMoTensorPayload]
    var dec: SparseIDCT
    var sum: [Float], hits: [Int32], slotIdx: [UInt32], slotVal: [Float]
    var band: Int { tp.chunkRows * tp.cols }

    init(_ o: DeMoOptimizer, tensor t: Int, _ sorted: [DeMoContribution]) {
        tp = o.plan.tensors[t]
        payloads = sorted.map { $0.payload.tensors[t] }
        dec = SparseIDCT(rowBasis: o.transforms[t].rowBasis, colBasis: o.transforms[t].colBasis)
        sum = [Float](repeating: 0, count: tp.totalk)
        hits = [Int32](repeating: 0, count: tp.totalk)
        slotIdx = [UInt32](repeating: 0, count: tp.totalk)
        slotVal = [Float](repeating: 0, count: tp.totalk)
    }

    /// Aggregates band `y` into `dst` (`band` floats).
    mutating func aggregateBand(_ y: Int, into dst: UnsafeMutablePointer<Float>) {
        let k = tp.k
        for x in 0..<tp.gridCols {
            let c = y * tp.gridCols + x
            // Scatter-mean: accumulate in peer order, then divide by the number of senders.
            for tpay in payloads {
                for i in (c * k)..<((c + 1) * k) {
                    let ix = Int(tpay.indices[i])
                    sum[ix] += tpay.values[i]
                    hits[ix] += 1
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

/// The parameter buffer shared by `apply`'s threads. Each thread writes only its own chunk bands
/// (disjoint element ranges) and the caller waits for all of them, hence `@unchecked Sendable`.
private struct DisjointBands: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
}
