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
        let N = B * T, C = config.nEmbd, V = config.vocabSize, NH = config.nHead
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
        let a = buffers, th = threads

        Embedding.forward(out: a.encoded, tokens: inputs, wte: param(0), wpe: param(wpeOffset), B: B, T: T, C: C)
        var residual = a.encoded
        for l in 0..<config.nLayer {
            let p = blocks[l]
            let ln1 = a.ln1 + l * a.strideBTC, qkv = a.qkv + l * a.strideBT3C
            let atty = a.atty + l * a.strideBTC, att = a.att + l * a.strideAtt
            let res2 = a.residual2 + l * a.strideBTC, ln2 = a.ln2 + l * a.strideBTC
            let fch = a.fch + l * a.strideBT4C, fchGelu = a.fchGelu + l * a.strideBT4C
            let res3 = a.residual3 + l * a.strideBTC

            LayerNorm.forward(out: ln1, mean: a.ln1Mean + l * a.strideBT, rstd: a.ln1Rstd + l * a.strideBT,
                              inp: residual, weight: param(p.ln1w), bias: param(p.ln1b), N: N, C: C, threads: th)
            Linear.forward(out: qkv, inp: ln1, weight: param(p.qkvw), bias: param(p.qkvb), N: N, IC: C, OC: 3 * C)
            CausalAttention.forward(out: atty, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH, threads: th)
            Linear.forward(out: a.branch, inp: atty, weight: param(p.attprojw), bias: param(p.attprojb), N: N, IC: C, OC: C)
            Residual.forward(out: res2, a: residual, b: a.branch, n: N * C)

            LayerNorm.forward(out: ln2, mean: a.ln2Mean + l * a.strideBT, rstd: a.ln2Rstd + l * a.strideBT,
                              inp: res2, weight: param(p.ln2w), bias: param(p.ln2b), N: N, C: C, threads: th)
            Linear.forward(out: fch, inp: ln2, weight: param(p.fcw), bias: param(p.fcb), N: N, IC: C, OC: 4 * C)
            GELU.forward(out: fchGelu, inp: fch, n: N * 4 * C, threads: th)
            Linear.forward(out: a.branch, inp: fchGelu, weight: param(p.fcprojw), bias: param(p.fcprojb), N: N, IC: 4 * C, OC: C)
            Residual.forward(out: res3, a: res2, b: a.branch, n: N * C)
            residual = res3
        }
        LayerNorm.forward(out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd, inp: residual,
                          weight: param(lnfwOffset), bias: param(lnfbOffset), N: N, C: C, threads: th)
        Linear.forward(out: a.logits, inp: a.lnf, weight: param(0), bias: nil, N: N, IC: C, OC: V, layout: .outIn)
        return CrossEntropy.forward(probs: a.probs, losses: a.losses, logits: a.logits,
                                    targets: labels == nil ? nil : UnsafePointer(targets), N: N, V: V, threads: th)
    }

    /// Fills `gradients` with d(mean loss)/d(parameters) for the last forward (overwriting them).
    /// Precondition: the last `forward` had targets. Allocates nothing.
    public func backward() {
        precondition(haveTargets, "backward: call forward(inputs:targets:...) with targets first")
        let B = lastBatch, T = lastSeqLen, N = B * T
        let C = config.nEmbd, V = config.vocabSize, NH = config.nHead
        let a = buffers, th = threads
        gradients.update(repeating: 0)

        CrossEntropy.backward(dlogits: a.dlogits, probs: a.probs, targets: targets, N: N, V: V, threads: th)
        Linear.backward(dinp: a.dln, dweight: grad(0), dbias: nil, dout: a.dlogits, inp: a.lnf, weight: param(0),
                        N: N, IC: C, OC: V, layout: .outIn)
        let L = config.nLayer
        let lastResidual = a.residual3 + (L - 1) * a.strideBTC
        a.dresidual.update(repeating: 0, count: N * C)
        LayerNorm.backward(dinp: a.dresidual, dweight: grad(lnfwOffset), dbias: grad(lnfbOffset), dout: a.dln,
                           inp: lastResidual, weight: param(lnfwOffset), mean: a.lnfMean, rstd: a.lnfRstd, N: N, C: C)
        // The residual stream's gradient `dresidual` passes through each `x + f(x)` unchanged; each
        // branch reads it as its output gradient and LayerNorm backward adds the branch's input
        // gradient back into it (Residual.backward realised in place).
        for l in stride(from: L - 1, through: 0, by: -1) {
            let p = blocks[l]
            let residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * a.strideBTC
            let ln1 = a.ln1 + l * a.strideBTC, qkv = a.qkv + l * a.strideBT3C
            let atty = a.atty + l * a.strideBTC, att = a.att + l * a.strideAtt
            let res2 = a.residual2 + l * a.strideBTC, ln2 = a.ln2 + l * a.strideBTC
            let fch = a.fch + l * a.strideBT4C, fchGelu = a.fchGelu + l * a.strideBT4C

            // MLP branch.
            Linear.backward(dinp: a.dfch, dweight: grad(p.fcprojw), dbias: grad(p.fcprojb), dout: a.dresidual,
                            inp: fchGelu, weight: param(p.fcprojw), N: N, IC: 4 * C, OC: C)
            GELU.backward(dinp: a.dfch, inp: fch, dout: a.dfch, n: N * 4 * C, threads: th)
            Linear.backward(dinp: a.dln, dweight: grad(p.fcw), dbias: grad(p.fcb), dout: a.dfch,
                            inp: ln2, weight: param(p.fcw), N: N, IC: C, OC: 4 * C)
            LayerNorm.backward(dinp: a.dresidual, dweight: grad(p.ln2w), dbias: grad(p.ln2b), dout: a.dln, inp: res2,
                               weight: param(p.ln2w), mean: a.ln2Mean + l * a.strideBT, rstd: a.ln2Rstd + l * a.strideBT,
                               N: N, C: C)
            // Attention branch.
            Linear.backward(dinp: a.datty, dweight: grad(p.attprojw), dbias: grad(p.attprojb), dout: a.dresidual,
                            inp: atty, weight: param(p.attprojw), N: N, IC: C, OC: C)
            CausalAttention.backward(dqkv: a.dqkv, datt: a.datt, dout: a.datty, qkv: qkv, att: att,
                                     B: B, T: T, C: C, NH: NH, threads: th)
            Linear.backward(dinp: a.dln, dweight: grad(p.qkvw), dbias: grad(p.qkvb), dout: a.dqkv,
                            inp: ln1, weight: param(p.qkvw), N: N, IC: C, OC: 3 * C)
            LayerNorm.backward(dinp: a.dresidual, dweight: grad(p.ln1w), dbias: grad(p.ln1b), dout: a.dln, inp: residual,
                               weight: param(p.ln1w), mean: a.ln1Mean + l * a.strideBT, rstd: a.ln1Rstd + l * a.strideBT,
                               N: N, C: C)
        }
        Embedding.backward(dwte: grad(0), dwpe: grad(wpeOffset), dout: a.dresidual, tokens: inputs, B: B, T: T, C: C)
    }
}
