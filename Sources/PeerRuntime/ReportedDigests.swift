/// The state digests other peers reported per step — from their heartbeats (last applied step
/// and digest) and their UPDATEs (base step and the digest they had there) — so that a state a
/// donor sends can be checked against what the *majority* reports, not against the donor's own
/// word (issue 16). Digests are the first 64 bits of a SHA-256 of the replicated state
/// (`StateDigest`): a donor cannot make up a state that matches the majority's digest.
///
/// Pure value: no clock, no I/O. Memory: at most `capacity` steps per peer.
public struct ReportedDigests: Sendable {
    /// Steps remembered per peer (the oldest are forgotten first).
    public let capacity: Int
    private var byPeer: [Int: [Int: UInt64]] = [:]

    public init(capacity: Int = 512) { self.capacity = max(1, capacity) }

    /// Notes that `peer` reported `digest` after applying `step`. Steps outside
    /// `0..<Int32.max` are ignored (they come from the wire).
    public mutating func record(peer: Int, step: Int, digest: UInt64) {
        guard step >= 0, step < Int(Int32.max) else { return }
        var steps = byPeer[peer] ?? [:]
        steps[step] = digest
        if steps.count > capacity, let oldest = steps.keys.min() { steps[oldest] = nil }
        byPeer[peer] = steps
    }

    /// What `peer` reported for `step`, if anything.
    public func digest(of peer: Int, at step: Int) -> UInt64? { byPeer[peer]?[step] }

    /// Forgets everything a peer reported (it restarted: its old line means nothing now).
    public mutating func forget(peer: Int) { byPeer[peer] = nil }

    public enum Verdict: Equatable, Sendable {
        /// A strict majority of `voters` reported `digest` at the step.
        case confirmed(by: [Int])
        /// A strict majority reported something else, or can no longer report `digest`.
        case refuted(majority: UInt64?, by: [Int])
        /// Not enough reports yet.
        case undecided(agreeing: [Int], disagreeing: [Int])
    }

    /// Pure: does a strict majority of `voters` (the other live, trusted peers, the donor among
    /// them) report `digest` at `step`? With one voter (a 2-peer cluster) that voter's report
    /// decides: nobody else could be asked.
    public func verdict(step: Int, digest: UInt64, voters: [Int]) -> Verdict {
        let voters = Array(Set(voters)).sorted()
        let needed = voters.count / 2 + 1
        var agreeing: [Int] = [], disagreeing: [Int] = []
        var others: [UInt64: [Int]] = [:]
        for v in voters {
            guard let d = self.digest(of: v, at: step) else { continue }
            if d == digest { agreeing.append(v) } else { disagreeing.append(v); others[d, default: []].append(v) }
        }
        if agreeing.count >= needed { return .confirmed(by: agreeing) }
        let silent = voters.count - agreeing.count - disagreeing.count
        if agreeing.count + silent < needed {
            let best = others.max { $0.value.count != $1.value.count ? $0.value.count < $1.value.count : $0.value.min()! > $1.value.min()! }
            return .refuted(majority: best?.key, by: best?.value ?? disagreeing)
        }
        return .undecided(agreeing: agreeing, disagreeing: disagreeing)
    }
}
