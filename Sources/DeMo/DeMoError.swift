/// Errors of `DeMoOptimizer`. Nothing is mutated when one is thrown.
public enum DeMoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The gradient buffer ends before tensor `tensor` does (missing or truncated gradient).
    case missingGradient(tensor: String, needed: Int, available: Int)
    /// The gradient of `tensor` holds NaN or ±Inf at `index` (tensor-local).
    case nonFiniteGradient(tensor: String, index: Int)
    /// A residual being restored (e.g. from a checkpoint) holds NaN or ±Inf.
    case nonFiniteResidual(tensor: String, index: Int)
    /// A buffer passed in does not have the layout's element count.
    case bufferSize(what: String, expected: Int, got: Int)
    /// The learning rate (or weight decay) is negative or not finite.
    case badHyperparameter(String)
    /// Two contributions carry the same peer index.
    case duplicatePeer(Int)
    /// A peer's payload does not fit the plan.
    case invalidContribution(peer: Int, issue: DeMoPayloadIssue)

    public var description: String {
        switch self {
        case .missingGradient(let t, let n, let a):
            return "gradient for tensor \(t) is missing: the buffer has \(a) floats, \(n) needed — pass a gradient buffer with the parameter layout"
        case .nonFiniteGradient(let t, let i):
            return "gradient of tensor \(t) is NaN/Inf at element \(i): skip this step or lower the learning rate"
        case .nonFiniteResidual(let t, let i):
            return "residual of tensor \(t) is NaN/Inf at element \(i): the checkpoint is damaged, restore an older one or reset the residual"
        case .bufferSize(let w, let e, let g):
            return "\(w) has \(g) floats, the layout has \(e)"
        case .badHyperparameter(let s):
            return "bad hyper-parameter: \(s)"
        case .duplicatePeer(let p):
            return "two contributions from peer \(p): keep one UPDATE per peer and step"
        case .invalidContribution(let p, let issue):
            return "contribution of peer \(p) rejected: \(issue)"
        }
    }
}
