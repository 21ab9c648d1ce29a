/// The collection of one step's contributions, as a pure state machine.
///
/// Each peer runs one `TrainingRound`. The shell feeds it events — `open` when the local step's own
/// contribution is ready, `onContribution` for every UPDATE heard (own one included), `onTick` with
/// the current time — and carries out the `RoundDirective`s it returns. It reads no clock and owns no
/// socket, so tests drive time by hand.
///
/// Rules (docs/DESIGN.md §6):
/// - step s is applied once every expected peer's contribution for s has arrived, or when the step
///   deadline passes (then with whoever arrived; the own contribution is always there);
/// - contributions for later steps are buffered until their round opens (a faster peer is ahead);
/// - contributions for steps already applied are dropped and counted (`lateDropped`);
/// - contributions are handed over sorted by peer index, so every peer applies in the same order.
///
/// `Contribution` is whatever the shell moves around (a decoded payload, or raw bytes).
public struct TrainingRound<Contribution: Sendable>: Sendable {
    /// Where the step deadline comes from.
    public enum Deadline: Sendable, Equatable {
        /// Always this many seconds after the round opens.
        case fixed(seconds: Double)
        /// median + k·MAD of recent completion times (seconds after open), clamped to
        /// `[floor, ceiling]`; `ceiling` until enough history exists.
        case adaptive(k: Double, floor: Double, ceiling: Double)
    }

    public let me: Int
    public let deadline: Deadline
    /// How many past completion times the adaptive deadline remembers.
    public let historyLength: Int

    /// Step currently being collected, or nil between rounds.
    public private(set) var openStep: Int?
    /// Highest step applied so far (-1 before the first).
    public private(set) var lastAppliedStep: Int = -1
    public private(set) var expected: Set<Int> = []
    private var openedAt: Double = 0
    private var receivedByPeer: [Int: Contribution] = [:]
    /// Contributions that arrived before their round opened: step → peer → contribution.
    private var early: [Int: [Int: Contribution]] = [:]
    private var history: [Double] = []
    /// Whether this peer contributes to the open round (false while it only observes after a
    /// catch-up: the round then completes without it).
    private var contributing = true
    /// Counters for rounds.jsonl.
    public private(set) var lateDropped = 0
    public private(set) var duplicatesDropped = 0
    public private(set) var unexpectedDropped = 0
    /// Contributions for steps more than `maxAhead` past the last applied one: refused, so a hostile
    /// or confused peer cannot make the buffer grow without bound.
    public private(set) var tooFarAheadDropped = 0
    public var maxAhead = 256

    public init(me: Int, deadline: Deadline, historyLength: Int = 32) {
        self.me = me
        self.deadline = deadline
        self.historyLength = max(3, historyLength)
    }

    /// What the shell must do.
    public enum Directive: Sendable {
        /// Apply step `step` with these contributions (sorted by peer index). `missing` lists expected
        /// peers that did not arrive by the deadline.
        case apply(step: Int, contributions: [(peer: Int, value: Contribution)], missing: [Int], waited: Double, timedOut: Bool)
        /// A contribution for an already-applied step was discarded.
        case droppedLate(peer: Int, step: Int)
    }

    /// The deadline, in seconds after open, that the current round uses.
    public var currentDeadlineSeconds: Double {
        // An observer follows the trainers: it must not give up on a step before they do, or it
        // applies a different (often empty) set and races ahead of them.
        if !contributing {
            switch deadline {
            case .fixed(let s): return 3 * s
            case .adaptive(_, _, let hi): return hi
            }
        }
        switch deadline {
        case .fixed(let s): return s
        case .adaptive(let k, let lo, let hi):
            guard history.count >= 3 else { return hi }
            let med = Self.median(history)
            let mad = Self.median(history.map { abs($0 - med) })
            return min(hi, max(lo, med + k * max(mad, 0.05 * med)))
        }
    }

    /// Opens the round of `step`, expecting contributions from `expected` (the own index is always
    /// added). Buffered early contributions for `step` are taken in at once.
    public mutating func open(step: Int, expected: Set<Int>, now: Double, contributing: Bool = true) -> [Directive] {
        precondition(step > lastAppliedStep, "round \(step) opened after \(lastAppliedStep) was applied")
        openStep = step
        self.contributing = contributing
        self.expected = contributing ? expected.union([me]) : expected.subtracting([me])
        openedAt = now
        let exp = self.expected
        receivedByPeer = (early.removeValue(forKey: step) ?? [:]).filter { exp.contains($0.key) }
        early = early.filter { $0.key > step }
        return completeIfReady(now: now)
    }

    /// A contribution from `peer` for `step` arrived (the shell passes its own too).
    public mutating func onContribution(peer: Int, step: Int, _ value: Contribution, now: Double) -> [Directive] {
        if step <= lastAppliedStep {
            lateDropped += 1
            return [.droppedLate(peer: peer, step: step)]
        }
        if let s = openStep, s == step {
            if receivedByPeer[peer] != nil { duplicatesDropped += 1; return [] }
            // Only the peers expected when the round opened count, so that every peer that opened
            // the round with the same membership view applies the same set.
            if !expected.contains(peer) && peer != me { unexpectedDropped += 1; return [] }
            receivedByPeer[peer] = value
            return completeIfReady(now: now)
        }
        // Ahead of us (or a round not yet opened): keep it for later, within bounds.
        if step > lastAppliedStep + maxAhead || (early[step] == nil && early.count >= maxAhead) {
            tooFarAheadDropped += 1
            return []
        }
        if early[step]?[peer] != nil { duplicatesDropped += 1; return [] }
        early[step, default: [:]][peer] = value
        return []
    }

    /// Forgets everything about steps up to `step`: the shell moved there by catch-up (replay or
    /// snapshot), not through rounds. Buffered contributions for later steps are kept.
    public mutating func reset(lastApplied step: Int) {
        openStep = nil
        receivedByPeer = [:]
        lastAppliedStep = step
        early = early.filter { $0.key > step }
    }

    /// Drops every buffered (future-step) contribution of `peer`: it went back to catching up, so
    /// what it sent from its old state must not be applied later.
    public mutating func forget(peer: Int) {
        for k in early.keys { early[k]?[peer] = nil }
        early = early.filter { !$0.value.isEmpty }
    }

    /// Contributions buffered for a round not yet open.
    public func buffered(step: Int) -> [Int: Contribution] { early[step] ?? [:] }

    /// Contributions received so far for the open round.
    public var received: [Int: Contribution] { receivedByPeer }

    /// Turns an observing round into a contributing one (the others expect us after all); the
    /// own contribution must follow with `onContribution`.
    public mutating func join() {
        guard openStep != nil, !contributing else { return }
        contributing = true
        expected.insert(me)
    }

    /// Whether contributions for steps at least `step` have been buffered (others are ahead).
    public func hasBuffered(atOrAfter step: Int) -> Bool { early.keys.contains { $0 >= step } }

    /// A peer is no longer expected (declared dead or left): the round may complete without it.
    public mutating func onPeerGone(_ peer: Int, now: Double) -> [Directive] {
        guard peer != me else { return [] }
        expected.remove(peer)
        return completeIfReady(now: now)
    }

    /// Time passes: applies the open round with whoever arrived once its deadline is over.
    public mutating func onTick(now: Double) -> [Directive] {
        guard let s = openStep, receivedByPeer[me] != nil || !contributing else { return [] }
        if now - openedAt >= currentDeadlineSeconds { return finish(step: s, now: now, timedOut: true) }
        return []
    }

    /// Seconds the open round has been open, or nil.
    public func secondsOpen(now: Double) -> Double? { openStep == nil ? nil : now - openedAt }

    /// Seconds until the open round's deadline (for the shell's poll timeout), or nil.
    public func secondsUntilDeadline(now: Double) -> Double? {
        guard openStep != nil else { return nil }
        return max(0, openedAt + currentDeadlineSeconds - now)
    }

    private mutating func completeIfReady(now: Double) -> [Directive] {
        guard let s = openStep, receivedByPeer[me] != nil || !contributing else { return [] }
        if expected.isSubset(of: Set(receivedByPeer.keys)) { return finish(step: s, now: now, timedOut: false) }
        return []
    }

    private mutating func finish(step: Int, now: Double, timedOut: Bool) -> [Directive] {
        let waited = now - openedAt
        if !timedOut {
            history.append(waited)
            if history.count > historyLength { history.removeFirst(history.count - historyLength) }
        }
        let contributions = receivedByPeer.sorted { $0.key < $1.key }.map { (peer: $0.key, value: $0.value) }
        let missing = expected.subtracting(receivedByPeer.keys).sorted()
        openStep = nil
        lastAppliedStep = step
        receivedByPeer = [:]
        return [.apply(step: step, contributions: contributions, missing: missing, waited: waited, timedOut: timedOut)]
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }
}
