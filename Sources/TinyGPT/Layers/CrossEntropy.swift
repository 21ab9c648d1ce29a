import Foundation

/// Softmax over the vocabulary fused with the cross-entropy loss.
///
/// Shapes: `logits`/`probs` (N, V) with N = B·T rows, `targets` (N) int32 in `0..<V`, `losses` (N)
/// per-position loss in nats. The model's loss is the mean of `losses`.
public enum CrossEntropy {
    /// Writes `probs` = softmax(logits) per row (overwrites) and, when `targets` is given,
    /// `losses[r] = -log probs[r, targets[r]]`. Returns the mean loss, or NaN without targets.
    @discardableResult
    public static func forward(probs: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>,
                               logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>?,
                               N: Int, V: Int, threads: Int = 1) -> Float {
        Parallel.ranges(N, threads: threads, minPerThread: 64) { rows in
            for r in rows {
                let l = logits + r * V, p = probs + r * V
                let mx = FastMath.max(l, V)
                for j in 0..<V { p[j] = FastMath.fastExp(l[j] - mx) }
                let sum = FastMath.sum(p, V)
                let inv = 1 / sum
                for j in 0..<V { p[j] *= inv }
                if let targets {
                    // log-sum-exp form keeps precision when the target's probability underflows.
                    losses[r] = logf(sum) + mx - l[Int(targets[r])]
                }
            }
        }
        guard targets != nil else { return .nan }
        var total = 0.0
        for r in 0..<N { total += Double(losses[r]) }
        return Float(total / Double(N))
    }

    /// Writes `dlogits` (N, V) (overwrites; may alias `probs`) for the mean loss scaled by
    /// `dloss` (1 for d(mean loss)/d(logits)): `(probs - onehot(target)) · dloss / N`.
    public static func backward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, N: Int, V: Int, dloss: Float = 1, threads: Int = 1) {
        let s = dloss / Float(N)
        Parallel.ranges(N, threads: threads, minPerThread: 64) { rows in
            for r in rows {
                let p = probs + r * V, d = dlogits + r * V
                for j in 0..<V { d[j] = p[j] * s }
                d[Int(targets[r])] -= s
            }
        }
    }

    /// Slow reference kernels in Double, used only by tests.
    public enum Reference {
        /// Returns the mean loss; writes `probs`.
        public static func forward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                   targets: UnsafePointer<Int32>, N: Int, V: Int) -> Double {
            var total = 0.0
            for r in 0..<N {
                let row = (0..<V).map { Double(logits[r * V + $0]) }
                let mx = row.max()!
                let sum = row.map { exp($0 - mx) }.reduce(0, +)
                for j in 0..<V { probs[r * V + j] = Float(exp(row[j] - mx) / sum) }
                total += log(sum) + mx - row[Int(targets[r])]
            }
            return total / Double(N)
        }

        public static func backward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                    targets: UnsafePointer<Int32>, N: Int, V: Int) {
            for r in 0..<N {
                let row = (0..<V).map { Double(logits[r * V + $0]) }
                let mx = row.max()!
                let sum = row.map { exp($0 - mx) }.reduce(0, +)
                for j in 0..<V {
                    let p = exp(row[j] - mx) / sum
                    dlogits[r * V + j] = Float((p - (j == Int(targets[r]) ? 1 : 0)) / Double(N))
                }
            }
        }
    }
}
