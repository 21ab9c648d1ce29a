import Tensors
import TinyGPT

/// Autoregressive byte sampling from a model.
public enum Sampler {
    /// Generates `count` bytes after `prompt`, feeding at most the last `blockSize` bytes each time.
    /// `temperature` 0 picks the most likely byte; `topK` > 0 restricts sampling to the K most likely.
    public static func generate(model: GPTModel, prompt: [UInt8], count: Int, temperature: Float, topK: Int,
                                rng: inout SeededRNG) -> [UInt8] {
        let V = model.config.vocabSize, T = model.maxSeqLen
        var context = prompt.isEmpty ? [UInt8(ascii: "\n")] : prompt
        var out: [UInt8] = []
        var tokens = [Int32](repeating: 0, count: T)
        var logits = [Float](repeating: 0, count: V)
        for _ in 0..<count {
            let window = context.suffix(T)
            let n = window.count
            for (i, b) in window.enumerated() { tokens[i] = Int32(b) }
            tokens.withUnsafeBufferPointer { model.forward(inputs: UnsafeBufferPointer(rebasing: $0[0..<n]), targets: nil, batch: 1, seqLen: n) }
            let all = model.logits
            for v in 0..<V { logits[v] = all[(n - 1) * V + v] }
            let next = pick(logits, temperature: temperature, topK: topK, rng: &rng)
            out.append(next)
            context.append(next)
        }
        return out
    }

    static func pick(_ logits: [Float], temperature: Float, topK: Int, rng: inout SeededRNG) -> UInt8 {
        if temperature <= 0 { return UInt8(logits.indices.max { logits[$0] < logits[$1] }!) }
        var order = Array(logits.indices).sorted { logits[$0] > logits[$1] }
        if topK > 0 && topK < order.count { order = Array(order.prefix(topK)) }
        let top = logits[order[0]]
        let weights = order.map { Double(((logits[$0] - top) / temperature)).exp }
        var r = Double(rng.nextUniform()) * weights.reduce(0, +)
        for (i, w) in zip(order, weights) {
            r -= w
            if r <= 0 { return UInt8(i) }
        }
        return UInt8(order.last!)
    }
}

extension Double {
    fileprivate var exp: Double { Foundation.exp(self) }
}
import Foundation
