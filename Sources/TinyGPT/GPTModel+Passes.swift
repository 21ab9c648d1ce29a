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
    ///
    /// Two phases. (1) Each worker back-propagates the input gradients of its own batch rows through
    /// the whole network, keeping every Linear's output gradient; the small parameters whose
    /// gradients are row sums (LayerNorms, embeddings) go to a private buffer per worker. (2) The
    /// Linear weight gradients are GEMMs over all B·T rows at once, shared out among the workers
    /// tensor by tensor. Splitting those GEMMs by rows instead would halve their inner dimension
    /// (slower BLAS) and need a full-size gradient reduction.
    public func backward() {
        precondition(haveTargets, "backward: call forward(inputs:targets:...) with targets first")
        let B = lastBatch, T = lastSeqLen, N = B * T
        let workers = min(threads, B)
        ensureGradientShards(workers - 1)
        let blas = BLASThreadsGuard(workers: workers)
        defer { blas.restore() }
        gradients.update(repeating: 0)
        let shards = gradientShards, total = layout.totalCount
        for k in 0..<(workers - 1) {
            for r in rowSumRanges { (shards + k * total + r.lowerBound).update(repeating: 0, count: r.count) }
        }
        Parallel.workers(B, threads: workers) { w, rows in
            let g = w == 0 ? gradients.baseAddress! : shards + (w - 1) * total
            backwardInputsSlice(b0: rows.lowerBound, nb: rows.count, T: T, totalRows: N, grads: g)
        }
        Parallel.workers(weightJobs.count, threads: workers) { w, _ in
            // Snake order over the jobs (sorted by cost) balances the workers' FLOPs.
            var j = w, round = 0
            while j < weightJobs.count {
                runWeightJob(weightJobs[j], N: N)
                round += 1
                j = round * workers + (round % 2 == 0 ? w : workers - 1 - w)
            }
        }
        if workers > 1 {
            let g = gradients.baseAddress!
            for k in 0..<(workers - 1) {
                let s = shards + k * total
                for r in rowSumRanges { FastMath.add(g + r.lowerBound, s + r.lowerBound, r.count) }
            }
        }
    }

    /// Phase 1 of `backward` over batch rows `b0 ..< b0+nb`: input gradients, LayerNorm and
    /// embedding parameter gradients (accumulated into `grads`, a full parameter-layout buffer).
    /// `totalRows` is B·T of the whole batch (the loss is its mean).
    func backwardInputsSlice(b0: Int, nb B: Int, T: Int, totalRows: Int, grads g: UnsafeMutablePointer<Float>) {
        let C = config.nEmbd, V = config.vocabSize, NH = config.nHead, N = B * T
        let a = buffers
        let r0 = b0 * T
        let dln = a.dln + r0 * C, datty = a.datty + r0 * C, datt = a.datt + b0 * NH * T * T
        let dlogits = a.dlogits + r0 * V

        CrossEntropy.backward(dlogits: dlogits, probs: a.probs + r0 * V, targets: targets + r0, N: N, V: V,
                              dloss: Float(N) / Float(totalRows))
        Linear.backwardInput(dinp: dln, dout: dlogits, weight: param(0), N: N, IC: C, OC: V, layout: .outIn)
        let L = config.nLayer
        // The residual stream's gradient flows down a chain of buffers: dresMLP[l] enters block l
        // (the MLP's c_proj output gradient), dresAttn[l] after the MLP's LayerNorm added its part
        // (attention's c_proj output gradient), then dresMLP[l-1] (or `dresidual` below block 0).
        // Each link is a copy plus LayerNorm backward's accumulation: Residual.backward in place.
        let top = a.dresMLP + (L - 1) * a.strideBTC + r0 * C
        top.update(repeating: 0, count: N * C)
        LayerNorm.backward(dinp: top, dweight: g + lnfwOffset, dbias: g + lnfbOffset, dout: dln,
                           inp: a.residual3 + (L - 1) * a.strideBTC + r0 * C, weight: param(lnfwOffset),
                           mean: a.lnfMean + r0, rstd: a.lnfRstd + r0, N: N, C: C)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let p = blocks[l]
            let residual = l == 0 ? a.encoded + r0 * C : a.residual3 + (l - 1) * a.strideBTC + r0 * C
            let qkv = a.qkv + l * a.strideBT3C + r0 * 3 * C, att = a.att + l * a.strideAtt + b0 * NH * T * T
            let res2 = a.residual2 + l * a.strideBTC + r0 * C
            let fch = a.fch + l * a.strideBT4C + r0 * 4 * C, fchSig = a.fchSig + l * a.strideBT4C + r0 * 4 * C
            let dfch = a.dfch + l * a.strideBT4C + r0 * 4 * C, dqkv = a.dqkv + l * a.strideBT3C + r0 * 3 * C
            let dresMLP = a.dresMLP + l * a.strideBTC + r0 * C, dresAttn = a.dresAttn + l * a.strideBTC + r0 * C
            let dresBelow = l == 0 ? a.dresidual + r0 * C : a.dresMLP + (l - 1) * a.strideBTC + r0 * C
            let stats = l * a.strideBT + r0

            // MLP branch.
            Linear.backwardInput(dinp: dfch, dout: dresMLP, weight: param(p.fcprojw), N: N, IC: 4 * C, OC: C)
            GELU.backward(dinp: dfch, inp: fch, sigmoid: fchSig, dout: dfch, n: N * 4 * C)
            Linear.backwardInput(dinp: dln, dout: dfch, weight: param(p.fcw), N: N, IC: C, OC: 4 * C)
            dresAttn.update(from: dresMLP, count: N * C)
            LayerNorm.backward(dinp: dresAttn, dweight: g + p.ln2w, dbias: g + p.ln2b, dout: dln, inp: res2,
                               weight: param(p.ln2w), mean: a.ln2Mean + stats, rstd: a.ln2Rstd + stats, N: N, C: C)
            // Attention branch.
            Linear.backwardInput(dinp: datty, dout: dresAttn, weight: param(p.attprojw), N: N, IC: C, OC: C)
            CausalAttention.backward(dqkv: dqkv, datt: datt, dout: datty, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
            Linear.backwardInput(dinp: dln, dout: dqkv, weight: param(p.qkvw), N: N, IC: C, OC: 3 * C)
            dresBelow.update(from: dresAttn, count: N * C)
            LayerNorm.backward(dinp: dresBelow, dweight: g + p.ln1w, dbias: g + p.ln1b, dout: dln, inp: residual,
                               weight: param(p.ln1w), mean: a.ln1Mean + stats, rstd: a.ln1Rstd + stats, N: N, C: C)
        }
        Embedding.backward(dwte: g, dwpe: g + wpeOffset, dout: a.dresidual + r0 * C, tokens: inputs + r0, B: B, T: T, C: C)
    }

    /// Phase 2 of `backward`: one Linear's weight (and bias) gradient over all `N` rows, into
    /// `gradients`. Jobs write disjoint tensors, so workers may run different jobs concurrently.
    func runWeightJob(_ job: WeightJob, N: Int) {
        let a = buffers, C = config.nEmbd, l = job.layer
        switch job.kind {
        case .lmHead:
            Linear.backwardWeight(dweight: grad(0), dbias: nil, dout: a.dlogits, inp: a.lnf, N: N, IC: C,
                                  OC: config.vocabSize, layout: .outIn)
        case .fcproj:
            let p = blocks[l]
            Linear.backwardWeight(dweight: grad(p.fcprojw), dbias: grad(p.fcprojb), dout: a.dresMLP + l * a.strideBTC,
                                  inp: a.fchGelu + l * a.strideBT4C, N: N, IC: 4 * C, OC: C)
        case .fc:
            let p = blocks[l]
            Linear.backwardWeight(dweight: grad(p.fcw), dbias: grad(p.fcb), dout: a.dfch + l * a.strideBT4C,
                                  inp: a.ln2 + l * a.strideBTC, N: N, IC: C, OC: 4 * C)
        case .attproj:
            let p = blocks[l]
            Linear.backwardWeight(dweight: grad(p.attprojw), dbias: grad(p.attprojb), dout: a.dresAttn + l * a.strideBTC,
                                  inp: a.atty + l * a.strideBTC, N: N, IC: C, OC: C)
        case .qkv:
            let p = blocks[l]
            Linear.backwardWeight(dweight: grad(p.qkvw), dbias: grad(p.qkvb), dout: a.dqkv + l * a.strideBT3C,
                                  inp: a.ln1 + l * a.strideBTC, N: N, IC: C, OC: 3 * C)
        }
    }
}

/// One deferred weight-gradient GEMM of `GPTModel.backward` (phase 2).
struct WeightJob: Sendable {
    enum Kind: Sendable { case lmHead, qkv, attproj, fc, fcproj }
    var kind: Kind
    var layer: Int
    /// Multiply-adds per row, for balancing the jobs over workers.
    var cost: Int

    /// Every job of `config`, most expensive first.
    static func all(for config: GPTConfig) -> [WeightJob] {
        let C = config.nEmbd
        var jobs = [WeightJob(kind: .lmHead, layer: 0, cost: config.vocabSize * C)]
        for l in 0..<config.nLayer {
            jobs += [WeightJob(kind: .qkv, layer: l, cost: 3 * C * C), WeightJob(kind: .attproj, layer: l, cost: C * C),
                     WeightJob(kind: .fc, layer: l, cost: 4 * C * C), WeightJob(kind: .fcproj, layer: l, cost: 4 * C * C)]
        }
        return jobs.sorted { ($0.cost, -$0.layer) > ($1.cost, -$1.layer) }
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
