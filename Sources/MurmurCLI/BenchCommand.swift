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
        discussion: """
        Examples:
          murmur bench demo
          murmur bench train --preset small --batch-size 12
        """,
        subcommands: [Demo.self, Train.self])

    /// One line naming the OpenBLAS kernels in use and who chose them.
    static func blasLine() -> String {
        let env = ProcessInfo.processInfo.environment
        var how = "chosen by OpenBLAS"
        if env[BLASCoreSelection.markerVariable] != nil, let c = env["OPENBLAS_CORETYPE"] {
            how = "OPENBLAS_CORETYPE=\(c) set by murmur at start"
        } else if let c = env["OPENBLAS_CORETYPE"], !c.isEmpty {
            how = "OPENBLAS_CORETYPE=\(c) from the environment"
        } else if env["MURMUR_BLAS_CORE"]?.lowercased() == "off" {
            how = "chosen by OpenBLAS, MURMUR_BLAS_CORE=off"
        }
        return "BLAS: OpenBLAS core \(BLAS.coreName) (\(how)); \(BLAS.configString)"
    }

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
            print(BenchCommand.blasLine())
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
        @Option(help: "Timed steps (after 3 warm-up steps).") var steps = 40
        @Option(help: "Worker threads of the model's kernels.") var threads = 2
        @Option(help: "BLAS threads (default: 1 when the model runs several workers).") var blasThreads: Int?
        @Option(help: "Repetitions; the best is reported.") var repeats = 3

        func run() throws {
            print(BenchCommand.blasLine())
            var best: TrainBenchResult?
            for r in 0..<max(1, repeats) {
                var adam: AdamW?
                let res = try TrainBench.run(preset: preset, batchSize: batchSize, steps: steps, warmup: 3, threads: threads,
                                             blasThreads: blasThreads) { m in
                    if adam == nil { adam = AdamW(layout: m.layout); adam!.threads = threads }
                    adam!.step(params: m.parameters, grads: UnsafeBufferPointer(m.gradients), lr: 1e-4)
                }
                print(String(format: "run %d: %.0f tokens/s (forward %.2f ms, backward %.2f ms, AdamW %.2f ms per step)",
                             r + 1, res.tokensPerSecond, res.forwardSeconds * 1000, res.backwardSeconds * 1000, res.optimizerSeconds * 1000))
                if best == nil || res.tokensPerSecond > best!.tokensPerSecond { best = res }
            }
            let b = best!
            print(String(format: "bench train: preset %@, batch %d × %d, %d threads: best %.0f tokens/s (forward+backward+AdamW)",
                         preset, b.batchSize, b.seqLen, threads, b.tokensPerSecond))
        }
    }
}
