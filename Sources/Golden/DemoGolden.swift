import Foundation
@_spi(DeMoInternals) import DeMo
import Tensors

/// Golden checks for the DeMo optimizer (`kind` demo-*), with the tolerances of
/// `golden/demo/README.md`. Shapes, names and hyper-parameters all come from the files.
enum DemoGolden {
    static func verify(kind: String, object: [String: Any], url: URL) throws -> [GoldenCaseResult] {
        let file = url.lastPathComponent
        let j = JSONReader(object: object, path: url.path)
        switch kind {
        case "demo-chunk-sizes": return [try chunkSizes(j, file)]
        case "demo-dct-basis": return [try dctBasis(j, file)]
        case "demo-transform":
            return try j.objects(object, "cases").map { try transformCase(JSONReader(object: $0, path: url.path), file) }
        case "demo-step": return [try stepFile(j, file)]
        default:
            return [GoldenCaseResult(file: file, name: kind, status: .unsupported, detail: "unknown demo kind")]
        }
    }

    // MARK: chunk rule and basis

    fileprivate static func chunkSizes(_ j: JSONReader, _ file: String) throws -> GoldenCaseResult {
        var bad: [String] = []
        let cases = try j.array(j.object, "cases")
        for c in cases {
            guard let t = c as? [Any], t.count == 3, let n = (t[0] as? NSNumber)?.intValue,
                  let target = (t[1] as? NSNumber)?.intValue, let want = (t[2] as? NSNumber)?.intValue else {
                throw GoldenError.malformed(path: j.path, field: "cases")
            }
            let got = demoChunkSize(n, target: target)
            if got != want { bad.append("n=\(n) T=\(target): \(got) ≠ \(want)") }
        }
        return result(file, "chunk sizes", bad, "\(cases.count) cases exact")
    }

    fileprivate static func dctBasis(_ j: JSONReader, _ file: String) throws -> GoldenCaseResult {
        var worst: Float = 0, bad: [String] = [], checked = 0
        for s in try j.objects(j.object, "sizes") {
            let n = try j.int(s, "n")
            guard s["f"] != nil else { continue }
            let f = try j.floats(s, "f"), b = try j.floats(s, "b")
            guard f.count == n * n, b.count == n * n else { throw GoldenError.malformed(path: j.path, field: "f/b of n=\(n)") }
            let c = DCTBasis(n: n).c
            for r in 0..<n { for q in 0..<n {
                worst = max(worst, abs(f[r * n + q] - c[q * n + r]), abs(b[r * n + q] - c[r * n + q]))
            } }
            checked += 1
        }
        if worst > 1e-6 { bad.append("max abs diff \(worst) > 1e-6") }
        return result(file, "dct basis", bad, "\(checked) sizes, max abs diff \(sci(worst))")
    }

    // MARK: transform cases

    fileprivate static func transformCase(_ j: JSONReader, _ file: String) throws -> GoldenCaseResult {
        let o = j.object
        let name = try j.string(o, "name")
        let shape = try j.ints(o, "shape")
        let plan = DeMoTensorPlan(name: name, shape: shape, offset: 0, targetChunk: try j.int(o, "target_chunk"),
                                  topk: try j.int(o, "topk_requested"))
        var bad: [String] = []
        let x = try j.floats(o, "x")
        guard x.count == plan.count else { throw GoldenError.malformed(path: j.path, field: "x of \(name)") }
        if plan.referenceChunk != (try j.ints(o, "chunk")) { bad.append("chunk \(plan.referenceChunk)") }
        if encodedShape(plan) != (try j.ints(o, "encoded_shape")) { bad.append("encoded_shape \(encodedShape(plan))") }
        if indicesShape(plan) != (try j.ints(o, "indices_shape")) { bad.append("indices_shape \(indicesShape(plan))") }
        if plan.totalk != (try j.int(o, "totalk")) { bad.append("totalk \(plan.totalk)") }
        if plan.k != (try j.int(o, "topk_effective")) { bad.append("k \(plan.k)") }
        if !bad.isEmpty { return result(file, name, bad, "") }

        let tr = ChunkTransform(plan: plan)
        var enc = [Float](repeating: 0, count: plan.count), scratch = enc, round = enc, dec = enc
        x.withUnsafeBufferPointer { xp in
            enc.withUnsafeMutableBufferPointer { ep in
                scratch.withUnsafeMutableBufferPointer { sp in tr.encode(xp.baseAddress!, into: ep.baseAddress!, scratch: sp.baseAddress!) }
            }
        }
        enc.withUnsafeBufferPointer { ep in
            round.withUnsafeMutableBufferPointer { rp in
                scratch.withUnsafeMutableBufferPointer { sp in tr.decodeDense(ep.baseAddress!, into: rp.baseAddress!, scratch: sp.baseAddress!) }
            }
        }
        var idx = [UInt32](repeating: 0, count: plan.sentCount), val = [Float](repeating: 0, count: plan.sentCount)
        enc.withUnsafeBufferPointer { ep in
            idx.withUnsafeMutableBufferPointer { ip in
                val.withUnsafeMutableBufferPointer { vp in TopK.select(ep.baseAddress!, plan: plan, indices: ip.baseAddress!, values: vp.baseAddress!) }
            }
        }
        dec.withUnsafeMutableBufferPointer { dp in DeMoOptimizer.sparseDecode(plan, tr, idx, val, into: dp.baseAddress!) }

        var m = Measure()
        m.rel("encoded", tr.chunkOrder(enc), try j.floats(o, "encoded"))
        m.exact("indices", idx.map(Int.init), try j.ints(o, "indices"))
        m.rel("values", val, try j.floats(o, "values"))
        m.rel("decoded_topk", dec, try j.floats(o, "decoded_topk"))
        m.rel("roundtrip", round, try j.floats(o, "roundtrip"))
        return result(file, name, m.failures, m.summary)
    }

    static func encodedShape(_ p: DeMoTensorPlan) -> [Int] {
        p.shape.count <= 1 ? [p.gridCols, p.chunkCols] : [p.gridRows, p.gridCols, p.chunkRows, p.chunkCols]
    }

    static func indicesShape(_ p: DeMoTensorPlan) -> [Int] {
        p.shape.count <= 1 ? [p.gridCols, p.k] : [p.gridRows, p.gridCols, p.k]
    }

    // MARK: full optimizer runs

    fileprivate static func stepFile(_ j: JSONReader, _ file: String) throws -> GoldenCaseResult {
        let o = j.object
        let name = (o["name"] as? String) ?? file
        let hp = try j.dict(o, "hyperparameters")
        let config = DeMoConfig(decay: try j.double(hp, "compression_decay"), topk: try j.int(hp, "compression_topk"),
                                chunk: try j.int(hp, "compression_chunk"), weightDecay: try j.double(hp, "weight_decay"),
                                valueFormat: .f32, aggregate: .mean)   // the reference's rule
        let params = try j.objects(o, "params")
        let layout = ParameterLayout(try params.map { (name: try j.string($0, "name"), shape: try j.ints($0, "shape")) })
        let world = try j.int(o, "world_size")
        var workers = try (0..<world).map { _ in try DeMoOptimizer(layout: layout, config: config) }
        let plan = workers[0].plan
        var bad: [String] = []
        var initial: [Float] = []
        for (p, tp) in zip(params, plan.tensors) {
            if tp.referenceChunk != (try j.ints(p, "chunk")) { bad.append("\(tp.name) chunk \(tp.referenceChunk)") }
            if encodedShape(tp) != (try j.ints(p, "encoded_shape")) { bad.append("\(tp.name) encoded_shape") }
            if indicesShape(tp) != (try j.ints(p, "indices_shape")) { bad.append("\(tp.name) indices_shape") }
            let (tk, ke) = (try j.int(p, "totalk"), try j.int(p, "topk_effective"))
            if tp.totalk != tk || tp.k != ke { bad.append("\(tp.name) totalk/k") }
            initial += try j.floats(p, "initial")
        }
        guard bad.isEmpty else { return result(file, name, bad, "") }
        guard initial.count == layout.totalCount else { throw GoldenError.malformed(path: j.path, field: "initial") }
        var replicas = [[Float]](repeating: initial, count: world)
        // The reference parameters; rebuilt from update_sign where params_after is omitted (README:
        // p ← Float32(p·Float(1 − lr·wd)) when wd ≠ 0, then p ← p + Float(−lr)·sign, bit-exact).
        var refParams = initial
        var m = Measure()
        var flips = 0, fragileFlips = 0
        let steps = try j.objects(o, "steps")
        for s in steps {
            let lr = try j.double(s, "lr")
            let stepNo = try j.int(s, "step")
            var contributions: [DeMoContribution] = []
            let ws = try j.objects(s, "workers")
            guard ws.count == world else { throw GoldenError.malformed(path: j.path, field: "workers") }
            for w in ws {
                let rank = try j.int(w, "rank")
                let grads = try j.floatLists(w, "grads")
                let flat = grads.flatMap { $0 }
                guard flat.count == layout.totalCount else { throw GoldenError.malformed(path: j.path, field: "grads") }
                let (payload, traces) = try flat.withUnsafeBufferPointer {
                    try workers[rank].prepareTraced(gradients: $0, lr: lr, trace: true)
                }
                contributions.append(DeMoContribution(peer: rank, payload: payload))
                let si = try j.intLists(w, "sent_indices"), sv = try j.floatLists(w, "sent_values")
                let est = j.has(w, "local_estimate") ? try j.floatLists(w, "local_estimate") : nil
                let dAfter = j.has(w, "delta_after") ? try j.floatLists(w, "delta_after") : nil
                let l2 = try j.doubles(w, "delta_after_l2"), sum = try j.doubles(w, "delta_after_sum")
                let maxabs = try j.doubles(w, "delta_after_maxabs")
                for (t, tp) in plan.tensors.enumerated() {
                    let tag = "step \(stepNo) rank \(rank) \(tp.name)"
                    m.exact("sent_indices \(tag)", payload.tensors[t].indices.map(Int.init), si[t])
                    m.rel("sent_values \(tag)", payload.tensors[t].values, sv[t])
                    if let est { m.rel("local_estimate \(tag)", traces[t].localEstimate, est[t]) }
                    let delta = Array(workers[rank].residual[tp.range])
                    let scale = max(maxabs[t], lr * Double(grads[t].map { abs($0) }.max() ?? 0))
                    if let dAfter { m.rel("delta_after \(tag)", delta, dAfter[t], scale: Float(scale)) }
                    let ourL2 = delta.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                    let ourSum = delta.reduce(0.0) { $0 + Double($1) }
                    m.checksum("delta_after_l2 \(tag)", ourL2, l2[t], scale: scale * Double(tp.count).squareRoot())
                    m.checksum("delta_after_sum \(tag)", ourSum, sum[t], scale: scale * Double(tp.count))
                }
            }
            // Every replica applies the same contributions, in a different input order each.
            let sorted = try workers[0].validated(contributions)
            for r in 0..<world {
                let order = Array(contributions[r...] + contributions[..<r])
                try replicas[r].withUnsafeMutableBufferPointer { try workers[r].apply(order, lr: lr, to: $0) }
            }
            if replicas.contains(where: { $0 != replicas[0] }) { m.failures.append("step \(stepNo): replicas differ after apply") }
            let aggRef = j.has(s, "aggregate") ? try j.floatLists(s, "aggregate") : nil
            let signs = try j.intLists(s, "update_sign")
            let diag = try j.dict(s, "diagnostics")
            let signFragile = try j.intLists(diag, "sign_fragile_positions")
            let paramFragile = try j.intLists(diag, "params_fragile_positions")
            let pAfter = j.has(s, "params_after") ? try j.floatLists(s, "params_after") : nil
            let pSums = try j.doubles(s, "params_after_sum")
            for (t, tp) in plan.tensors.enumerated() {
                let tag = "step \(stepNo) \(tp.name)"
                var agg = [Float](repeating: 0, count: tp.count)
                agg.withUnsafeMutableBufferPointer { workers[0].aggregate(tensor: t, sorted, into: $0.baseAddress!) }
                if let aggRef { m.rel("aggregate \(tag)", agg, aggRef[t]) }
                let fragile = Set(signFragile[t])
                for i in 0..<tp.count {
                    let sg = agg[i] > 0 ? 1 : (agg[i] < 0 ? -1 : 0)
                    if sg != signs[t][i] {
                        if fragile.contains(i) { fragileFlips += 1 } else { flips += 1 }
                    }
                }
                if let pAfter {
                    guard pAfter[t].count == tp.count else { throw GoldenError.malformed(path: j.path, field: "params_after") }
                    refParams.replaceSubrange(tp.range, with: pAfter[t])
                } else {
                    let f = Float(1 - lr * config.weightDecay), step = Float(-lr)
                    for i in 0..<tp.count {
                        var p = refParams[tp.offset + i]
                        if config.weightDecay != 0 { p = p * f }
                        refParams[tp.offset + i] = p + step * Float(signs[t][i])
                    }
                }
                let refSum = refParams[tp.range].reduce(0.0) { $0 + Double($1) }
                m.checksum("params_after_sum \(tag)", refSum, pSums[t], scale: refParams[tp.range].reduce(0.0) { $0 + abs(Double($1)) })
                let pf = Set(paramFragile[t])
                var diff = 0
                for i in 0..<tp.count where replicas[0][tp.offset + i].bitPattern != refParams[tp.offset + i].bitPattern && !pf.contains(i) { diff += 1 }
                if diff > 0 { m.failures.append("params_after \(tag): \(diff) elements not bit-exact") }
                m.paramsChecked += tp.count
            }
        }
        if flips > 0 { m.failures.append("\(flips) update_sign mismatches outside fragile positions") }
        return result(file, name, m.failures,
                      "\(steps.count) steps × \(world) workers: \(m.summary); sign flips \(flips) (+\(fragileFlips) fragile); params bit-exact on \(m.paramsChecked) values (rebuilt from update_sign where omitted)")
    }

    // MARK: helpers

    static func result(_ file: String, _ name: String, _ failures: [String], _ detail: String) -> GoldenCaseResult {
        if failures.isEmpty { return GoldenCaseResult(file: file, name: name, status: .passed, detail: detail) }
        let more = failures.count > 3 ? " (+\(failures.count - 3) more)" : ""
        return GoldenCaseResult(file: file, name: name, status: .failed,
                                detail: failures.prefix(3).joined(separator: "; ") + more + (detail.isEmpty ? "" : " | " + detail))
    }

    static func sci(_ x: some BinaryFloatingPoint) -> String { String(format: "%.2e", Double(x)) }
}

/// Worst errors seen per quantity, relative to the README scale (1e-5 passes).
private struct Measure {
    var worst: [String: Double] = [:]
    var order: [String] = []
    var failures: [String] = []
    var paramsChecked = 0

    private mutating func note(_ label: String, _ r: Double) {
        let key = String(label.prefix { $0 != " " })
        if worst[key] == nil { order.append(key) }
        worst[key] = max(worst[key] ?? 0, r)
    }

    /// max|a−b| / max(max|ref|, scale) ≤ 1e-5.
    mutating func rel(_ label: String, _ a: [Float], _ ref: [Float], scale: Float = 0) {
        guard a.count == ref.count else { failures.append("\(label): \(a.count) values, reference \(ref.count)"); return }
        let denom = Double(max(ref.map { abs($0) }.max() ?? 0, scale))
        let diff = Double(zip(a, ref).map { abs($0 - $1) }.max() ?? 0)
        let r = denom > 0 ? diff / denom : diff
        note(label, r)
        if r > 1e-5 { failures.append("\(label): relative error \(DemoGolden.sci(r)) > 1e-5") }
    }

    mutating func exact(_ label: String, _ a: [Int], _ ref: [Int]) {
        let mism = a.count != ref.count ? max(a.count, ref.count) : zip(a, ref).filter { $0 != $1 }.count
        note(label, Double(mism))
        if mism > 0 { failures.append("\(label): \(mism) mismatches") }
    }

    mutating func checksum(_ label: String, _ a: Double, _ ref: Double, scale: Double) {
        let denom = max(abs(ref), scale)
        let r = denom > 0 ? abs(a - ref) / denom : abs(a - ref)
        note(label, r)
        if r > 1e-5 { failures.append("\(label): relative error \(DemoGolden.sci(r)) > 1e-5") }
    }

    var summary: String {
        order.map { k in k.hasSuffix("indices") ? "\(k) \(Int(worst[k]!)) mismatches" : "\(k) \(DemoGolden.sci(worst[k]!))" }
            .joined(separator: ", ")
    }
}

/// Typed access to the parsed JSON; every missing or mistyped field is a `GoldenError.malformed`.
private struct JSONReader {
    let object: [String: Any]
    let path: String

    func fail(_ f: String) -> GoldenError { .malformed(path: path, field: f) }
    /// Present and not null (omitted arrays, per the file's `stored` object, are absent or null).
    func has(_ o: [String: Any], _ k: String) -> Bool { o[k] != nil && !(o[k] is NSNull) }
    func dict(_ o: [String: Any], _ k: String) throws -> [String: Any] {
        guard let v = o[k] as? [String: Any] else { throw fail(k) }; return v
    }
    func array(_ o: [String: Any], _ k: String) throws -> [Any] {
        guard let v = o[k] as? [Any] else { throw fail(k) }; return v
    }
    func objects(_ o: [String: Any], _ k: String) throws -> [[String: Any]] {
        guard let v = o[k] as? [[String: Any]] else { throw fail(k) }; return v
    }
    func string(_ o: [String: Any], _ k: String) throws -> String {
        guard let v = o[k] as? String else { throw fail(k) }; return v
    }
    func int(_ o: [String: Any], _ k: String) throws -> Int {
        guard let v = o[k] as? NSNumber else { throw fail(k) }; return v.intValue
    }
    func double(_ o: [String: Any], _ k: String) throws -> Double {
        guard let v = o[k] as? NSNumber else { throw fail(k) }; return v.doubleValue
    }
    func numbers(_ a: Any?, _ k: String) throws -> [NSNumber] {
        guard let v = a as? [Any] else { throw fail(k) }
        return try v.map { guard let n = $0 as? NSNumber else { throw fail(k) }; return n }
    }
    func ints(_ o: [String: Any], _ k: String) throws -> [Int] { try numbers(o[k], k).map(\.intValue) }
    func doubles(_ o: [String: Any], _ k: String) throws -> [Double] { try numbers(o[k], k).map(\.doubleValue) }
    /// JSON decimals are the shortest round-trip strings of float32 values: Double → Float is exact.
    func floats(_ o: [String: Any], _ k: String) throws -> [Float] { try numbers(o[k], k).map { Float($0.doubleValue) } }
    func floatLists(_ o: [String: Any], _ k: String) throws -> [[Float]] {
        try array(o, k).map { try numbers($0, k).map { Float($0.doubleValue) } }
    }
    func intLists(_ o: [String: Any], _ k: String) throws -> [[Int]] {
        try array(o, k).map { try numbers($0, k).map(\.intValue) }
    }
}
