/// Every activation and activation-gradient buffer of `GPTModel`, carved out of one allocation made
/// at init for the largest batch (B) and sequence length (T) the model will see.
///
/// Per-layer tensors are stored layer after layer with a stride sized for (B, T); a smaller
/// forward packs its (b, t) rows at the start of each layer's region, so matmuls always see
/// contiguous rows. Shapes below are for the actual (B, T) of a pass (row-major).
struct GPTBuffers {
    let B: Int, T: Int, C: Int, V: Int, L: Int, NH: Int
    private let storage: UnsafeMutablePointer<Float>
    private let storageCount: Int

    // Forward activations (saved for backward).
    let encoded: UnsafeMutablePointer<Float>    // (B, T, C)
    let ln1: UnsafeMutablePointer<Float>        // L × (B, T, C)
    let ln1Mean: UnsafeMutablePointer<Float>    // L × (B, T)
    let ln1Rstd: UnsafeMutablePointer<Float>    // L × (B, T)
    let qkv: UnsafeMutablePointer<Float>        // L × (B, T, 3C)
    let atty: UnsafeMutablePointer<Float>       // L × (B, T, C)
    let att: UnsafeMutablePointer<Float>        // L × (B, NH, T, T)
    let residual2: UnsafeMutablePointer<Float>  // L × (B, T, C)
    let ln2: UnsafeMutablePointer<Float>        // L × (B, T, C)
    let ln2Mean: UnsafeMutablePointer<Float>    // L × (B, T)
    let ln2Rstd: UnsafeMutablePointer<Float>    // L × (B, T)
    let fch: UnsafeMutablePointer<Float>        // L × (B, T, 4C)
    let fchGelu: UnsafeMutablePointer<Float>    // L × (B, T, 4C)
    let fchSig: UnsafeMutablePointer<Float>     // L × (B, T, 4C): GELU's σ(2u), saved for backward
    let residual3: UnsafeMutablePointer<Float>  // L × (B, T, C)
    let lnf: UnsafeMutablePointer<Float>        // (B, T, C)
    let lnfMean: UnsafeMutablePointer<Float>    // (B, T)
    let lnfRstd: UnsafeMutablePointer<Float>    // (B, T)
    let logits: UnsafeMutablePointer<Float>     // (B, T, V)
    let probs: UnsafeMutablePointer<Float>      // (B, T, V)
    let losses: UnsafeMutablePointer<Float>     // (B, T)
    // Projection outputs before the residual add (one layer at a time, not saved).
    let branch: UnsafeMutablePointer<Float>     // (B, T, C)

    // Backward scratch, reused across layers.
    let dresidual: UnsafeMutablePointer<Float>  // (B, T, C): d loss / d residual stream
    let dln: UnsafeMutablePointer<Float>        // (B, T, C): gradient at a LayerNorm output
    let datty: UnsafeMutablePointer<Float>      // (B, T, C)
    let dqkv: UnsafeMutablePointer<Float>       // (B, T, 3C)
    let datt: UnsafeMutablePointer<Float>       // (B, NH, T, T)
    let dfch: UnsafeMutablePointer<Float>       // (B, T, 4C)
    let dlogits: UnsafeMutablePointer<Float>    // (B, T, V)

    // Per-layer strides (elements), sized for the maximum (B, T).
    let strideBTC: Int, strideBT: Int, strideBT3C: Int, strideBT4C: Int, strideAtt: Int

    init(config: GPTConfig, maxBatch B: Int, maxSeqLen T: Int) {
        self.B = B; self.T = T
        C = config.nEmbd; V = config.vocabSize; L = config.nLayer; NH = config.nHead
        strideBTC = B * T * C; strideBT = B * T
        strideBT3C = 3 * strideBTC; strideBT4C = 4 * strideBTC
        strideAtt = B * NH * T * T
        let sizes: [Int] = [
            strideBTC,                                   // encoded
            L * strideBTC, L * strideBT, L * strideBT,   // ln1, mean, rstd
            L * strideBT3C, L * strideBTC, L * strideAtt, L * strideBTC, // qkv, atty, att, residual2
            L * strideBTC, L * strideBT, L * strideBT,   // ln2, mean, rstd
            L * strideBT4C, L * strideBT4C, L * strideBT4C, L * strideBTC, // fch, fchGelu, fchSig, residual3
            strideBTC, strideBT, strideBT,               // lnf, mean, rstd
            strideBT * V, strideBT * V, strideBT,        // logits, probs, losses
            strideBTC,                                   // branch
            strideBTC, strideBTC, strideBTC, strideBT3C, strideAtt, strideBT4C, strideBT * V, // backward
        ]
        storageCount = sizes.reduce(0, +)
        storage = .allocate(capacity: storageCount)
        storage.initialize(repeating: 0, count: storageCount)
        var cursor = storage
        var idx = 0
        func next() -> UnsafeMutablePointer<Float> {
            defer { cursor += sizes[idx]; idx += 1 }
            return cursor
        }
        encoded = next()
        ln1 = next(); ln1Mean = next(); ln1Rstd = next()
        qkv = next(); atty = next(); att = next(); residual2 = next()
        ln2 = next(); ln2Mean = next(); ln2Rstd = next()
        fch = next(); fchGelu = next(); fchSig = next(); residual3 = next()
        lnf = next(); lnfMean = next(); lnfRstd = next()
        logits = next(); probs = next(); losses = next()
        branch = next()
        dresidual = next(); dln = next(); datty = next(); dqkv = next(); datt = next(); dfch = next(); dlogits = next()
    }

    /// Releases the allocation; called once by the owning model's deinit.
    func deallocate() { storage.deallocate() }
}
