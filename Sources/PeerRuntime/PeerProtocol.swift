/// The round protocol v2 of one peer, as a pure state machine (DESIGN §6).
///
/// **Agreement.** Every step is decided by one *proposer*: a COMMIT names exactly which
/// contributions make up step s, and every peer applies step s with exactly those, in id order.
/// What a peer applies therefore never depends on when messages reached it. The proposer is a
/// role, not a machine: the lowest-index live training peer takes it when the one before is dead,
/// left or not training, and keeps it (sticky) until then, so a view difference at a membership
/// change is the only way two proposers can decide the same step (a fault; the digest check and a
/// snapshot repair are the backstop).
///
/// **Stragglers.** A contribution is identified by (origin, incarnation, tag) and may be committed
/// at any step from its tag to `tag + maxStale`. The proposer waits only for the *pace set* — the
/// peers whose contribution for the previous step was fresh — up to the deadline, and takes
/// whatever else has arrived; a slow peer's contribution goes into the next step after it arrives.
/// Nobody waits for it and none of its gradient is lost.
///
/// **Overlap.** With `overlap` D, a peer may compute the contribution for step t once it has applied
/// step t−1−D: it computes step s+1 while step s's contributions and commit travel. D = 0 is the
/// classic synchronous step (compute on the latest parameters).
///
/// The shell feeds events — contributions (its own included), commits, compute and apply results,
/// time, the membership view — and carries out the returned `Directive`s. It reads no clock and
/// owns no socket. Value type; one owner thread.
public struct PeerProtocol: Sendable {
    public struct Config: Sendable, Equatable {
        public var steps: Int
        /// Pipeline depth D (0: no overlap).
        public var overlap: Int
        public var deadline: TrainingRound<[UInt8]>.Deadline
        /// A contribution not committed within this many steps after its tag is dropped.
        public var maxStale: Int
        /// How long a follower waits for a commit's missing contributions, or for a missing commit
        /// while later ones are buffered, before it asks for catch-up (seconds).
        public var missingTimeout: Double
        /// Contributions further than this ahead of the last applied step are refused (bounded memory).
        public var maxAhead: Int

        public init(steps: Int, overlap: Int = 0, deadline: TrainingRound<[UInt8]>.Deadline, maxStale: Int = 32,
                    missingTimeout: Double = 2, maxAhead: Int = 64) {
            self.steps = steps
            self.overlap = max(0, overlap)
            self.deadline = deadline
            self.maxStale = max(1, maxStale)
            self.missingTimeout = missingTimeout
            self.maxAhead = max(4, maxAhead)
        }
    }

    /// What the shell must do.
    public enum Directive: Sendable {
        /// Compute this peer's contribution for `tag` on the current parameters (after `base`).
        case compute(tag: Int, base: Int)
        /// Apply `commit` with these contributions (in commit order).
        case apply(Commit, [Contribution])
        /// Broadcast this decision (we are the proposer).
        case publishCommit(Commit)
        /// We cannot go on by ourselves (a commit names contributions that never came, or commits
        /// are missing): fetch the missed steps from a peer that is ahead.
        case needCatchUp(reason: String)
        /// A message was refused (logged, counted; never applied).
        case refused(what: String)
    }

    /// The membership as the shell sees it now.
    public struct View: Sendable, Equatable {
        /// Other peers that are alive or suspect and say they are training (they may propose).
        public var trainers: Set<Int>
        /// Whether this peer takes part: it contributes and may propose (false while joining or
        /// catching up).
        public var active: Bool
        /// While not active: the highest step other trainers report having applied (heartbeats),
        /// where a catch-up will bring this peer. Commits and contributions are kept in a window
        /// around it rather than around this peer's own (old) step, so the steps decided while a
        /// snapshot or replay was in flight are not lost when it ends. (Bounding them by the own
        /// step refused them: every snapshot was followed by a missing commit, a 1 s stall and a
        /// second catch-up.) Ignored while active.
        public var horizon: Int
        public init(trainers: Set<Int> = [], active: Bool = false, horizon: Int = -1) {
            self.trainers = trainers
            self.active = active
            self.horizon = horizon
        }
    }

    public let me: Int
    public let incarnation: UInt32
    public let peerCount: Int
    public let config: Config

    public private(set) var lastApplied: Int
    /// Step handed to the shell for applying, not yet done.
    public private(set) var applying: Int?
    /// Tag being computed, not yet done.
    public private(set) var computing: Int?
    public private(set) var lastOwnTag: Int = -1
    /// The proposer we follow (nil until one is chosen).
    public private(set) var proposer: Int?
    /// Whether `proposer` was heard deciding (a commit) rather than only chosen by the rule.
    private var proposerConfirmed = false
    public private(set) var view = View()
    /// Highest step a commit is known for.
    public private(set) var lastCommitted: Int
    /// Counters for logs and tests.
    public private(set) var staleDropped = 0
    public private(set) var refusedCount = 0
    public private(set) var commitsMade = 0

    private var pool: [ContributionID: Contribution] = [:]
    /// The newest incarnation seen per origin.
    private var incarnations: [Int: UInt32] = [:]
    /// The newest tag seen per origin (its current life): how far behind it is, for the pace set.
    private var newestTags: [Int: Int] = [:]
    /// Ids already named by a commit, with that commit's step (pruned as steps are applied).
    private var committed: [ContributionID: Int] = [:]
    private var commits: [Int: Commit] = [:]
    /// Own parameter digest after each recent step (-1: before the first).
    private var digests: [Int: UInt64] = [:]
    private var openedAt: Double?
    /// When a majority of the open step's pace set had arrived.
    private var quorumAt: Double?
    /// When this proposer decided its recent steps (for the step interval).
    private var commitTimes: [Double] = []
    private var history: [Double] = []
    /// While not active: the highest step a contribution or commit implied was applied by others.
    private var heardAhead = -1
    /// While active: the highest step our proposer decided beyond our window (its commits were
    /// refused, so no commit is missing in our eyes: without this a peer that woke from a long
    /// stop stayed on its old step for good).
    private var farAhead = -1
    private var stuckSince: Double?
    private var stuckReported = false

    public init(me: Int, incarnation: UInt32, peerCount: Int, config: Config, lastApplied: Int, digest: UInt64) {
        self.me = me
        self.incarnation = incarnation
        self.peerCount = peerCount
        self.config = config
        self.lastApplied = lastApplied
        lastCommitted = lastApplied
        digests[lastApplied] = digest
    }

    /// Largest number of entries a valid commit can hold.
    public var maxCommitEntries: Int { peerCount * (config.maxStale + config.overlap + 2) }

    /// Own digest after `step`, when still remembered.
    public func digest(after step: Int) -> UInt64? { digests[step] }

    /// Whether the run's last step is applied.
    public var finished: Bool { lastApplied >= config.steps - 1 }

    // MARK: events

    /// The membership view changed (call on every status or state change, and before ticks).
    public mutating func setView(_ v: View, now: Double) -> [Directive] {
        view = v
        pruneBelowCatchUpFloor()
        return advance(now: now)
    }

    /// Bounded memory during a long catch-up: what is older than the window around the horizon
    /// is covered by the replay or snapshot.
    private mutating func pruneBelowCatchUpFloor() {
        guard !view.active, let low = catchUpFloor else { return }
        pool = pool.filter { $0.key.tag >= low }
        commits = commits.filter { $0.key >= low }
    }

    /// The step messages are bounded against: our own, or the catch-up horizon while not active —
    /// the highest step others report, or the highest we heard of (a restarted peer hears
    /// contributions before any heartbeat) — at most the run's length, whatever anyone claims.
    private var acceptBase: Int {
        view.active ? lastApplied : max(lastApplied, min(max(view.horizon, heardAhead), config.steps))
    }

    /// While catching up towards a horizon well ahead: the oldest step still worth keeping.
    private var catchUpFloor: Int? {
        let low = acceptBase - config.maxStale - 4
        return low > lastApplied + 1 ? low : nil
    }

    /// A contribution arrived (our own included, once computed and published).
    public mutating func onContribution(_ c: Contribution, now: Double) -> [Directive] {
        let id = c.id
        if id.origin == me && id.incarnation == incarnation { computing = computing == id.tag ? nil : computing }
        guard id.origin >= 0, id.origin < peerCount else { return refuse("contribution from unknown peer \(id.origin)") }
        // Only the newest life of a peer counts: a restarted peer's old contributions (late or
        // relayed copies) would give it two voices in one step.
        if let known = incarnations[id.origin] {
            if id.incarnation < known { return advance(now: now) }
            if id.incarnation > known { pool = pool.filter { $0.key.origin != id.origin } }
        }
        if (incarnations[id.origin] ?? 0) < id.incarnation { newestTags[id.origin] = nil }
        incarnations[id.origin] = max(id.incarnation, incarnations[id.origin] ?? 0)
        newestTags[id.origin] = max(newestTags[id.origin] ?? id.tag, id.tag)
        // A duplicate, or one applied already. A commit may name it before it arrives (the
        // proposer heard it first): then it is still wanted.
        if pool[id] != nil || (committed[id].map { $0 <= lastApplied } ?? false) { return advance(now: now) }
        if !view.active { heardAhead = max(heardAhead, min(id.tag - 1, config.steps)) }
        if id.tag > acceptBase + config.maxAhead {
            return refuse("contribution \(id) too far ahead of step \(acceptBase)") + advance(now: now)
        }
        if let low = catchUpFloor, id.tag < low { return advance(now: now) }
        if id.tag + config.maxStale < lastApplied + 1 {
            staleDropped += 1
            return advance(now: now)
        }
        pool[id] = c
        return advance(now: now)
    }

    /// Our own compute failed or was abandoned: nothing will be published for `tag`.
    public mutating func onComputeAbandoned(tag: Int, now: Double) -> [Directive] {
        if computing == tag { computing = nil }
        return advance(now: now)
    }

    /// A commit arrived (from the proposer, possibly relayed).
    public mutating func onCommit(_ c: Commit, now: Double) -> [Directive] {
        guard c.step > lastApplied, c.step < config.steps else { return advance(now: now) }
        if !view.active { heardAhead = max(heardAhead, min(c.step - 1, config.steps)) }
        // A commit whose contributions come from a majority of the topology's peers is the
        // majority's decision: it moves us even when another proposer is ours (we were away —
        // stopped, cut off — and the role moved on). A peer that trained alone in a partition
        // commits its own contribution only, so its decisions never pull the majority over.
        let byMajority = Set(c.entries.map(\.id.origin)).count * 2 > peerCount
        guard c.step <= acceptBase + config.maxAhead else {
            if proposer == nil || proposer == c.proposer || !proposerValid(proposer!) || byMajority { noteFarAhead(c.step) }
            return refuse("commit for step \(c.step) too far ahead of \(acceptBase)") + advance(now: now)
        }
        if let low = catchUpFloor, c.step < low { return advance(now: now) }
        if let p = proposer, c.proposer != p, p != me, !proposerConfirmed {
            // We chose p by the rule (lowest candidate) but never heard it decide anything: the
            // role is sticky, so the one actually deciding may be another (a peer that took over
            // while p was away). Follow the one we hear. (Refusing it left a reconnected peer on
            // an old step until the real proposer failed.)
        } else if let p = proposer, c.proposer != p, proposerValid(p) {
            // Two proposers (a fault: views differed when the role moved, or a partition healed).
            // The lower index wins, by a rule every peer applies the same way; its decisions
            // replace the other's for every step not applied yet.
            // A majority's decision for a step we have not decided ourselves also wins: without
            // it a proposer woken from a SIGSTOP refused the new proposer for good (seen in
            // `murmur chaos`, p0 stopped at step 562: it never came back).
            let majorityMovedOn = byMajority && c.step > lastCommitted
            guard c.proposer < p || majorityMovedOn, candidates.contains(c.proposer) else {
                return refuse("commit for step \(c.step) from p#\(c.proposer) while p#\(p) proposes")
            }
            commits = commits.filter { $0.key < c.step }
            committed = committed.filter { $0.value <= lastApplied }
            lastCommitted = max(lastApplied, commits.keys.max() ?? lastApplied)
            openedAt = nil
            quorumAt = nil
        } else if let existing = commits[c.step] {
            if existing == c { return advance(now: now) }
            if c.proposer != proposer { return refuse("second commit for step \(c.step) from p#\(c.proposer)") }
        }
        proposer = c.proposer
        proposerConfirmed = true
        record(c)
        return advance(now: now)
    }

    /// The shell finished applying `step` (`digest`: the parameters after it), or failed to.
    public mutating func onApplied(step: Int, digest: UInt64?, now: Double) -> [Directive] {
        guard applying == step else { return advance(now: now) }
        applying = nil
        guard let digest else {
            // Not recorded as applied: the peer must repair from others.
            return [.needCatchUp(reason: "step \(step) could not be applied")] + advance(now: now)
        }
        markApplied(step: step, digest: digest)
        return advance(now: now)
    }

    /// The shell moved to `step` by catch-up (replay or snapshot), not through commits.
    public mutating func reset(lastApplied step: Int, digest: UInt64, now: Double) -> [Directive] {
        applying = nil
        lastApplied = step
        lastCommitted = max(lastCommitted, step)
        digests = digests.filter { $0.key < step && $0.key > step - 64 }
        digests[step] = digest
        commits = commits.filter { $0.key > step }
        // Keep what may still be committed: a later commit can name a straggler's contribution
        // with an old tag (dropping those here made a restarted peer miss the next commit, catch
        // up, drop them again — 276 one-step replays in a chaos run).
        pool = pool.filter { $0.key.tag + config.maxStale >= step + 1 }
        committed = committed.filter { $0.value > step - config.maxStale - 2 }
        stuckSince = nil
        stuckReported = false
        if farAhead <= step + config.maxAhead { farAhead = -1 }
        // Own tags start again after the new step (after a snapshot the step may go back: what we
        // computed beyond it was on a line nobody else follows).
        lastOwnTag = step
        return advance(now: now)
    }

    /// Chooses the proposer afresh at the next turn (after a partition healed: the one we
    /// followed, ourselves perhaps, was on a line of its own).
    public mutating func resetProposer() {
        proposer = nil
        proposerConfirmed = false
        openedAt = nil
        quorumAt = nil
    }

    /// This peer is cut off from everyone (the partition failsafe): it goes on alone, on a line of
    /// its own that a snapshot replaces when the partition heals. Decisions of the proposer it can
    /// no longer hear, beyond what it applied, are dropped — it cannot get their contributions,
    /// and waiting for them left an isolated peer stuck for good instead of training alone.
    public mutating func isolate() {
        commits = commits.filter { $0.key <= lastApplied }
        committed = committed.filter { $0.value <= lastApplied }
        lastCommitted = lastApplied
        farAhead = -1
        resetProposer()
    }

    /// Forgets every pooled contribution of `peer` older than its life `incarnation` … or all of
    /// its contributions (`incarnation` nil): it diverged or restarted.
    public mutating func forget(peer: Int) {
        pool = pool.filter { $0.key.origin != peer }
    }

    public mutating func onTick(now: Double) -> [Directive] {
        pruneBelowCatchUpFloor()
        return advance(now: now)
    }

    /// Seconds until the proposer's deadline for the open step, for the shell's poll timeout.
    public func secondsUntilDeadline(now: Double) -> Double? {
        guard let o = openedAt else { return nil }
        var due = o + currentDeadlineSeconds
        if let q = quorumAt { due = min(due, q + max(afterQuorumSeconds, q - o)) }
        return max(0, due - now)
    }

    /// How long the proposer waits for the rest of the pace set after a majority arrived: a
    /// quarter of the median step interval it has decided (so a straggler costs the others at most
    /// a quarter of a step; its work goes into the next step), at most the deadline's floor.
    public var afterQuorumSeconds: Double {
        let cap: Double
        switch config.deadline {
        case .fixed(let s): cap = s
        case .adaptive(_, let lo, _): cap = lo
        }
        guard commitTimes.count >= 4 else { return cap }
        let gaps = zip(commitTimes, commitTimes.dropFirst()).map { $1 - $0 }
        return min(cap, max(0.02, 0.25 * TrainingRound<[UInt8]>.median(gaps)))
    }

    public var currentDeadlineSeconds: Double {
        switch config.deadline {
        case .fixed(let s): return s
        case .adaptive(let k, let lo, let hi):
            guard history.count >= 3 else { return hi }
            let med = TrainingRound<[UInt8]>.median(history)
            let mad = TrainingRound<[UInt8]>.median(history.map { abs($0 - med) })
            return min(hi, max(lo, med + k * max(mad, 0.05 * med)))
        }
    }

    // MARK: rules

    /// The proposer rule as a pure function: keep `current` while it may propose; otherwise the
    /// lowest-index candidate (nil when there is none).
    public static func chooseProposer(current: Int?, candidates: Set<Int>) -> Int? {
        if let c = current, candidates.contains(c) { return c }
        return candidates.min()
    }

    /// The peers the proposer of `step` waits for: the candidates whose newest contribution is at
    /// most `slack` steps behind (or who have not contributed yet). A chronic straggler is not
    /// waited for; a peer that was late once is, at the next step, so it gets back in pace.
    /// (Waiting only for those fresh in the previous commit shrank the set for good after one
    /// late step: the proposer then committed alone, and nobody else could be fresh again.)
    /// Pure, for table tests.
    public static func paceSet(step: Int, newestTags: [Int: Int], candidates: Set<Int>, slack: Int) -> Set<Int> {
        candidates.filter { c in newestTags[c].map { $0 >= step - slack } ?? true }
    }

    private var candidates: Set<Int> {
        var c = view.trainers
        if view.active { c.insert(me) }
        return c
    }

    private func proposerValid(_ p: Int) -> Bool { candidates.contains(p) }

    private mutating func refuse(_ what: String) -> [Directive] {
        refusedCount += 1
        return [.refused(what: what)]
    }

    private mutating func record(_ c: Commit) {
        commits[c.step] = c
        lastCommitted = max(lastCommitted, c.step)
        for e in c.entries { committed[e.id] = c.step }
    }

    private mutating func markApplied(step: Int, digest: UInt64) {
        lastApplied = step
        digests[step] = digest
        digests = digests.filter { $0.key > step - 64 }
        if let c = commits.removeValue(forKey: step) {
            for e in c.entries { pool[e.id] = nil }
        }
        committed = committed.filter { $0.value > step - config.maxStale - 2 }
        // Too old to be committed any more: dropped (the sender's residual still holds its slow part).
        let before = pool.count
        pool = pool.filter { $0.key.tag + config.maxStale >= step + 1 || committed[$0.key] != nil }
        staleDropped += before - pool.count
        stuckSince = nil
        stuckReported = false
    }

    /// Everything that can happen now, in order: apply, compute, propose.
    private mutating func advance(now: Double) -> [Directive] {
        var out: [Directive] = []
        // At most one job at a time is with the shell's worker: apply first (it is on the path of
        // the next compute), then compute.
        // Nothing is applied while the shell is not taking part (joining, catching up): it moves
        // the parameters by replay or snapshot then, and a commit applied meanwhile would be applied twice.
        if applying == nil && computing == nil && view.active {
            if let c = commits[lastApplied + 1] {
                let parts = c.entries.compactMap { e -> Contribution? in
                    guard let p = pool[e.id], p.hash == e.hash else { return nil }
                    return p
                }
                if parts.count == c.entries.count {
                    applying = c.step
                    out.append(.apply(c, parts))
                } else {
                    out += noteStuck(now: now, "commit \(c.step) names \(c.entries.count - parts.count) contribution(s) that did not arrive")
                }
            } else if lastCommitted > lastApplied + 1 || commits.keys.contains(where: { $0 > lastApplied + 1 }) {
                out += noteStuck(now: now, "the commit for step \(lastApplied + 1) did not arrive")
            }
        }
        if view.active && farAhead > lastApplied + config.maxAhead && !stuckReported {
            // Others are further ahead than our window: catch up now, nothing will come in order.
            stuckReported = true
            out.append(.needCatchUp(reason: "others are \(farAhead - lastApplied) steps ahead"))
        }
        if applying == nil && computing == nil && view.active {
            let tag = max(lastOwnTag + 1, lastApplied + 1)
            if tag < config.steps && lastApplied >= tag - 1 - config.overlap {
                computing = tag
                lastOwnTag = tag
                out.append(.compute(tag: tag, base: lastApplied))
            }
        }
        out += propose(now: now)
        return out
    }

    private mutating func noteFarAhead(_ step: Int) {
        if view.active { farAhead = max(farAhead, min(step, config.steps)) }
    }

    private mutating func noteStuck(now: Double, _ why: String) -> [Directive] {
        if stuckSince == nil { stuckSince = now }
        guard !stuckReported, now - stuckSince! >= config.missingTimeout else { return [] }
        stuckReported = true
        return [.needCatchUp(reason: why)]
    }

    private mutating func propose(now: Double) -> [Directive] {
        guard view.active else { openedAt = nil; quorumAt = nil; return [] }
        let cands = candidates
        let chosen = Self.chooseProposer(current: proposer.flatMap { proposerValid($0) ? $0 : nil }, candidates: cands)
        if chosen != proposer { proposerConfirmed = false }
        proposer = chosen
        guard chosen == me else { openedAt = nil; quorumAt = nil; return [] }
        let step = lastCommitted + 1
        guard step < config.steps else { openedAt = nil; quorumAt = nil; return [] }
        // Stay within the pipeline: never decide a step whose previous one we cannot yet apply.
        guard step <= lastApplied + 2 + config.overlap else { return [] }
        // At most one contribution per peer and step (the oldest first, so none is lost): every
        // peer's voice counts once in the per-coefficient mean.
        var oldest: [Int: Contribution] = [:]
        for c in pool.values where committed[c.id] == nil && c.id.tag <= step && c.id.tag + config.maxStale >= step {
            if let o = oldest[c.id.origin], o.id < c.id { continue }
            oldest[c.id.origin] = c
        }
        let eligible = Array(oldest.values)
        guard !eligible.isEmpty else { return [] }
        let pace = Self.paceSet(step: step, newestTags: newestTags, candidates: cands, slack: 2 + config.overlap)
        let fresh = Set(pool.values.filter { committed[$0.id] == nil && $0.id.tag == step }.map(\.id.origin))
        if openedAt == nil { openedAt = now }
        let complete = !pace.isEmpty && pace.isSubset(of: fresh)
        let waited = now - openedAt!
        // Stragglers must not set the pace: once a majority of the pace set is in, the rest get
        // only the deadline's floor (their contribution is not lost: it goes into a later step).
        // Waiting up to an adaptive deadline from the first arrival instead would learn the slow
        // peer's step time and hold everyone to it.
        if quorumAt == nil, !pace.isEmpty, pace.intersection(fresh).count * 2 > pace.count { quorumAt = now }
        // After the majority: a quarter step, or as long as the majority took to arrive if that was
        // longer — contributions that trickle in over a busy uplink (AdamW's dense ones take a
        // second on 10 Mbit/s) are still arriving, not late; without this 270 of 300 AdamW steps
        // had one contribution committed a step late (stale dense gradients).
        let afterQuorum = max(afterQuorumSeconds, (quorumAt ?? now) - (openedAt ?? now))
        let timedOut = !complete && (waited >= currentDeadlineSeconds || (quorumAt.map { now - $0 >= afterQuorum } ?? false))
        guard complete || timedOut else { return [] }
        if complete {
            history.append(waited)
            if history.count > 32 { history.removeFirst(history.count - 32) }
        }
        let late = pace.subtracting(fresh).filter { $0 < 64 }.reduce(UInt64(0)) { $0 | 1 << UInt64($1) }
        let entries = eligible.sorted { $0.id < $1.id }.map { Commit.Entry(id: $0.id, hash: $0.hash) }
        let c = Commit(step: step, proposer: me, entries: entries, timedOut: timedOut,
                       waitedMillis: UInt32(min(Double(UInt32.max), max(0, waited * 1000))), late: late)
        openedAt = nil
        quorumAt = nil
        commitsMade += 1
        proposerConfirmed = true
        commitTimes.append(now)
        if commitTimes.count > 17 { commitTimes.removeFirst(commitTimes.count - 17) }
        record(c)
        return [.publishCommit(c)] + advance(now: now)
    }
}
