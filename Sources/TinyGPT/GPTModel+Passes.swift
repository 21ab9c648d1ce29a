import Tensors

extension GPTModel {
    /// Runs the model on `inputs` (B, T) int32 tokens in `0..<vocabSize`, row-major, with
    /// B = `batch` ≤ `maxBatchSize` and T = `seqLen` ≤ `maxSeqLen`.
    ///
    /// With `targets` (B, T) it returns the mean cross-entropy over all B·T positions in nats and
    /// prepares `backward()`; without, it returns NaN and only `logits` is meaningful.
    /// Preconditions (programmer errors, they trap): sizes in range, buffers of at least B·T
    /// elements, every token and target in `0..<vocabSize`. Allocates nothing.
    @discardableResult
    public func forward(inputs tokens: UnsafeBufferPointer<Int32>, targets labels: UnsafeBufferPointer<Int32>?,
                        batch B: Int, seqLen T: Int) -> Float {
        precondition(B >= 1 && B <= maxBatchSize, "forward: batch \(B) outside 1...\(maxBatchSize)")
        precondition(T >= 1 && T <= maxSeqLen, "forward: seqLen \(T) outside 1...\(maxSeqLen)")
        let N = B * T, V = config.vocabSize
        precondition(tokens.count >= N, "forward: inputs hold \(tokens.count) tokens, need \(N)")
        for i in 0..<N {
            precondition(tokens[i] >= 0 && Int(tokens[i]) < V, "forward: token \(tokens[i]) outside 0..<\(V)")
            inputs[i] = tokens[i]
        }
        if let labels {
            precondition(labels.count >= N, "forward: targets hold \(labels.count) tokens, need \(N)")
            for i in 0..<N {
                precondition(labels[i] >= 0 && Int(labels[i]) < V, "forward: target \(labels[i]) outside 0..<\(V)")
                targets[i] = labels[i]
            }
        }
        lastBatch = B; lastSeqLen = T; haveTargets = labels != nil
        // Batch rows are independent until the loss, so each worker runs the whole network on its
        // own slice of the batch (single-threaded kernels inside) — no synchronisation per layer.
        let tg: UnsafePointer<Int32>? = labels == nil ? nil : UnsafePointer(targets)
        let blas = BLASThreadsGuard(workers: min(threads, B))
        defer { blas.restore() }
        Parallel.workers(B, threads: threads) { _, rows in
            forwardSlice(b0: rows.lowerBound, nb: rows.count, T: T, targets: tg)
        }
        guard labels != nil else { return .nan }
        var total = 0.0
        for i in 0..<N { total += Double(buffers.losses[i]) }
        return Float(total / Double(N))
    }

    /// Forward pass over batch rows `b0 ..< b0+nb` (sequence length T); writes only those rows of
    /// every activation buffer.
    func forwardSlice(b0: Int, nb B: Int, T: Int, targets: UnsafePointer<Int32>?) {
        let C = config.nEmbd, V = config.vocabSize, NH = config.nHead, N = B * T
        let a = buffers
        let r0 = b0 * T // first row of the slice
        Embedding.forward(out: a.encoded + r0 * C, tokens: inputs + r0, wte: param(0), wpe: param(wpeOffset), B: B, T: T, C: C)
        var residual = a.encoded + r0 * C
        for l in 0..<config.nLayer {
            let p = blocks[l]
            let ln1 = a.ln1 + l * a.strideBTC + r0 * C, qkv = a.qkv + l * a.strideBT3C + r0 * 3 * C
            let atty = a.atty + l * a.strideBTC + r0 * C, att = a.att + l * a.strideAtt + b0 * NH * T * T
            let res2 = a.residual2 + l * a.strideBTC + r0 * C, ln2 = a.ln2 + l * a.strideBTC + r0 * C
            let fch = a.fch + l * a.strideBT4C + r0 * 4 * C, fchGelu = a.fchGelu + l * a.strideBT4C + r0 * 4 * C
            let fchSig = a.fchSig + l * a.strideBT4C + r0 * 4 * C
            let res3 = a.residual3 + l * a.strideBTC + r0 * C
            let branch = a.branch + r0 * C
            let stats = l * a.strideBT + r0

            LayerNorm.forward(out: ln1, mean: a.ln1Mean + stats, rstd: a.ln1Rstd + stats,
                              inp: residual, weight: param(p.ln1w), bias: param(p.ln1b), N: N, C: C)
            Linear.forward(out: qkv, inp: ln1, weight: param(p.qkvw), bias: param(p.qkvb), N: N, IC: C, OC: 3 * C)
            CausalAttention.forward(out: atty, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH)
            Linear.forward(out: branch, inp: atty, weight: param(p.attprojw), bias: param(p.attprojb), N: N, IC: C, OC: C)
            Residual.forward(out: res2, a: residual, b: branch, n: N * C)

            LayerNorm.forward(out: ln2, mean: a.ln2Mean + stats, rstd: a.ln2Rstd + stats,
                              inp: res2, weight: param(p.ln2w), bias: param(p.ln2b), N: N, C: C)
            Linear.forward(out: fch, inp: ln2, weight: param(p.fcw), bias: param(p.fcb), N: N, IC: C, OC: 4 * C)
            GELU.forward(out: fchGelu, sigmoid: fchSig, inp: fch, n: N * 4 * C)
            Linear.forward(out: branch, inp: fchGelu, weight: param(p.fcprojw), bias: param(p.fcprojb), N: N, IC: 4 * C, OC: C)
            Residual.forward(out: res3, a: res2, b: branch, n: N * C)
            residual = res3
        }
        LayerNorm.forward(out: a.lnf + r0 * C, mean: a.lnfMean + r0, rstd: a.lnfRstd + r0, inp: residual,
                          weight: param(lnfwOffset), bias: param(lnfbOffset), N: N, C: C)
        Linear.forward(out: a.logits + r0 * V, inp: a.lnf + r0 * C, weight: param(0), bias: nil, N: N, IC: C, OC: V, layout: .outIn)
        CrossEntropy.forward(probs: a.probs + r0 * V, losses: a.losses + r0, logits: a.logits + r0 * V,
                             targets: targets.map { $0 + r0 }, N: N, V: V)
    }

    /// Fills `gradients` with d(mean loss)/d(parameters) for the last forward (overwriting them).
    /// Precondition: the last `forward` had targets. Allocates nothing (except once after `threads`
    /// grew: one extra gradient buffer per additional worker).
    public func backward() {
        precondition(haveTargets, "backward: call forward(inputs:targets:...) with targets first")
        let B = lastBatch, T = lastSeqLen, N = B * T
        let workers = min(threads, B)
        ensureGradientShards(workers - 1)
        let blas = BLASThreadsGuard(workers: workers)
        defer { blas.restore() }
        // Each worker back-propagates its own batch rows; weight gradients go to a private buffer per
        // worker (worker 0: `gradients`) and are summed at the end.
        let shards = gradientShards
        Parallel.workers(B, threads: workers) { w, rows in
            let g = w == 0 ? gradients.baseAddress! : shards + (w - 1) * layout.totalCount
            g.update(repeating: 0, count: layout.totalCount)
            backwardSlice(b0: rows.lowerBound, nb: rows.count, T: T, totalRows: N, grads: g)
        }
        if workers > 1 {
            let total = layout.totalCount
            Parallel.ranges(total, threads: workers, minPerThread: 1 << 14) { r in
                let g = gradients.baseAddress!
                // Fixed order (shard 1, 2, ...), so the sum does not depend on scheduling.
                for k in 0..<(workers - 1) {
                    FastMath.add(g + r.lowerBound, shards + k * total + r.lowerBound, r.count)
                }
            }
        }
    }

    /// Backward pass over batch rows `b0 ..< b0+nb`, accumulating weight gradients into `grads`
    /// (a full parameter-layout buffer). `totalRows` is B·T of the whole batch (the loss is its mean).
    func backwardSlice(b0: Int, nb B: Int, T: Int, totalRows: Int, grads g: UnsafeMutablePointer<Float>) {
        let C = config.nEmbd, V = config.vocabSize, NH = config.nHead, N = B * T
        let a = buffers
        let r0 = b0 * T
        let dres = a.dresidual + r0 * C, dln = a.dln + r0 * C, datty = a.datty + r0 * C
        let dqkv = a.dqkv + r0 * 3 * C, datt = a.datt + b0 * NH * T * T, dfch = a.dfch + r0 * 4 * C
        let dlogits = a.dlogits + r0 * V

        CrossEntropy.backward(dlogits: dlogits, probs: a.probs + r0 * V, targets: targets + r0, N: N, V: V,
                              dloss: Float(N) / Float(totalRows))
        Linear.backward(dinp: dln, dweight: g, dbias: nil, dout: dlogits, inp: a.lnf + r0 * C, weight: param(0),
                        N: N, IC: C, OC: V, layout: .outIn)
        let L = config.nLayer
        let lastResidual = a.residual3 + (L - 1) * a.strideBTC + r0 * C
        dres.update(repeating: 0, count: N * C)
        LayerNorm.backward(dinp: dres, dweight: g + lnfwOffset, dbias: g + lnfbOffset, dout: dln,
                           inp: lastResidual, weight: param(lnfwOffset), mean: a.lnfMean + r0, rstd: a.lnfRstd + r0,
                           N: N, C: C)
        // The residual stream's gradient `dres` passes through each `x + f(x)` unchanged; each
        // branch reads it as its output gradient and LayerNorm backward adds the branch's input
        // gradient back into it (Residual.backward realised in place).
        for l in stride(from: L - 1, through: 0, by: -1) {
            let p = blocks[l]
            let residual = l == 0 ? a.encoded + r0 * C : a.residual3 + (l - 1) * a.strideBTC + r0 * C
            let ln1 = a.ln1 + l * a.strideBTC + r0 * C, qkv = a.qkv + l * a.strideBT3C + r0 * 3 * C
            let atty = a.atty + l * a.strideBTC + r0 * C, att = a.att + l * a.strideAtt + b0 * NH * T * T
            let res2 = a.residual2 + l * a.strideBTC + r0 * C, ln2 = a.ln2 + l * a.strideBTC + r0 * C
            let fchGelu = a.fchGelu + l * a.strideBT4C + r0 * 4 * C
            let fch = a.fch + l * a.strideBT4C + r0 * 4 * C, fchSig = a.fchSig + l * a.strideBT4C + r0 * 4 * C
            let stats = l * a.strideBT + r0

            // MLP branch.
            Linear.backward(dinp: dfch, dweight: g + p.fcprojw, dbias: g + p.fcprojb, dout: dres,
                            inp: fchGelu, weight: param(p.fcprojw), N: N, IC: 4 * C, OC: C)
            GELU.backward(dinp: dfch, inp: fch, sigmoid: fchSig, dout: dfch, n: N * 4 * C)
            Linear.backward(dinp: dln, dweight: g + p.fcw, dbias: g + p.fcb, dout: dfch,
                            inp: ln2, weight: param(p.fcw), N: N, IC: C, OC: 4 * C)
            LayerNorm.backward(dinp: dres, dweight: g + p.ln2w, dbias: g + p.ln2b, dout: dln, inp: res2,
                               weight: param(p.ln2w), mean: a.ln2Mean + stats, rstd: a.ln2Rstd + stats, N: N, C: C)
            // Attention branch.
            Linear.backward(dinp: datty, dweight: g + p.attprojw, dbias: g + p.attprojb, dout: dres,
                            inp: atty, weight: param(p.attprojw), N: N, IC: C, OC: C)
            CausalAttention.backward(dqkv: dqkv, datt: datt, dout: datty, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
            Linear.backward(dinp: dln, dweight: g + p.qkvw, dbias: g + p.qkvb, dout: dqkv,
                            inp: ln1, weight: param(p.qkvw), N: N, IC: C, OC: 3 * C)
            LayerNorm.backward(dinp: dres, dweight: g + p.ln1w, dbias: g + p.ln1b, dout: dln, inp: residual,
                               weight: param(p.ln1w), mean: a.ln1Mean + stats, rstd: a.ln1Rstd + stats, N: N, C: C)
        }
        Embedding.backward(dwte: g, dwpe: g + wpeOffset, dout: dres, tokens: inputs + r0, B: B, T: T, C: C)
    }
}

/// While several model workers run, BLAS must not start its own threads too (workers × BLAS threads
/// would oversubscribe the cores, and OpenBLAS threads spin while they wait), so BLAS is set to one
/// thread for the pass and the caller's setting restored afterwards. A no-op for a single worker.
struct BLASThreadsGuard {
    let saved: Int?

    init(workers: Int) {
        if workers > 1, BLAS.threads != 1 {
            saved = BLAS.threads
            BLAS.setThreads(1)
        } else {
            saved = nil
        }
    }

    func restore() {
        if let saved { BLAS.setThreads(saved) }
    }
}
