/// Entry points shared by the libFuzzer binaries in `Fuzz/` and the corpus replay tests.
///
/// Each function takes raw fuzzer bytes, hands them to one of the project's decoders and
/// * returns normally when the decoder rejected the input with its own typed error (the expected
///   outcome for almost every input) or accepted it and every invariant held;
/// * throws `FuzzFinding` when an accepted input breaks an invariant (or the decoder threw an
///   error type it does not document);
/// * crashes on anything else (trap, out-of-bounds, overflow), which is what libFuzzer looks for.
///
/// Each entry also returns a `FuzzOutcome` so tests can check *why* an input was refused.
public enum FuzzHarness {
    /// Names of the targets, as used for the `Fuzz/corpus/<target>/` folders: four decoders and
    /// two handler targets (`peer`, `catchup`: hostile messages to running peers).
    public static let targets = ["header", "update", "topology", "checkpoint", "peer", "catchup"]

    /// Runs the entry point called `target` (one of `targets`) on `bytes`.
    @discardableResult
    public static func run(_ target: String, _ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        switch target {
        case "header": return try header(bytes)
        case "update": return try update(bytes)
        case "topology": return try topology(bytes)
        case "checkpoint": return try checkpoint(bytes)
        case "peer": return try peerHandler(bytes)
        case "catchup": return try catchUpHandler(bytes)
        default: preconditionFailure("unknown fuzz target \(target)")
        }
    }
}

/// What a harness call saw when no invariant was violated.
public enum FuzzOutcome: Sendable, Equatable {
    /// The decoder accepted the input and every invariant held.
    case accepted
    /// The decoder refused the input with its typed error (described here).
    case rejected(String)

    /// True for `.rejected`.
    public var isRejected: Bool { if case .rejected = self { return true } else { return false } }
}
