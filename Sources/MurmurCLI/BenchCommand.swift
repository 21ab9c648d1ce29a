import ArgumentParser
import DeMo
import Foundation
import PeerRuntime
import Tensors
import TinyGPT

/// `murmur bench …`: throughput benchmarks (measured here, never asserted in tests).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks: DeMo optimizer and training throughput.",
        subcommands: [Demo.self, Train.self])

    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time DeMo prepare/apply on one GPT-2-small block plus embeddings; bytes per step per format.",
            discussion: """
            Example:
              murmur bench demo              # full size (50304×768 embedding included)
              murmur bench demo --scale 4    # every dimension divided by 4
            """)
        @Option(help: "Divide every tensor dimension by S.") var scale = 1
        @Option(help: "Top-k per chunk.") var topk = 32
        @Option(help: "Target chunk size.") var chunk = 64

        func run() throws {
            guard scale >= 1 else { throw ValidationError("--scale must be at least 1") }
            DeMoBench.run(scale: scale, topk: topk, chunk: chunk) { print($0) }
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward + backward + AdamW tokens per second on random tokens.",
            discussion: """
            Example:
              murmur bench train --preset small --batch-size 12
            """)
        @Option(help: "Model preset.") var preset = "small"
        @Option(help: "Sequences per step.") var batchSize = 12
        @Option(help: "Timed steps (after 5 warm-up steps).") var steps = 50
        @Option(help: "Threads for kernels and BLAS.") var threads = 2
        @Option(help: "Repetitions; the best is reported.") var repeats = 3

        func run() throws {
            let config = try GPTConfig.preset(named: preset)
            BLAS.setThreads(threads)
            let model = try GPTModel(config: config, maxBatchSize: batchSize, seed: 1, threads: threads)
            let adam = AdamW(layout: model.layout)
            let T = config.blockSize, N = batchSize * T
            var rng = SeededRNG(seed: 3)
            let inputs = (0..<N).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
            let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
            func step() {
                inputs.withUnsafeBufferPointer { i in
                    targets.withUnsafeBufferPointer { t in _ = model.forward(inputs: i, targets: t, batch: batchSize, seqLen: T) }
                }
                model.backward()
                adam.step(params: model.parameters, grads: UnsafeBufferPointer(model.gradients), lr: 1e-4)
            }
            for _ in 0..<5 { step() }
            var best = 0.0
            for r in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<steps { step() }
                let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                let tps = Double(steps * N) / secs
                best = max(best, tps)
                print(String(format: "run %d: %d steps in %.3f s = %.0f tokens/s (%.2f ms/step)", r + 1, steps, secs, tps, secs / Double(steps) * 1000))
            }
            print(String(format: "bench train: preset %@ (%d params), batch %d × %d, %d threads: best %.0f tokens/s",
                         preset, model.parameterCount, batchSize, T, threads, best))
        }
    }
}
