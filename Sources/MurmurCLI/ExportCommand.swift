import ArgumentParser
import Checkpointing
import Foundation
import PeerRuntime
import TinyGPT

/// `murmur export --hf DIR CHECKPOINT`: a Hugging Face GPT-2 folder (config.json + model.safetensors).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a Hugging Face GPT-2 model folder from a Murmur checkpoint.",
        discussion: """
        DIR gets config.json (GPT2LMHeadModel, byte vocabulary of 256, gelu_new, tied head) and
        model.safetensors with the parameters under GPT-2's names (Conv1D weights are (in, out), as
        Murmur stores them). Load it with transformers: GPT2LMHeadModel.from_pretrained(DIR).

        Example:
          murmur export --hf /tmp/murmur-gpt2 runs/train-small-adamw/final.safetensors
        """)

    @Option(name: .customLong("hf"), help: "Output folder.") var dir: String
    @Argument(help: "A Murmur checkpoint (.safetensors).") var checkpoint: String

    func run() throws {
        guard let data = FileManager.default.contents(atPath: checkpoint) else {
            throw ValidationError("cannot read checkpoint \(checkpoint): check the path")
        }
        let ckpt = try TrainingCheckpoint.decode(data)
        let out = URL(fileURLWithPath: dir)
        try HFExport.write(ckpt, to: out)
        print("wrote \(out.appendingPathComponent("config.json").path) and model.safetensors (\(ckpt.parameters.count) parameters, step \(ckpt.step))")
    }
}

/// The Hugging Face GPT-2 layout of a TinyGPT model.
enum HFExport {
    static func config(_ c: GPTConfig) -> [String: Any] {
        [
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": c.vocabSize, "n_positions": c.blockSize, "n_ctx": c.blockSize,
            "n_embd": c.nEmbd, "n_layer": c.nLayer, "n_head": c.nHead, "n_inner": NSNull(),
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02,
            "tie_word_embeddings": true, "bos_token_id": 10, "eos_token_id": 10, "torch_dtype": "float32",
        ]
    }

    static func write(_ ckpt: TrainingCheckpoint, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let json = try JSONSerialization.data(withJSONObject: config(ckpt.config), options: [.prettyPrinted, .sortedKeys])
        try json.write(to: dir.appendingPathComponent("config.json"), options: .atomic)
        let layout = GPTParameters.layout(for: ckpt.config)
        let tensors = layout.slots.map { SafeTensor(name: $0.name, shape: $0.shape, floats: ckpt.parameters[$0.range]) }
        try SafeTensors(tensors: tensors, metadata: ["format": "pt"]).write(to: dir.appendingPathComponent("model.safetensors"))
    }
}
