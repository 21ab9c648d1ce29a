/// Names contributors whose updates stay unlike everyone else's (issue 12: a hostile but
/// authorised peer sends valid frames, so only their content gives it away). Pure: fed the
/// per-step scores of applied steps (`ContributionScore`, the same on every peer that applied the
/// same set), it keeps each peer's last `window` scores and reports when a peer starts and stops
/// being a suspect.
///
/// A peer is suspect while, over its last `window` scored steps, its mean sign agreement with the
/// others is below `minAgreement` (it pushes against them: negated or ascending gradients) or its
/// median norm ratio is above `maxNormRatio` (it is much louder than the median: scaled
/// gradients; the clipped aggregate already bounds what it does). Thresholds from measurements
/// (4 peers of `tiny`, 300 steps, docs/results.md): honest peers' 10-step mean agreement stayed at
/// or above 0.40 and their 10-step median norm ratio at or below 3.1; a negated peer's mean
/// agreement was 0.03–0.2 and a ×5 peer's norm ratio 8–11.
public struct ContentWatch: Sendable {
    public struct Suspicion: Sendable, Equatable {
        public var peer: Int
        /// The applied step at which the streak was long enough to name it.
        public var step: Int
        /// Mean agreement over the window (nil when it had no agreement scores).
        public var meanAgreement: Double?
        /// Median norm ratio over the window.
        public var medianNormRatio: Double
        /// "disagrees" and/or "loud".
        public var reasons: [String]
    }

    public enum Change: Sendable, Equatable {
        case suspected(Suspicion)
        case cleared(peer: Int, step: Int)
    }

    public let window: Int
    public let minAgreement: Double
    public let maxNormRatio: Double
    private var history: [Int: [ContributionScore]] = [:]
    public private(set) var suspects: [Int: Suspicion] = [:]

    public init(window: Int = 10, minAgreement: Double = 0.3, maxNormRatio: Double = 5) {
        precondition(window >= 1, "window must be >= 1")
        self.window = window
        self.minAgreement = minAgreement
        self.maxNormRatio = maxNormRatio
    }

    /// Feeds the scores of applied step `step`; returns who became or stopped being a suspect.
    public mutating func observe(step: Int, _ scores: [ContributionScore]) -> [Change] {
        var changes: [Change] = []
        for s in scores.sorted(by: { $0.peer < $1.peer }) {
            var h = history[s.peer, default: []]
            h.append(s)
            if h.count > window { h.removeFirst(h.count - window) }
            history[s.peer] = h
            guard h.count == window else { continue }
            let agreements = h.compactMap(\.agreement)
            let mean = agreements.isEmpty ? nil : agreements.reduce(0, +) / Double(agreements.count)
            let ratios = h.map(\.normRatio).sorted()
            let median = ratios[(ratios.count - 1) / 2]
            var reasons: [String] = []
            // Agreement counts only when most of the window was scored against others.
            if let mean, agreements.count * 2 > window, mean < minAgreement { reasons.append("disagrees") }
            if median > maxNormRatio { reasons.append("loud") }
            if reasons.isEmpty {
                if suspects.removeValue(forKey: s.peer) != nil { changes.append(.cleared(peer: s.peer, step: step)) }
            } else if suspects[s.peer] == nil {
                let v = Suspicion(peer: s.peer, step: step, meanAgreement: mean, medianNormRatio: median, reasons: reasons)
                suspects[s.peer] = v
                changes.append(.suspected(v))
            }
        }
        return changes
    }
}
