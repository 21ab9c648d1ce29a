import ArgumentParser
import Checkpointing
import DeMo
import Foundation
import PeerRuntime
import Tensors
import TinyGPT

/// Options shared by commands that load the corpus.
struct CorpusOptions: ParsableArguments {
    @Option(help: "Train on this text file instead of the Shakespeare corpus.") var data: String?
    @Option(help: "Folder of the fetched corpus.") var dataDir = "data"

    func load(contextLength: Int) throws -> Corpus {
        if let data { return try Corpus.load(path: data, contextLength: contextLength) }
        return try CorpusFetcher(directory: URL(fileURLWithPath: dataDir)).load(contextLength: contextLength)
    }
}

/// `murmur train`: one process, no mesh.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train TinyGPT in one process (no mesh), with AdamW or single-peer DeMo.",
        discussion: """
        Batches are drawn deterministically from (seed, peer 0, step). The learning rate warms up
        linearly, then follows a cosine down to --min-lr-ratio of its peak. Validation loss (nats per
        byte) is measured every --eval-every steps on fixed windows of the last 10% of the corpus.
        A safetensors checkpoint is written at the end (loadable with `murmur sample`).

        Examples:
          murmur train --preset small --optimizer adamw --steps 2000 --batch-size 12
          murmur train --preset small --optimizer demo --lr 3e-3 --steps 2000
        """)

    @Option(help: "Model preset: nano, tiny, small, base.") var preset = "small"
    @Option(help: "adamw or demo.") var optimizer = "adamw"
    @Option(help: "Training steps.") var steps = 2000
    @Option(help: "Sequences per step.") var batchSize = 12
    @Option(help: "Peak learning rate (default: 1e-3 for adamw, 3e-3 for demo).") var lr: Double?
    @Option(help: "Warmup steps (default: 5% of steps).") var warmup: Int?
    @Option(help: "Final lr as a fraction of the peak.") var minLrRatio = 0.1
    @Option(help: "Clip the gradient's global norm to this (0: off).") var clip: Float = 1.0
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0.0
    @Option(help: "DeMo top-k per chunk.") var topk = 32
    @Option(help: "DeMo target chunk size.") var chunk = 64
    @Option(help: "DeMo momentum decay.") var decay = 0.999
    @Option(help: "DeMo value format: f32, bf16, int8, sign.") var values = "f32"
    @Option(help: "Measure validation loss every N steps (0: only at the end).") var evalEvery = 250
    @Option(help: "Validation batches per measurement.") var evalBatches = 40
    @Option(help: "Run seed (init and batches).") var seed: UInt64 = 1234
    @Option(help: "Threads for the model's kernels and BLAS.") var threads = 2
    @Option(help: "Checkpoint path (default: runs/train-PRESET-OPTIMIZER/final.safetensors).") var out: String?
    @OptionGroup var corpus: CorpusOptions

    func run() throws {
        let config = try GPTConfig.preset(named: preset)
        let corpus = try self.corpus.load(contextLength: config.blockSize)
        let sampler = BatchSampler(corpus: corpus, seed: seed, batchSize: batchSize, seqLen: config.blockSize)
        BLAS.setThreads(threads)
        let model = try GPTModel(config: config, maxBatchSize: batchSize, seed: seed, threads: threads)
        let peak = lr ?? (optimizer == "demo" ? 3e-3 : 1e-3)
        let schedule = LRSchedule(peak: peak, warmupSteps: warmup ?? max(1, steps / 20), totalSteps: steps, minRatio: minLrRatio)
        let opt: EngineOptimizer
        switch optimizer {
        case "adamw": opt = .adamw(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: weightDecay)
        case "demo":
            guard let f = DeMoValueFormat(name: values) else { throw ValidationError("unknown --values '\(values)': use f32, bf16, int8 or sign") }
            opt = .demo(DeMoConfig(decay: decay, topk: topk, chunk: chunk, weightDecay: Double(weightDecay), valueFormat: f))
        default: throw ValidationError("unknown --optimizer '\(optimizer)': use adamw or demo")
        }
        let engine = try GPTEngine(model: model, sampler: sampler, peer: 0, optimizer: opt, schedule: schedule,
                                   clipNorm: clip > 0 ? clip : nil)
        let evaluator = Evaluator(model: model, sampler: sampler, batches: evalBatches)
        print("murmur train: \(preset) (\(model.parameterCount) parameters), \(optimizer), \(steps) steps × \(batchSize)×\(config.blockSize) tokens, lr \(peak), corpus \(corpus.source) (\(corpus.bytes.count) bytes)")
        let progress = ProgressLine(total: steps)
        let start = Date()
        var smoothed: Float = .nan
        for step in 0..<steps {
            let (body, loss) = try engine.contribute(step: step)
            try engine.apply(step: step, contributions: [(peer: 0, body: body)])
            smoothed = smoothed.isNaN ? loss : 0.95 * smoothed + 0.05 * loss
            let elapsed = Date().timeIntervalSince(start)
            let tokens = Double((step + 1) * batchSize * config.blockSize)
            progress.update(step: step + 1, text: String(format: "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %@",
                                                          step + 1, steps, smoothed, schedule.rate(at: step), tokens / elapsed,
                                                          ProgressLine.duration(elapsed / Double(step + 1) * Double(steps - step - 1))))
            if evalEvery > 0 && (step + 1) % evalEvery == 0 && step + 1 < steps {
                progress.log(String(format: "step %d: val loss %.4f", step + 1, evaluator.loss()))
            }
        }
        let val = evaluator.loss()
        progress.finish()
        let elapsed = Date().timeIntervalSince(start)
        print(String(format: "final: val loss %.4f nats/byte, train loss (smoothed) %.4f, %.1f s, %.0f tokens/s",
                     val, smoothed, elapsed, Double(steps * batchSize * config.blockSize) / elapsed))
        let path = out ?? "runs/train-\(preset)-\(optimizer)/final.safetensors"
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var ckpt = TrainingCheckpoint(config: config, step: steps, parameters: Array(model.parameters),
                                      extra: ["optimizer": optimizer, "val_loss": String(val), "corpus_sha256": SHA256Hex.hash(corpus.bytes)])
        ckpt.residual = engine.demo?.residual
        if let a = engine.adam { ckpt.adamM = a.m; ckpt.adamV = a.v; ckpt.adamT = a.t }
        try AtomicFile.write([UInt8](try ckpt.encoded()), to: url, mode: 0o600)
        print("checkpoint: \(url.path)")
    }
}

/// Mean validation loss over fixed windows.
struct Evaluator {
    let model: GPTModel
    let sampler: BatchSampler
    let batches: Int

    func loss() -> Float {
        let n = sampler.validationBatchCount(limit: batches)
        var b = TokenBatch(batchSize: sampler.batchSize, seqLen: sampler.seqLen)
        var total = 0.0
        for i in 0..<n {
            sampler.validationBatch(index: i, of: n, into: &b)
            total += Double(b.inputs.withUnsafeBufferPointer { inp in
                b.targets.withUnsafeBufferPointer { tgt in
                    model.forward(inputs: inp, targets: tgt, batch: b.batchSize, seqLen: b.seqLen)
                }
            })
        }
        return Float(total / Double(n))
    }
}
