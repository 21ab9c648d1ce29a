import Tensors

extension GPTModel {
    /// Samples `count` new tokens after `prompt` (token ids in `0..<vocabSize`) and returns only the
    /// new tokens.
    ///
    /// Each step runs a forward pass (batch 1) over the last `maxSeqLen` tokens of the context and
    /// draws from softmax(logits / `temperature`) at the last position, restricted to the `topK`
    /// most likely tokens when given. `temperature <= 0` picks the most likely token (greedy).
    /// An empty prompt starts from a single newline token (10), which is not returned.
    /// Uses and advances `rng`, so a seed fixes the output. Overwrites the model's activations.
    public func generate(tokens prompt: [Int32], count: Int, temperature: Float = 1, topK: Int? = nil,
                         rng: inout SeededRNG) -> [Int32] {
        let V = config.vocabSize
        var context = prompt.isEmpty ? [Int32(min(10, V - 1))] : prompt
        var out: [Int32] = []
        out.reserveCapacity(max(count, 0))
        for _ in 0..<max(count, 0) {
            let window = Array(context.suffix(maxSeqLen))
            let T = window.count
            _ = window.withUnsafeBufferPointer { forward(inputs: $0, targets: nil, batch: 1, seqLen: T) }
            let row = Array(logits[((T - 1) * V)..<(T * V)])
            let next = Self.sample(logits: row, temperature: temperature, topK: topK, rng: &rng)
            out.append(next)
            context.append(next)
        }
        return out
    }

    /// Byte-level convenience over `generate(tokens:...)`: the prompt's bytes are the tokens.
    /// Precondition: `vocabSize <= 256` so every sampled token is a byte.
    public func generate(prompt: [UInt8], count: Int, temperature: Float = 1, topK: Int? = nil,
                         rng: inout SeededRNG) -> [UInt8] {
        precondition(config.vocabSize <= 256, "generate(prompt:): byte sampling needs vocabSize <= 256")
        return generate(tokens: prompt.map { Int32($0) }, count: count, temperature: temperature,
                        topK: topK, rng: &rng).map { UInt8($0) }
    }

    /// Draws one token from `logits` (see `generate` for the meaning of the parameters).
    static func sample(logits: [Float], temperature: Float, topK: Int?, rng: inout SeededRNG) -> Int32 {
        if temperature <= 0 {
            var best = 0
            for j in logits.indices where logits[j] > logits[best] { best = j }
            return Int32(best)
        }
        var candidates = Array(logits.indices)
        if let k = topK, k > 0, k < logits.count {
            // Ties broken by index so the choice is deterministic.
            candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            candidates.removeLast(candidates.count - k)
        }
        let scaled = candidates.map { Double(logits[$0]) / Double(temperature) }
        let mx = scaled.max() ?? 0
        let weights = scaled.map { exp($0 - mx) }
        let total = weights.reduce(0, +)
        var u = Double(rng.nextUniform()) * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { return Int32(candidates[i]) }
        }
        return Int32(candidates[candidates.count - 1])
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
