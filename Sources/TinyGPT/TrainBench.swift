import Foundation
import Tensors

/// Throughput of one `TrainBench` run.
public struct TrainBenchResult: Sendable, CustomStringConvertible {
    public var config: GPTConfig
    public var batchSize: Int
    public var seqLen: Int
    /// Timed steps (warm-up steps excluded).
    public var steps: Int
    public var threads: Int
    /// Tokens (B·T) processed per second of forward + backward + optimizer step.
    public var tokensPerSecond: Double
    /// Mean seconds per phase and step.
    public var forwardSeconds: Double, backwardSeconds: Double, optimizerSeconds: Double
    /// Process CPU time (user + system, all threads) per timed step, in seconds. On a shared machine
    /// `tokens / (steps × cpuSecondsPerStep)` shows the work per token independent of contention.
    public var cpuSecondsPerStep: Double
    /// Loss of the last timed step (nats), to show the optimizer is doing something.
    public var lastLoss: Float

    public var description: String {
        func ms(_ s: Double) -> String { String(format: "%.1f", s * 1000) }
        return "train bench: \(Int(tokensPerSecond.rounded())) tokens/s "
            + "(B=\(batchSize) T=\(seqLen) L=\(config.nLayer) H=\(config.nHead) C=\(config.nEmbd), "
            + "threads \(threads), \(steps) steps; per step forward \(ms(forwardSeconds)) ms, "
            + "backward \(ms(backwardSeconds)) ms, optimizer \(ms(optimizerSeconds)) ms; "
            + "CPU \(ms(cpuSecondsPerStep)) ms/step; last loss \(lastLoss))"
    }
}

/// Measures training throughput (forward + backward + optimizer step) on synthetic byte data.
///
/// The optimizer is passed in as a closure so this module needs no optimizer dependency; the CLI
/// passes DeMo's `AdamW`, e.g. `{ m in adam.step(params: m.parameters, grads: UnsafeBufferPointer(m.gradients), lr: 3e-4) }`.
public enum TrainBench {
    /// Runs `warmup` untimed steps then `steps` timed ones of a model built from `config` (seed 0)
    /// with batch `batchSize` × `seqLen` (default: `blockSize`) tokens. `threads` is the model's
    /// batch workers (`GPTModel.threads`); `blasThreads` the process-wide BLAS thread count, by
    /// default 1 when the model runs several workers (they already occupy the cores; the model
    /// forces 1 during its passes anyway) and `threads` otherwise. `log` receives one line per timed step. Throws for invalid configs or sizes.
    public static func run(config: GPTConfig, batchSize: Int, seqLen: Int? = nil, steps: Int, warmup: Int = 2,
                           threads: Int, blasThreads: Int? = nil, log: (String) -> Void = { _ in },
                           optimizerStep: (GPTModel) -> Void) throws -> TrainBenchResult {
        let T = seqLen ?? config.blockSize
        let model = try GPTModel(config: config, maxBatchSize: batchSize, maxSeqLen: T, seed: 0, threads: threads)
        BLAS.setThreads(blasThreads ?? (threads > 1 ? 1 : threads))
        let n = batchSize * T
        // Synthetic text: a seeded random walk over printable bytes, so losses are realistic-ish.
        var rng = SeededRNG(seed: 1234)
        var stream = [Int32](repeating: 0, count: n + 1)
        var cur: Int32 = 65
        for i in stream.indices {
            cur = 32 + (cur - 32 + Int32(rng.next() % 7) - 3 + 95) % 95
            stream[i] = min(cur, Int32(config.vocabSize - 1))
        }
        let inputs = Array(stream[0..<n]), targets = Array(stream[1...n])
        var fwd = 0.0, bwd = 0.0, opt = 0.0, loss: Float = 0
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        var cpuStart = 0.0
        for s in 0..<(warmup + max(steps, 1)) {
            if s == warmup { cpuStart = processCPUSeconds() }
            let t0 = clock.now
            loss = inputs.withUnsafeBufferPointer { i in
                targets.withUnsafeBufferPointer { t in model.forward(inputs: i, targets: t, batch: batchSize, seqLen: T) }
            }
            let t1 = clock.now
            model.backward()
            let t2 = clock.now
            optimizerStep(model)
            let t3 = clock.now
            guard s >= warmup else { continue }
            fwd += seconds(t1 - t0); bwd += seconds(t2 - t1); opt += seconds(t3 - t2)
            let stepSec = seconds(t3 - t0)
            log("step \(s - warmup + 1)/\(steps): loss \(loss), \(Int((Double(n) / stepSec).rounded())) tokens/s")
        }
        let cpu = processCPUSeconds() - cpuStart
        let k = Double(max(steps, 1))
        return TrainBenchResult(config: config, batchSize: batchSize, seqLen: T, steps: max(steps, 1), threads: threads,
                                tokensPerSecond: Double(n) * k / (fwd + bwd + opt),
                                forwardSeconds: fwd / k, backwardSeconds: bwd / k, optimizerSeconds: opt / k,
                                cpuSecondsPerStep: cpu / k, lastLoss: loss)
    }

    /// `run(config:...)` for a preset name (`nano`, `tiny`, `small`, `base`).
    public static func run(preset: String, batchSize: Int, seqLen: Int? = nil, steps: Int, warmup: Int = 2,
                           threads: Int, blasThreads: Int? = nil, log: (String) -> Void = { _ in },
                           optimizerStep: (GPTModel) -> Void) throws -> TrainBenchResult {
        try run(config: GPTConfig.preset(named: preset), batchSize: batchSize, seqLen: seqLen, steps: steps,
                warmup: warmup, threads: threads, blasThreads: blasThreads, log: log, optimizerStep: optimizerStep)
    }
}

/// User + system CPU seconds of this process so far (all threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func sec(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return sec(usage.ru_utime) + sec(usage.ru_stime)
}
