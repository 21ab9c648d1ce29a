extension PeerNode {
    /// rounds.jsonl fields scoring each contributor of applied step `step` against the others
    /// (issue 12): `agreement` (fraction of its coefficients whose sign agrees with the others'
    /// sum), `norm_ratio` (its largest per-tensor norm over the median norm) and `clipped`
    /// (tensors it was scaled down in), each keyed by peer id. Empty when the engine does not score.
    func contributionScoreFields(step: Int) -> [String: Any] {
        guard let scores = engine.takeContributionScores(step: step), !scores.isEmpty else { return [:] }
        var agreement: [String: Any] = [:], ratio: [String: Any] = [:], clipped: [String: Any] = [:]
        for s in scores where s.peer >= 0 && s.peer < peerIDs.count {
            let id = peerIDs[s.peer]
            if let a = s.agreement { agreement[id] = (a * 10_000).rounded() / 10_000 }
            ratio[id] = s.normRatio.isFinite ? (s.normRatio * 1_000).rounded() / 1_000 : -1
            clipped[id] = s.clippedTensors
        }
        return ["agreement": agreement, "norm_ratio": ratio, "clipped": clipped]
    }
}
