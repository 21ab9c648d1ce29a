import Foundation
import Membership
import Mesh
import Tensors

/// Settings of one peer's loop, taken from the topology.
public struct PeerOptions: Sendable {
    public var steps: Int
    public var membership: MembershipConfig
    /// How long the proposer waits for the pace set's contributions.
    public var deadline: TrainingRound<[UInt8]>.Deadline
    /// Pipeline depth: compute step s+D+1's contribution while steps up to s+D travel (0: none).
    public var overlap: Int
    /// How long to wait at start for every peer to be heard before training with whoever is there.
    public var startupGrace: Double
    /// Poll granularity of the loop (seconds).
    public var tick: Double
    /// Steps of applied contributions every peer keeps for log replay (R).
    public var replaySteps: Int
    /// Bytes per snapshot chunk: small enough that a chunk never holds up ZMTP heartbeats.
    public var snapshotChunk: Int
    /// Give up on a silent donor after this long and ask another (seconds).
    public var catchUpTimeout: Double
    /// After the last step: how long at most to stay, serving late peers and collecting the
    /// others' final digests (seconds).
    public var finalLinger: Double
    /// A contribution not committed within this many steps of its tag is dropped.
    public var maxStale: Int
    /// Train alone when nobody is heard by the end of the startup grace (`murmur peer --alone`).
    public var alone = false
    /// Without `alone`: give up (exit non-zero) after hearing nobody for this long (seconds).
    public var giveUpAfter: Double = 600
    /// Where each peer listens (`pub` endpoint), for the messages that name whom we wait for.
    public var endpoints: [String] = []
    /// This run's settings, field by field, sent in HELLOs so that a peer on another copy of the
    /// topology can say what differs (nil: no HELLOs).
    public var fingerprint: RunFingerprint?
    /// HELLO period while joining (seconds); later, five times this.
    public var helloInterval: Double = 2

    public init(steps: Int, membership: MembershipConfig, deadline: TrainingRound<[UInt8]>.Deadline,
                overlap: Int = 0, startupGrace: Double = 20, tick: Double = 0.02, replaySteps: Int = 64,
                snapshotChunk: Int = 256 << 10, catchUpTimeout: Double? = nil, finalLinger: Double? = nil, maxStale: Int = 32) {
        self.steps = steps
        self.membership = membership
        self.deadline = deadline
        self.overlap = max(0, overlap)
        self.startupGrace = startupGrace
        self.tick = tick
        self.replaySteps = replaySteps
        self.snapshotChunk = snapshotChunk
        self.catchUpTimeout = catchUpTimeout ?? 2 * membership.deadAfter
        self.finalLinger = finalLinger ?? max(5, 4 * membership.deadAfter)
        self.maxStale = maxStale
    }
}

/// Errors that stop a peer.
public enum PeerError: Error, CustomStringConvertible {
    case engine(step: Int, underlying: any Error)

    public var description: String {
        switch self {
        case .engine(let s, let e): return "training step \(s) failed: \(e)"
        }
    }
}

/// How a run ended for this peer, judged from the final digests the peers reported.
public enum FinalOutcome: Sendable, Equatable, CustomStringConvertible {
    /// A majority of the topology's peers (this one included) ended on this digest.
    case agreed(digest: UInt64, peers: [Int])
    /// Another group of peers ended on a different final digest and this one is not the majority.
    case disagreed(mine: UInt64, majority: UInt64, majorityPeers: [Int])
    /// Too few peers reported a final digest to call it one model (this one may have trained alone).
    case unconfirmed(mine: UInt64, confirmedBy: [Int], needed: Int)
    /// The others finished and left before this peer could reach their final state.
    case unreached(step: Int, finalDigest: UInt64?, finishedPeers: [Int])
    /// Stopped early (signal); the run is not over.
    case stopped(step: Int)
    /// Heard none of the other peers, so trained nothing (run with `--alone` to train by yourself).
    case nobodyHeard(seconds: Double, waitingFor: [String])
    /// Peers of another run (another copy of the topology) were heard, so this one did not train.
    case foreignTopology(seconds: Double, detail: String)

    public var isSuccess: Bool {
        switch self {
        case .agreed, .stopped: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .agreed(let d, let p): return "final digest \(ParameterDigest.hex(d)) agreed by \(p.count) peer(s)"
        case .disagreed(let m, let j, let p):
            return "final digests disagree: this peer ended on \(ParameterDigest.hex(m)), \(p.count) peer(s) on \(ParameterDigest.hex(j)); restart this peer to repair it from the majority, or copy their final checkpoint"
        case .unconfirmed(let m, let by, let n):
            return "final digest \(ParameterDigest.hex(m)) was confirmed by \(by.count) peer(s), \(n) needed: this peer may have trained on alone; compare digests with `murmur status` before using its parameters"
        case .unreached(let s, let d, let p):
            return "the other peers finished and left (\(p.count) of them\(d.map { ", final digest \(ParameterDigest.hex($0))" } ?? "")) while this peer was at step \(s); copy a final checkpoint from one of them, or start them again with this peer running"
        case .stopped(let s): return "stopped at step \(s) by request"
        case .foreignTopology(let t, let detail):
            return "did not train in \(Int(t)) s: \(detail)"
        case .nobodyHeard(let t, let who):
            return "heard none of the other peers in \(Int(t)) s (waited for \(who.joined(separator: ", "))): start them, check the addresses, ports and firewalls, and that every machine uses the same topology file; or run `murmur peer --alone` to train by yourself"
        }
    }
}

/// The shell of one peer: owns its transport, worker, clock and log files, and interprets the
/// directives of the pure cores (`PeerProtocol` for rounds, `Membership` for liveness).
///
/// Threads: `poll`/`run` on one loop thread, which receives, heartbeats, proposes and serves
/// catch-up; the engine runs only inside `StepWorker` jobs, so a long forward/backward never holds
/// up liveness or serving (DESIGN §3). The shell never touches the engine outside a job: the digest
/// it reports is the one the last job returned.
///
/// Life of a peer: **joining** (heartbeat until everyone is heard; catch up at once when a live
/// peer is ahead) → **catching up** (log replay or a chunked snapshot) → **training** (contribute
/// when ready, apply every commit) → **finishing** (after the last step: serve late peers,
/// collect the final digests) → **leaving** (BYE).
public final class PeerNode {
    public let me: Int
    public let runID: UInt64
    public let peerIDs: [String]
    let transport: any Transport
    let engine: any StepEngine
    let worker: any StepWorker
    let options: PeerOptions
    let clock: () -> Double
    public let incarnation: UInt32

    var membership: Membership
    var core: PeerProtocol
    var replayLog: ReplayLog
    var sequence: UInt64 = 0
    var lastLoss: Float = .nan
    var state: PeerState = .joining
    var bytesOut: UInt64 = 0
    var bytesIn: UInt64 = 0
    var invalidBodies = 0
    /// Digest of the parameters after the last job that changed them (the loop never reads the engine).
    public internal(set) var digest: UInt64 = 0
    /// Counters for tests and the summary.
    public internal(set) var repairs = 0
    public internal(set) var replayedSteps = 0
    public internal(set) var snapshotsLoaded = 0
    /// Steps this peer applied while it heard nobody (the failsafe), for the summary.
    public internal(set) var stepsAlone = 0
    let rounds: JSONLWriter
    let heartbeats: JSONLWriter
    /// Set from a signal handler's thread to ask the loop to stop after the current step.
    public let stopRequested = ManagedFlag()
    /// Called on the worker after every applied step (the shell checkpoints and validates from
    /// here; it may use the engine).
    public var onApplied: ((Int) -> Void)?
    /// Called on the worker once when the peer has heard nobody for longer than the dead timeout,
    /// with the engine's step (the last one applied).
    public var onIsolated: ((Int) -> Void)?
    /// How the run ended (set when the peer leaves).
    public internal(set) var outcome: FinalOutcome?
    /// Called on the loop thread every few seconds while the peer waits for anyone to be heard
    /// (whom, seconds so far), so the shell can say it on the terminal.
    public var onWaiting: (([String], Double) -> Void)?
    var lastLonelyNote = -Double.infinity
    /// Called on the loop thread when a peer of another run (or with other data or timing
    /// settings) is heard, at most once per peer and minute, with the message to show.
    public var onForeign: ((String) -> Void)?
    /// Called (on the loop's thread) with a warning about what another peer sent, already rate-limited.
    public var onWarning: ((String) -> Void)?
    /// Peers of another run heard lately: their id → when, and what differs.
    var foreignPeers: [String: (at: Double, message: String)] = [:]
    var foreignLogged: [String: Double] = [:]
    var lastHello = -Double.infinity
    /// When a received heartbeat was last logged, per origin (rate limit).
    var lastReceivedLogged: [Int: Double] = [:]

    /// Where the loop is: the one phase enum of the shell.
    public enum Phase: Sendable, Equatable {
        case joining(since: Double)
        /// Fetching missed steps from `donor` (replay or snapshot).
        case catchingUp(donor: Int, since: Double)
        case training
        /// The last step is applied: serving late peers and collecting the final digests.
        case finishing(since: Double)
        /// Sent BYE; lingering briefly so it leaves before the sockets close.
        case leaving(until: Double)
        case done
    }

    public internal(set) var phase: Phase = .done
    public var lastApplied: Int { core.lastApplied }
    /// Next step to apply.
    public var nextStep: Int { core.lastApplied + 1 }
    var isolatedReported = false
    /// When this peer last found itself cut off from everyone (nil: it hears someone).
    var isolatedSince: Double?
    var triedDonors: Set<Int> = []
    /// Donors whose transfer ended on another digest than they announced, or would not restore:
    /// never asked again in this run (a silent donor is only skipped for the current attempt).
    var distrustedDonors: Set<Int> = []
    var workError: PeerError?
    /// What a pending apply job is applying (for its log line and the replay log).
    var pendingApplies: [Int: (Commit, [Contribution])] = [:]
    /// Replayed steps handed to the worker, recorded in the replay log once applied.
    var pendingReplays: [Int: [(peer: Int, body: [UInt8])]] = [:]
    /// Catch-up requester state.
    var catchUp = CatchUpState()
    /// Donor state: transfers under credit, requesters waiting for a snapshot job, the cached one.
    /// Transfers in flight, keyed by requester *and* connection: a request that names a peer but
    /// comes over another connection (plaintext: anyone can claim any origin) starts a transfer of
    /// its own instead of replacing that peer's (issue 16).
    var outgoingSnapshots: [TransferKey: CatchUpTransfer] = [:]
    var snapshotWaiters: Set<TransferKey> = []
    var snapshotJobPending = false
    var cachedSnapshot: (step: Int, bytes: [UInt8], digest: UInt64)?
    /// Catch-up requests each requester may still make (token bucket, `CatchUpBudget`).
    var requestBudget: [Int: CatchUpBudget] = [:]
    /// Digests the other peers reported per step: what a catch-up's result is checked against.
    var reported = ReportedDigests()
    /// Requests dropped by the budget (a flood from one requester), for the log.
    var requestsDropped = 0
    /// Rate limit of per-message warnings (refused frames): one line per kind and second.
    var lastWarned: [String: Double] = [:]
    var lastRefusalCheck = -Double.infinity
    var refusedOriginsLogged = 0
    /// The step the engine will be at once every submitted job has run (read and written only
    /// inside jobs, i.e. on the worker).
    let engineStep = StepBox()

    /// - Parameters:
    ///   - worker: where engine jobs run (default: a dedicated thread).
    ///   - clock: monotonic seconds (injected so tests can drive time).
    ///   - runDirectory: where rounds.jsonl and heartbeats.jsonl go (nil: no files).
    public init(me: Int, runID: UInt64, peerIDs: [String], incarnation: UInt32, transport: any Transport,
                engine: any StepEngine, options: PeerOptions, runDirectory: URL?,
                worker: (any StepWorker)? = nil, clock: @escaping () -> Double) throws {
        self.me = me
        self.runID = runID
        self.peerIDs = peerIDs
        self.incarnation = incarnation
        self.transport = transport
        self.engine = engine
        self.options = options
        self.clock = clock
        let t = transport
        self.worker = worker ?? ThreadStepWorker(name: "murmur.worker.\(peerIDs[me])", wake: { t.wake() })
        membership = Membership(me: me, peers: Array(peerIDs.indices), config: options.membership)
        core = PeerProtocol(me: me, incarnation: incarnation, peerCount: peerIDs.count, config: Self.coreConfig(options),
                            lastApplied: -1, digest: 0)
        replayLog = ReplayLog(capacity: options.replaySteps)
        rounds = try JSONLWriter(url: runDirectory?.appendingPathComponent("rounds.jsonl"))
        heartbeats = try JSONLWriter(url: runDirectory?.appendingPathComponent("heartbeats.jsonl"))
    }

    static func coreConfig(_ o: PeerOptions) -> PeerProtocol.Config {
        PeerProtocol.Config(steps: o.steps, overlap: o.overlap, deadline: o.deadline, maxStale: o.maxStale,
                            missingTimeout: max(0.5, o.membership.suspectAfter), maxAhead: max(64, o.replaySteps))
    }

    /// Opens the transport and starts joining at `firstStep` (a restored checkpoint's step).
    /// Reads the engine once, before any job runs.
    public func start(firstStep: Int = 0) throws {
        try transport.start()
        digest = engine.digest()
        engineStep.value = firstStep - 1
        core = PeerProtocol(me: me, incarnation: incarnation, peerCount: peerIDs.count, config: Self.coreConfig(options),
                            lastApplied: firstStep - 1, digest: digest)
        phase = .joining(since: clock())
        state = .joining
        sendHeartbeat(now: clock())
    }

    /// Runs to the end on the real clock. Returns the final digest.
    @discardableResult
    public func run(firstStep: Int = 0) throws -> UInt64 {
        try start(firstStep: firstStep)
        defer {
            if phase != .done { transport.stop(); phase = .done }
            worker.shutdown()
        }
        while try poll(wait: options.tick) {}
        return digest
    }

    /// One turn of the loop: takes finished jobs, handles what arrived (waiting up to `wait`
    /// seconds for it), advances the phase and the round core. Returns false once done.
    /// Deterministic tests call it with `wait: 0` on every node in turn under a manual clock.
    @discardableResult
    public func poll(wait: Double) throws -> Bool {
        if phase == .done { return false }
        takeResults()
        var timeout = wait
        if let d = core.secondsUntilDeadline(now: clock()) { timeout = min(timeout, d) }
        if let due = worker.nextDue(now: clock()) { timeout = min(timeout, max(0, due - clock())) }
        pump(timeout: timeout)
        takeResults()
        if let e = workError { workError = nil; throw e }
        let now = clock()
        sendHelloIfDue(now: now)
        noteRefusedOrigins(now: now)
        dropIdleTransfers(now: now)
        switch phase {
        case .done:
            return false
        case .joining(let since):
            if let donor = donorAhead() {
                beginCatchUp(donor: donor, snapshot: false, reason: "others are ahead")
            } else if let foreign = recentForeign(now: now) {
                // Another copy of the topology is in use: training now would end on two models.
                if now - since >= options.giveUpAfter {
                    beginLeaving(outcome: .foreignTopology(seconds: now - since, detail: foreign))
                } else if now - lastLonelyNote >= 5 {
                    lastLonelyNote = now
                    log(["event": "waiting", "seconds": Int(now - since), "give_up_after_s": Int(options.giveUpAfter),
                         "detail": "not training while a peer of another topology is heard: \(foreign)"])
                }
            } else if (membership.alivePeers.count == peerIDs.count - 1 && everyoneHearsMe) || now - since >= options.startupGrace {
                // Everyone must hear us first: an UPDATE published before a subscriber's link is
                // up is lost (pub/sub's slow joiner), and the proposer would wait out its deadline.
                // Nobody at all heard by the end of the grace: we do not train alone unless asked.
                let lonely = peerIDs.count > 1 && !options.alone && membership.records.values.allSatisfy { $0.status == .unknown }
                if !lonely {
                    enterTraining(reason: "joined")
                } else if now - since >= options.giveUpAfter {
                    beginLeaving(outcome: .nobodyHeard(seconds: now - since, waitingFor: waitingFor))
                } else if now - lastLonelyNote >= 5 {
                    lastLonelyNote = now
                    log(["event": "waiting", "for": waitingFor, "seconds": Int(now - since), "give_up_after_s": Int(options.giveUpAfter),
                         "detail": "heard none of the other peers; not training alone (murmur peer --alone would)"])
                    onWaiting?(waitingFor, now - since)
                }
            }
        case .catchingUp(let donor, let since):
            if catchUp.verifying != nil {
                verifyCatchUp(donor: donor, now: now)
            } else if now - since >= options.catchUpTimeout || membership.status(of: donor) == .dead || membership.status(of: donor) == .left {
                log(["event": "catchup", "result": "donor silent", "donor": peerIDs[donor]])
                tryNextDonor(after: donor, snapshot: catchUp.snapshot, reason: "previous donor silent", otherwise: "no donor answered")
            }
        case .training:
            if stopRequested.value {
                beginLeaving(outcome: .stopped(step: lastApplied))
            } else if core.finished && worker.pending == 0 {
                phase = .finishing(since: now)
                log(["event": "finished", "step": lastApplied, "digest": ParameterDigest.hex(digest)])
                sendHeartbeat(now: now)
            } else if let unreached = othersFinishedWithoutMe() {
                beginLeaving(outcome: unreached)
            }
        case .finishing(let since):
            // Cut off for a good while before the end (a partition: alone, the peer ran ahead to
            // the last step): the others are not finished, only unheard. Wait for the partition
            // to heal — up to twice as long as it has lasted, at most `give_up_after` — so the
            // peer can adopt their model, instead of leaving on its own line at once.
            let alone = isolatedReported ? isolatedSince.map { since - $0 } ?? 0 : 0
            let partitioned = alone >= options.membership.deadAfter
            let limit = partitioned ? max(options.finalLinger, min(options.giveUpAfter, 2 * alone)) : options.finalLinger
            if stopRequested.value || now - since >= limit
                || (!partitioned && now - since >= 2 * options.membership.heartbeatInterval && everyoneSettled) {
                beginLeaving(outcome: finalOutcome())
            }
        case .leaving(let until):
            if now >= until {
                transport.stop()
                phase = .done
                return false
            }
        }
        updateView(now: now)
        handle(core.onTick(now: now))
        checkIsolation()
        return true
    }

    /// Starts (or resumes) contributing and following commits.
    func enterTraining(reason: String) {
        triedDonors = []
        let wasIsolated = state == .isolated
        state = isolatedReported ? .isolated : .training
        phase = .training
        if !wasIsolated { log(["event": "training", "step": lastApplied, "reason": reason]) }
        sendHeartbeat(now: clock())
        updateView(now: clock())
    }

    /// Tells the core who may propose and whether we take part.
    func updateView(now: Double) {
        let active: Bool
        switch phase {
        case .training, .finishing: active = true
        default: active = false
        }
        // Candidates: peers alive or merely suspect that train, or are still joining (a joining
        // peer of lower index is waited for, so that a fresh cluster agrees on one proposer).
        let trainers = Set(membership.reachablePeers.filter { p in
            guard let s = membership.records[p]?.last?.state else { return false }
            return s == .training || s == .joining
        })
        let horizon = active ? -1 : trainers.compactMap { membership.records[$0]?.last?.lastAppliedStep }
            .map { Int(clamping: $0) }.max() ?? -1
        let v = PeerProtocol.View(trainers: state == .isolated ? [] : trainers, active: active, horizon: horizon)
        if v != core.view { handle(core.setView(v, now: now)) }
    }

    func beginLeaving(outcome: FinalOutcome) {
        self.outcome = outcome
        log(["event": "outcome", "success": outcome.isSuccess, "detail": outcome.description, "step": lastApplied,
             "digest": ParameterDigest.hex(digest)])
        state = .leaving
        sendHeartbeat(now: clock())
        publish(kind: .bye, step: UInt64(max(0, lastApplied)), body: [])
        // LINGER 0 would drop what is still queued; give the BYE a moment to leave.
        phase = .leaving(until: clock() + 0.2)
    }

    /// The peers not heard yet, with their endpoints when known ("p1 at tcp://10.0.0.2:7110").
    var waitingFor: [String] {
        peerIDs.indices.filter { $0 != me && membership.status(of: $0) == .unknown }.map { p in
            p < options.endpoints.count ? "\(peerIDs[p]) at \(options.endpoints[p])" : peerIDs[p]
        }
    }

    /// Whether every alive peer reports hearing us (so our UPDATEs will reach them).
    var everyoneHearsMe: Bool {
        membership.alivePeers.allSatisfy { membership.records[$0]?.last?.hears(me) ?? false }
    }

    /// Every other peer has finished, left or is dead: nobody needs us to linger.
    var everyoneSettled: Bool {
        membership.records.allSatisfy { _, r in
            r.status == .dead || r.status == .left || r.status == .unknown || (r.last.map { Int64(core.config.steps - 1) <= $0.lastAppliedStep } ?? false)
        }
    }

    /// The others reported the last step and left, and none of them is here to serve us: we would
    /// only train alone.
    func othersFinishedWithoutMe() -> FinalOutcome? {
        guard peerIDs.count > 1, !core.finished else { return nil }
        let finished = membership.records.filter { _, r in (r.last?.lastAppliedStep ?? -1) >= Int64(core.config.steps - 1) }
        guard !finished.isEmpty else { return nil }
        let anyoneHere = membership.records.contains { _, r in r.status == .alive || r.status == .suspect }
        guard !anyoneHere else { return nil }
        let digests = Dictionary(grouping: finished.compactMap { $0.value.last?.digest }, by: { $0 })
        let best = digests.max { $0.value.count < $1.value.count }?.key
        return .unreached(step: lastApplied, finalDigest: best, finishedPeers: finished.keys.sorted())
    }

    /// The final vote: my final digest against what the others reported for the last step.
    func finalOutcome() -> FinalOutcome {
        let last = Int64(core.config.steps - 1)
        var reports: [(peer: Int, digest: UInt64)] = [(me, digest)]
        for (p, r) in membership.records { if let hb = r.last, hb.lastAppliedStep == last { reports.append((p, hb.digest)) } }
        // Asked to train alone (`--alone`) and nobody else took part: that is the run the user wanted.
        if options.alone && reports.count == 1 { return .agreed(digest: digest, peers: [me]) }
        return Self.finalVote(me: me, reports: reports, peerCount: peerIDs.count)
    }

    /// Pure: the outcome from the final digests reported (own included). A majority of the
    /// topology's peers must share my digest; a larger group on another digest means I diverged.
    public static func finalVote(me: Int, reports: [(peer: Int, digest: UInt64)], peerCount: Int) -> FinalOutcome {
        let mine = reports.first { $0.peer == me }?.digest ?? 0
        var groups: [UInt64: [Int]] = [:]
        for r in reports { groups[r.digest, default: []].append(r.peer) }
        let needed = peerCount / 2 + 1
        let myGroup = (groups[mine] ?? []).sorted()
        if myGroup.count >= needed { return .agreed(digest: mine, peers: myGroup) }
        if let (d, peers) = groups.filter({ $0.key != mine }).max(by: { $0.value.count < $1.value.count }), peers.count > myGroup.count {
            return .disagreed(mine: mine, majority: d, majorityPeers: peers.sorted())
        }
        return .unconfirmed(mine: mine, confirmedBy: myGroup, needed: needed)
    }

    func checkIsolation() {
        let silent = membership.silenceOfEveryone(now: clock())
        if silent.isFinite && silent > options.membership.deadAfter && peerIDs.count > 1 {
            if !isolatedReported {
                isolatedReported = true
                isolatedSince = clock()
                // Keep training alone: gradients pile up in the residual; the majority check repairs
                // the parameters when the others are heard again.
                if state == .training { state = .isolated; core.isolate() }
                log(["event": "isolated", "silence_s": silent, "step": lastApplied])
                if let onIsolated {
                    let box = engineStep
                    worker.submit(WorkJob(.other) { onIsolated(box.value); return .done }, now: clock())
                }
                updateView(now: clock())
            }
        } else {
            if isolatedReported && state == .isolated {
                // The partition healed: what we trained alone is ours only. Adopt the majority's
                // parameters (our residual keeps what we learned, and flows out from here).
                log(["event": "reconnected", "steps_alone": stepsAlone])
                isolatedReported = false
                core.resetProposer()
                if let donor = membership.alivePeers.filter({ membership.records[$0]?.last?.state == .training }).min() {
                    beginCatchUp(donor: donor, snapshot: true, reason: "partition healed")
                } else {
                    state = .training
                }
                updateView(now: clock())
            }
            isolatedReported = false
        }
    }

    /// Adds an event line (checkpoint written, checkpoint skipped…) to heartbeats.jsonl.
    /// Safe from the worker (the writer is locked).
    public func note(_ fields: [String: Any]) { log(fields) }

    /// One line of heartbeats.jsonl (fields in docs/LOGS.md): `peer` is always the peer writing the
    /// log; `from` the peer the line is about.
    func log(_ fields: [String: Any]) {
        var f = fields
        let ms = wallMillis()
        f["peer"] = peerIDs[me]
        f["t"] = rfc3339(millis: ms)
        f["time_ms"] = ms
        heartbeats.write(f)
    }

    /// Messages the transport refused because they did not come from the origin they claim (a
    /// broadcast without its origin's signature, a catch-up request from another peer's key): one
    /// warning per second at most, with the running count.
    func noteRefusedOrigins(now: Double) {
        guard now - lastRefusalCheck >= 1 else { return }
        lastRefusalCheck = now
        let s = transport.stats
        guard s.unauthenticated > refusedOriginsLogged else { return }
        refusedOriginsLogged = s.unauthenticated
        let detail = "refused \(s.unauthenticated) message(s) not signed or sent by the peer they claim to come from (last: \(s.lastUnauthenticated ?? "?")); a key holder is speaking for another peer, or a relay altered a message"
        log(["event": "forged-origin", "count": s.unauthenticated, "detail": detail])
        onWarning?(detail)
    }

    /// A warning about something another peer sent, at most once per `key` and second.
    func warnLimited(_ key: String, _ fields: [String: Any]) {
        let now = clock()
        if let t = lastWarned[key], now - t < 1 { return }
        lastWarned[key] = now
        log(fields)
    }

    var phaseName: String {
        switch phase {
        case .joining: "joining"
        case .catchingUp: "catching-up"
        case .training: state == .isolated ? "isolated" : "training"
        case .finishing: "finishing"
        case .leaving: "leaving"
        case .done: "done"
        }
    }
}

/// A flag another thread (a signal handler's) may set.
public final class ManagedFlag: @unchecked Sendable {
    // Safe: every access holds the lock.
    private let lock = NSLock()
    private var flag = false
    public init() {}
    public var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    public func set() { lock.lock(); flag = true; lock.unlock() }
}

/// An integer owned by the worker's jobs.
final class StepBox: @unchecked Sendable {
    // Only read and written inside jobs (one at a time, on the worker), or before the first job.
    var value = -1
}

/// A snapshot being sent to one requester under credit flow control.
/// Catch-up requests a donor serves per requester: `capacity` at once, then `refillPerSecond`.
/// A legitimate requester asks once per donor and attempt (a few per catch-up); a flood from
/// one requester is dropped here, so a ~100-byte request cannot buy unbounded replies.
struct CatchUpBudget {
    static let capacity = 4.0
    static let refillPerSecond = 2.0
    var tokens = capacity
    var at: Double

    /// Takes one request's token at `now`; false: over budget, drop the request.
    mutating func take(now: Double) -> Bool {
        tokens = min(Self.capacity, tokens + max(0, now - at) * Self.refillPerSecond)
        at = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// One outgoing catch-up transfer (log replay or snapshot chunks), sent under the requester's
/// credit: at most `credit` items in flight, one more per item it consumed.
/// Who a catch-up transfer goes to: the origin the request named and the connection it came over.
struct TransferKey: Hashable {
    var requester: Int
    var route: ReplyRoute
}

struct CatchUpTransfer {
    enum Content {
        /// Replayed steps, in order.
        case replay([(step: Int, body: [UInt8])])
        /// A snapshot, sent in chunks of `chunkSize` bytes.
        case snapshot(bytes: [UInt8], chunkSize: Int)
    }
    var content: Content
    var route: ReplyRoute
    var next = 0
    var credit: Int
    /// The donor's step and digest when the transfer began (the end marker reports these).
    var step: Int
    var digest: UInt64
    /// When the requester last asked or granted credit (loop clock, seconds): a transfer nobody
    /// drives any more is dropped after `PeerNode.transferIdleLimit`.
    var lastActivity: Double = 0

    /// Items to send: replayed steps, or chunks (at least one, even for an empty snapshot).
    var count: Int {
        switch content {
        case .replay(let steps): steps.count
        case let .snapshot(bytes, size): max(1, (bytes.count + size - 1) / size)
        }
    }

    /// Kind, step and body of item `i`.
    func item(_ i: Int) -> (kind: MessageKind, step: Int, body: [UInt8]) {
        switch content {
        case .replay(let steps):
            return (.catchUpReplay, steps[i].step, steps[i].body)
        case let .snapshot(bytes, size):
            let lo = i * size, hi = min(bytes.count, lo + size)
            return (.catchUpSnapshot, step, CatchUpWire.encodeChunk(index: i, count: count, bytes[lo..<hi]))
        }
    }
}

/// What a catch-up requester keeps while a transfer runs.
struct CatchUpState {
    var snapshot = false
    /// Next replayed step expected.
    var nextReplay = 0
    var chunks: [Int: [UInt8]] = [:]
    var chunkCount = 0
    var chunkBytes = 0
    /// The end marker, once it arrived and the jobs it depends on are still running.
    var pendingEnd: (donor: Int, step: Int, digest: UInt64, mode: CatchUpWire.EndMode)?
    var failed = false
    /// The transfer ended on the digest the donor announced; now the majority must confirm it.
    var verifying: (step: Int, digest: UInt64, mode: CatchUpWire.EndMode, since: Double)?
}
