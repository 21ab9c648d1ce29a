import Tensors

/// The parameter layout of a `GPTConfig` and its deterministic initialisation.
///
/// Order (fixed; gradients, optimizer moments and checkpoints rely on it):
/// 1. `transformer.wte.weight` (V, C), `transformer.wpe.weight` (blockSize, C)
/// 2. for each block `i` in 0..<nLayer, with prefix `transformer.h.{i}.`:
///    `ln_1.weight` (C), `ln_1.bias` (C), `attn.c_attn.weight` (C, 3C), `attn.c_attn.bias` (3C),
///    `attn.c_proj.weight` (C, C), `attn.c_proj.bias` (C), `ln_2.weight` (C), `ln_2.bias` (C),
///    `mlp.c_fc.weight` (C, 4C), `mlp.c_fc.bias` (4C), `mlp.c_proj.weight` (4C, C), `mlp.c_proj.bias` (C)
/// 3. `transformer.ln_f.weight` (C), `transformer.ln_f.bias` (C)
///
/// Names are Hugging Face GPT-2's; weights are stored (in, out) so `y = x @ W + b`.
public enum GPTParameters {
    /// Per-block tensor suffixes in layout order.
    public static let blockSuffixes = [
        "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
        "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
        "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
    ]

    /// The layout for `config` (see the type's documentation for the order).
    public static func layout(for config: GPTConfig) -> ParameterLayout {
        let c = config.nEmbd
        var entries: [(name: String, shape: [Int])] = [
            ("transformer.wte.weight", [config.vocabSize, c]),
            ("transformer.wpe.weight", [config.blockSize, c]),
        ]
        for i in 0..<config.nLayer {
            let shapes: [[Int]] = [[c], [c], [c, 3 * c], [3 * c], [c, c], [c], [c], [c],
                                   [c, 4 * c], [4 * c], [4 * c, c], [c]]
            for (suffix, shape) in zip(blockSuffixes, shapes) {
                entries.append(("transformer.h.\(i).\(suffix)", shape))
            }
        }
        entries.append(("transformer.ln_f.weight", [c]))
        entries.append(("transformer.ln_f.bias", [c]))
        return ParameterLayout(entries)
    }

    /// Fills `params` (laid out by `layout(for: config)`) GPT-2 style from `seed`: every weight matrix
    /// and both embeddings normal(0, 0.02), residual projections (`attn.c_proj.weight`,
    /// `mlp.c_proj.weight`) normal(0, 0.02 / sqrt(2·nLayer)), biases 0, LayerNorm weights 1.
    /// Draws happen in layout order from one `SeededRNG(seed:)`, so a seed fixes every value.
    public static func initialize(_ params: UnsafeMutableBufferPointer<Float>, config: GPTConfig, seed: UInt64) {
        let layout = layout(for: config)
        precondition(params.count == layout.totalCount, "parameter buffer does not match the layout")
        var rng = SeededRNG(seed: seed)
        let residualScale = Float(1 / (2 * Double(config.nLayer)).squareRoot())
        for slot in layout.slots {
            let name = slot.name
            let fill: Float?
            var std: Float = 0.02
            if name.hasSuffix(".bias") {
                fill = 0
            } else if name.contains(".ln_") {
                fill = 1
            } else {
                fill = nil
                if name.hasSuffix("c_proj.weight") { std *= residualScale }
            }
            for i in slot.range {
                params[i] = fill ?? rng.nextNormal() * std
            }
        }
    }
}

/// Element offsets of one block's tensors inside the flat parameter (or gradient) buffer, resolved
/// once so the hot loops do no name lookups.
struct BlockOffsets: Sendable {
    var ln1w = 0, ln1b = 0, qkvw = 0, qkvb = 0, attprojw = 0, attprojb = 0
    var ln2w = 0, ln2b = 0, fcw = 0, fcb = 0, fcprojw = 0, fcprojb = 0

    init(layout: ParameterLayout, block i: Int) {
        func off(_ s: String) -> Int { layout.slot(named: "transformer.h.\(i).\(s)")!.offset }
        ln1w = off("ln_1.weight"); ln1b = off("ln_1.bias")
        qkvw = off("attn.c_attn.weight"); qkvb = off("attn.c_attn.bias")
        attprojw = off("attn.c_proj.weight"); attprojb = off("attn.c_proj.bias")
        ln2w = off("ln_2.weight"); ln2b = off("ln_2.bias")
        fcw = off("mlp.c_fc.weight"); fcb = off("mlp.c_fc.bias")
        fcprojw = off("mlp.c_proj.weight"); fcprojb = off("mlp.c_proj.bias")
    }
}
