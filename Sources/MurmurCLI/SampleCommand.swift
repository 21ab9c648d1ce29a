import ArgumentParser
import Foundation
import PeerRuntime
import Tensors
import TinyGPT

/// `murmur sample CHECKPOINT`: prints generated text.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate text from a checkpoint.",
        discussion: """
        Example:
          murmur sample runs/train-small-adamw/final.safetensors --prompt "ROMEO." --length 400
        """)

    @Argument(help: "A Murmur checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Text to start from.") var prompt = "\n"
    @Option(help: "Bytes to generate.") var length = 400
    @Option(help: "Sampling temperature (0: greedy).") var temperature: Float = 0.8
    @Option(help: "Sample only among the K most likely bytes (0: all).") var topK = 40
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        guard let data = FileManager.default.contents(atPath: checkpoint) else {
            throw ValidationError("cannot read checkpoint \(checkpoint): check the path")
        }
        let ckpt = try TrainingCheckpoint.decode(data)
        let model = try GPTModel(config: ckpt.config, maxBatchSize: 1, seed: 0)
        _ = ckpt.parameters.withUnsafeBufferPointer { src in model.parameters.update(fromContentsOf: src) }
        var rng = SeededRNG(seed: seed)
        let out = model.generate(prompt: Array(prompt.utf8), count: length, temperature: temperature,
                                 topK: topK > 0 ? topK : nil, rng: &rng)
        print(prompt + String(decoding: out, as: UTF8.self))
    }
}
