import Tensors

/// Micro-benchmark of `prepare`, `apply` and the codec on the tensors of GPT-2 small's embeddings
/// plus one transformer block, for `murmur bench`.
///
/// Reads the wall clock (this is the one place in the module that does): it is a tool for an
/// operator, not part of a training step.
public enum DeMoBench {
    /// The tensor list: embeddings (padded vocab 50304, 1024 positions), one block, final norm.
    /// Every dimension is divided by `scale` (rounded down, at least 1).
    public static func gpt2SmallLayout(scale: Int) -> ParameterLayout {
        let s = max(1, scale)
        func d(_ x: Int) -> Int { max(1, x / s) }
        let e = d(768)
        return ParameterLayout([
            (name: "wte", shape: [d(50304), e]), (name: "wpe", shape: [d(1024), e]),
            (name: "h.0.ln_1.weight", shape: [e]), (name: "h.0.ln_1.bias", shape: [e]),
            (name: "h.0.attn.c_attn.weight", shape: [e, d(2304)]), (name: "h.0.attn.c_attn.bias", shape: [d(2304)]),
            (name: "h.0.attn.c_proj.weight", shape: [e, e]), (name: "h.0.attn.c_proj.bias", shape: [e]),
            (name: "h.0.ln_2.weight", shape: [e]), (name: "h.0.ln_2.bias", shape: [e]),
            (name: "h.0.mlp.c_fc.weight", shape: [e, d(3072)]), (name: "h.0.mlp.c_fc.bias", shape: [d(3072)]),
            (name: "h.0.mlp.c_proj.weight", shape: [d(3072), e]), (name: "h.0.mlp.c_proj.bias", shape: [e]),
            (name: "ln_f.weight", shape: [e]), (name: "ln_f.bias", shape: [e]),
        ])
    }

    /// Times `prepare` and `apply` (best and median of several repetitions; apply with 1 and with
    /// 4 contributions) and prints elements/s and the bytes one peer sends per step in each value
    /// format, next to the reference accounting and dense fp32. Lines go to `log`.
    public static func run(scale: Int, topk: Int = 32, chunk: Int = 64, log: (String) -> Void) {
        let layout = gpt2SmallLayout(scale: scale)
        let n = layout.totalCount
        let reps = n > 10_000_000 ? 3 : 7
        log("DeMo bench: GPT-2 small embeddings + 1 block at scale 1/\(max(1, scale)): \(layout.slots.count) tensors, \(n) elements, topk \(topk), chunk \(chunk), \(reps) repetitions, BLAS threads \(BLAS.threads)")
        let config = DeMoConfig(topk: topk, chunk: chunk, valueFormat: .bf16)
        var peers: [DeMoOptimizer]
        do { peers = try (0..<4).map { _ in try DeMoOptimizer(layout: layout, config: config) } } catch {
            log("bench: cannot build the optimizer: \(error)"); return
        }
        var rng = SeededRNG(seed: 2024)
        var grads = [[Float]]()
        for _ in 0..<4 { grads.append((0..<n).map { _ in rng.nextNormal() * 0.01 }) }
        var params = (0..<n).map { _ in rng.nextNormal() * 0.02 }

        var payloads: [DeMoPayload] = []
        var prepareTimes: [Double] = []
        for r in 0..<reps {
            let t = seconds {
                payloads = [(try? grads[0].withUnsafeBufferPointer { try peers[0].prepare(gradients: $0, lr: 4e-4) })!]
            }
            prepareTimes.append(t)
            if r == 0 {
                for i in 1..<4 {
                    payloads.append((try? grads[i].withUnsafeBufferPointer { try peers[i].prepare(gradients: $0, lr: 4e-4) })!)
                }
            }
        }
        if payloads.count < 4 {
            for i in 1..<4 { payloads.append((try? grads[i].withUnsafeBufferPointer { try peers[i].prepare(gradients: $0, lr: 4e-4) })!) }
        }
        let cons = payloads.enumerated().map { DeMoContribution(peer: $0.offset, payload: $0.element) }
        report("prepare", prepareTimes, n, log)
        for w in [1, 4] {
            var times: [Double] = []
            for _ in 0..<reps {
                times.append(seconds {
                    try? params.withUnsafeMutableBufferPointer { try peers[0].apply(Array(cons.prefix(w)), lr: 4e-4, to: $0) }
                })
            }
            report("apply (\(w) peer\(w == 1 ? "" : "s"))", times, n, log)
        }
        let plan = peers[0].plan
        var codecTimes: [Double] = []
        for _ in 0..<reps {
            codecTimes.append(seconds {
                if let b = try? DeMoCodec.encode(payloads[0], plan: plan) { _ = try? DeMoCodec.decode(b, plan: plan) }
            })
        }
        log("codec bf16 encode+decode: best \(ms(codecTimes.min()!)) per payload")
        for f in DeMoValueFormat.allCases {
            let a = DeMoCodec.accounting(plan: plan, format: f)
            log("bytes/step \(f): real \(a.realBytes) B vs reference \(a.referenceBytes) B (\(ratio(a.referenceBytes, a.realBytes)) smaller) vs dense fp32 \(a.denseFP32Bytes) B (\(ratio(a.denseFP32Bytes, a.realBytes)) smaller); \(a.coefficients) coefficients")
        }
    }

    private static func seconds(_ body: () -> Void) -> Double {
        let c = ContinuousClock()
        let d = c.measure(body)
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    private static func report(_ what: String, _ times: [Double], _ n: Int, _ log: (String) -> Void) {
        let s = times.sorted()
        let best = s[0], median = s[s.count / 2]
        log("\(what): best \(ms(best)) (\(rate(Double(n) / best)) elements/s), median \(ms(median)) (\(rate(Double(n) / median)) elements/s)")
    }

    private static func ms(_ t: Double) -> String { "\((t * 1e4).rounded() / 10) ms" }
    private static func rate(_ r: Double) -> String {
        r >= 1e6 ? "\((r / 1e5).rounded() / 10)M" : "\((r / 1e2).rounded() / 10)k"
    }
    private static func ratio(_ a: Int, _ b: Int) -> String { "\((Double(a) / Double(max(b, 1)) * 10).rounded() / 10)×" }
}
