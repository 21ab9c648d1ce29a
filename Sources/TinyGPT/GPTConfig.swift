/// Errors raised when a `GPTConfig` or a model request cannot work.
public enum GPTConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A size that must be positive is not (`field` names it, e.g. `nLayer`).
    case nonPositive(field: String, value: Int)
    /// `nEmbd` is not a multiple of `nHead`, so heads would have unequal widths.
    case embeddingNotDivisibleByHeads(nEmbd: Int, nHead: Int)
    /// A requested sequence length exceeds the model's context (`blockSize`).
    case sequenceTooLong(requested: Int, blockSize: Int)
    /// A preset name that `GPTConfig.preset(named:)` does not know.
    case unknownPreset(String)
    /// `GPTConfig(metadata:)` found a key missing or not an integer.
    case badMetadata(key: String, value: String?)

    public var description: String {
        switch self {
        case .nonPositive(let f, let v):
            return "GPT config: \(f) must be > 0 (got \(v)); choose a positive value"
        case .embeddingNotDivisibleByHeads(let c, let h):
            return "GPT config: nEmbd (\(c)) must be a multiple of nHead (\(h)); change one of them"
        case .sequenceTooLong(let t, let b):
            return "GPT config: sequence length \(t) exceeds blockSize \(b); use a shorter sequence or a larger blockSize"
        case .badMetadata(let k, let v):
            return "GPT config: metadata key '\(k)' is \(v.map { "'\($0)', not an integer" } ?? "missing"); the checkpoint lacks the model config"
        case .unknownPreset(let n):
            return "GPT config: unknown preset '\(n)'; use one of \(GPTConfig.presetNames.joined(separator: ", "))"
        }
    }
}

/// The shape of a GPT-2 style byte-level model.
///
/// `vocabSize` tokens (256 for bytes), `nLayer` transformer blocks of `nHead` heads over `nEmbd`
/// channels, context of `blockSize` positions. Use `validate()` (or `GPTModel.init`, which calls it)
/// before relying on the values.
public struct GPTConfig: Sendable, Hashable, Codable {
    public var vocabSize: Int
    public var nLayer: Int
    public var nHead: Int
    public var nEmbd: Int
    public var blockSize: Int

    public init(vocabSize: Int = 256, nLayer: Int, nHead: Int, nEmbd: Int, blockSize: Int) {
        self.vocabSize = vocabSize
        self.nLayer = nLayer
        self.nHead = nHead
        self.nEmbd = nEmbd
        self.blockSize = blockSize
    }

    /// 1 layer, 2 heads, 32 channels, context 32 (for finite-difference tests).
    public static let nano = GPTConfig(nLayer: 1, nHead: 2, nEmbd: 32, blockSize: 32)
    /// 2 layers, 4 heads, 64 channels, context 64.
    public static let tiny = GPTConfig(nLayer: 2, nHead: 4, nEmbd: 64, blockSize: 64)
    /// 4 layers, 4 heads, 128 channels, context 64 (the speed benchmark's model).
    public static let small = GPTConfig(nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64)
    /// 6 layers, 6 heads, 384 channels, context 256.
    public static let base = GPTConfig(nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256)

    /// Names accepted by `preset(named:)`.
    public static let presetNames = ["nano", "tiny", "small", "base"]

    /// The preset called `name` (`nano`, `tiny`, `small`, `base`).
    public static func preset(named name: String) throws -> GPTConfig {
        switch name.lowercased() {
        case "nano": return .nano
        case "tiny": return .tiny
        case "small": return .small
        case "base": return .base
        default: throw GPTConfigError.unknownPreset(name)
        }
    }

    /// Channels per head, `nEmbd / nHead`.
    public var headSize: Int { nEmbd / nHead }

    /// Throws the first problem found: every size must be positive and `nEmbd % nHead == 0`.
    public func validate() throws {
        for (name, v) in [("vocabSize", vocabSize), ("nLayer", nLayer), ("nHead", nHead),
                          ("nEmbd", nEmbd), ("blockSize", blockSize)] where v <= 0 {
            throw GPTConfigError.nonPositive(field: name, value: v)
        }
        if nEmbd % nHead != 0 { throw GPTConfigError.embeddingNotDivisibleByHeads(nEmbd: nEmbd, nHead: nHead) }
    }

    /// The config as string metadata (Hugging Face key names: `vocab_size`, `n_layer`, `n_head`,
    /// `n_embd`, `block_size`), e.g. for a safetensors `__metadata__` map.
    public var metadata: [String: String] {
        ["vocab_size": "\(vocabSize)", "n_layer": "\(nLayer)", "n_head": "\(nHead)",
         "n_embd": "\(nEmbd)", "block_size": "\(blockSize)"]
    }

    /// Reads the keys written by `metadata` (other keys are ignored) and validates the result.
    public init(metadata: [String: String]) throws {
        func int(_ key: String) throws -> Int {
            guard let s = metadata[key], let v = Int(s) else { throw GPTConfigError.badMetadata(key: key, value: metadata[key]) }
            return v
        }
        self.init(vocabSize: try int("vocab_size"), nLayer: try int("n_layer"), nHead: try int("n_head"),
                  nEmbd: try int("n_embd"), blockSize: try int("block_size"))
        try validate()
    }

    /// Number of parameters (equals `GPTParameters.layout(for:).totalCount`).
    public var parameterCount: Int { GPTParameters.layout(for: self).totalCount }
}
