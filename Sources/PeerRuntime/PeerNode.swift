import Foundation
import Membership
import Mesh
import Tensors

/// Settings of one peer's loop, taken from the topology.
public struct PeerOptions: Sendable {
    public var steps: Int
    public var membership: MembershipConfig
    public var deadline: TrainingRound<[UInt8]>.Deadline
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

    public init(steps: Int, membership: MembershipConfig, deadline: TrainingRound<[UInt8]>.Deadline,
                startupGrace: Double = 20, tick: Double = 0.02, replaySteps: Int = 64, snapshotChunk: Int = 256 << 10,
                catchUpTimeout: Double? = nil) {
        self.steps = steps
        self.membership = membership
        self.deadline = deadline
        self.startupGrace = startupGrace
        self.tick = tick
        self.replaySteps = replaySteps
        self.snapshotChunk = snapshotChunk
        self.catchUpTimeout = catchUpTimeout ?? 2 * membership.deadAfter
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

/// The shell of one peer: owns its transport, clock and log files, runs the pure state machines
/// (`Membership`, `TrainingRound`) and the engine. One instance per process, driven from one thread.
///
/// Life of a peer: **joining** (heartbeat until everyone is heard) → **catching up** when others
/// are ahead (log replay from a donor, or a chunked snapshot when the gap is larger than what
/// donors retain) → **observing** (applying live steps without contributing, until the others
/// have seen it back) → **training** → **leaving** (BYE). A peer that falls behind or whose
/// digest disagrees with the majority goes back to catching up.
public final class PeerNode {
    public let me: Int
    public let runID: UInt64
    public let peerIDs: [String]
    let transport: any Transport
    let engine: any StepEngine
    let options: PeerOptions
    let clock: () -> Double
    public let incarnation: UInt32

    var membership: Membership
    var round: TrainingRound<[UInt8]>
    var replayLog: ReplayLog
    var sequence: UInt64 = 0
    var lastLoss: Float = .nan
    public internal(set) var lastApplied: Int = -1
    var state: PeerState = .joining
    var bytesOut: UInt64 = 0
    var bytesIn: UInt64 = 0
    var invalidBodies = 0
    /// Own digest before each recent step (the parameters after step-1), for the majority check.
    var digestBefore: [Int: UInt64] = [:]
    /// Counters for tests and the summary.
    public internal(set) var repairs = 0
    public internal(set) var replayedSteps = 0
    public internal(set) var snapshotsLoaded = 0
    let rounds: JSONLWriter
    let heartbeats: JSONLWriter
    /// Set from a signal handler's thread to ask the loop to stop after the current step.
    public let stopRequested = ManagedFlag()
    /// Called after every applied step (the shell checkpoints from here).
    public var onApplied: ((Int) -> Void)?
    /// Called once when the peer has heard nobody for longer than the dead timeout (failsafe).
    public var onIsolated: (() -> Void)?

    /// Where the loop is.
    public enum Phase: Sendable, Equatable {
        /// Heartbeating until every peer is heard and reports `training` (or the grace ends).
        case joining(since: Double)
        /// Fetching missed steps from `donor` (replay or snapshot).
        case catchingUp(donor: Int, since: Double)
        /// Applying live steps without contributing, until the others' UPDATEs show they expect it.
        case observing
        /// Running steps.
        case training
        /// Sent BYE; lingering briefly so it leaves before the sockets close.
        case leaving(until: Double)
        case done
    }

    public internal(set) var phase: Phase = .done
    /// Next step to compute.
    public internal(set) var nextStep = 0
    var snapshotChunks: [Int: [UInt8]] = [:]
    /// Snapshot transfers this peer serves as a donor, by requester (one each, replaced by a new request).
    var outgoingSnapshots: [Int: SnapshotTransfer] = [:]
    var isolatedReported = false
    var triedDonors: Set<Int> = []

    /// - Parameters:
    ///   - clock: monotonic seconds (injected so tests can drive time).
    ///   - runDirectory: where rounds.jsonl and heartbeats.jsonl go (nil: no files).
    public init(me: Int, runID: UInt64, peerIDs: [String], incarnation: UInt32, transport: any Transport,
                engine: any StepEngine, options: PeerOptions, runDirectory: URL?,
                clock: @escaping () -> Double) throws {
        self.me = me
        self.runID = runID
        self.peerIDs = peerIDs
        self.incarnation = incarnation
        self.transport = transport
        self.engine = engine
        self.options = options
        self.clock = clock
        membership = Membership(me: me, peers: Array(peerIDs.indices), config: options.membership)
        round = TrainingRound(me: me, deadline: options.deadline)
        replayLog = ReplayLog(capacity: options.replaySteps)
        rounds = try JSONLWriter(url: runDirectory?.appendingPathComponent("rounds.jsonl"))
        heartbeats = try JSONLWriter(url: runDirectory?.appendingPathComponent("heartbeats.jsonl"))
    }

    /// Opens the transport and starts joining at `firstStep` (a restored checkpoint's step).
    public func start(firstStep: Int = 0) throws {
        try transport.start()
        nextStep = firstStep
        lastApplied = firstStep - 1
        round.reset(lastApplied: lastApplied)
        phase = .joining(since: clock())
        state = .joining
        sendHeartbeat(now: clock())
    }

    /// Runs to the end on the real clock. Returns the final digest.
    @discardableResult
    public func run(firstStep: Int = 0) throws -> UInt64 {
        try start(firstStep: firstStep)
        defer { if phase != .done { transport.stop(); phase = .done } }
        while try poll(wait: options.tick) {}
        return engine.digest()
    }

    /// One turn of the loop: handles what arrived (waiting up to `wait` seconds for it), advances
    /// the phase, computes and publishes the next step when its turn comes. Returns false once done.
    /// Deterministic tests call it with `wait: 0` on every node in turn under a manual clock.
    @discardableResult
    public func poll(wait: Double) throws -> Bool {
        switch phase {
        case .done:
            return false
        case .joining(let since):
            pump(timeout: wait)
            guard case .joining = phase else { return true }
            let others = peerIDs.count - 1
            let heard = membership.alivePeers.count
            if heard == others || clock() - since >= options.startupGrace {
                if let donor = donorAhead() {
                    beginCatchUp(donor: donor, snapshot: false, reason: "others are ahead")
                } else {
                    if state == .joining { state = .training; sendHeartbeat(now: clock()) }
                    let everyoneReady = everyoneHearsMe
                        && membership.records.values.allSatisfy { $0.last?.state == .training || $0.status != .alive }
                    if everyoneReady || clock() - since >= options.startupGrace { phase = .training }
                }
            }
        case .catchingUp(let donor, let since):
            pump(timeout: wait)
            if case .catchingUp = phase, clock() - since >= options.catchUpTimeout || membership.status(of: donor) == .dead
                || membership.status(of: donor) == .left {
                log(["event": "catchup", "result": "donor silent", "donor": peerIDs[donor]])
                triedDonors.insert(donor)
                if let next = donorAhead(excluding: triedDonors) ?? donorAhead() {
                    beginCatchUp(donor: next, snapshot: false, reason: "previous donor silent")
                } else {
                    enterObserving()
                }
            }
        case .observing:
            // Leaves for .training only by joining a round whose other contributors expect us
            // (`joinOpenRound`, `beginStep`): then all of them wait for our contribution.
            try trainingTurn(wait: wait, contributing: false)
        case .training:
            try trainingTurn(wait: wait, contributing: true)
        case .leaving(let until):
            pump(timeout: wait)
            if clock() >= until { transport.stop(); phase = .done; return false }
        }
        checkIsolation()
        return true
    }

    func trainingTurn(wait: Double, contributing: Bool) throws {
        if stopRequested.value || nextStep >= options.steps {
            if round.openStep == nil { beginLeaving(); return }
        }
        if round.openStep == nil && lastApplied == nextStep - 1 && nextStep < options.steps && !stopRequested.value {
            try beginStep(nextStep, contributing: contributing)
        }
        let timeout = min(wait, round.secondsUntilDeadline(now: clock()) ?? wait)
        pump(timeout: timeout)
        handle(round.onTick(now: clock()))
        if let e = applyError { applyError = nil; throw e }
        // Contributions two or more steps ahead of ours: the others went on without us. An
        // observer too, once its round has been open for the suspicion time: it missed that
        // round's UPDATEs (sent while it installed a snapshot) and would otherwise wait out
        // max_deadline while the trainers time out waiting for it, step after step (30 s measured
        // after a healed partition on 10 Mbit/s links).
        let behind: Bool
        switch phase {
        case .training: behind = true
        case .observing: behind = (round.secondsOpen(now: clock()) ?? 0) >= options.membership.suspectAfter
        default: behind = false
        }
        if behind, round.hasBuffered(atOrAfter: nextStep + 2), let donor = donorAhead() {
            beginCatchUp(donor: donor, snapshot: false, reason: "fell behind")
        }
    }

    func beginLeaving() {
        state = .leaving
        sendHeartbeat(now: clock())
        publish(kind: .bye, step: UInt64(max(0, lastApplied)), body: [])
        // LINGER 0 would drop what is still queued; give the BYE a moment to leave.
        phase = .leaving(until: clock() + 0.2)
    }

    func beginStep(_ step: Int, contributing: Bool) throws {
        // Observers are expected too: they join as soon as every trainer lists them.
        let expected = Set(membership.reachablePeers.filter { isTraining($0) || isObserving($0) })
        nextStep = step + 1
        digestBefore[step] = engine.digest()
        digestBefore = digestBefore.filter { $0.key > step - 8 }
        // An observer joins a step only when every peer it waits for has published and all of them
        // expect it: then they all wait for its contribution and all apply the same set.
        let buffered = round.buffered(step: step)
        let trainers = expected.filter(isTraining)
        let expectedByOthers = !trainers.isEmpty && trainers.allSatisfy { p in buffered[p].map(listsMe) ?? false }
        if contributing || expectedByOthers {
            if !contributing { phase = .training; state = .training }
            handle(round.open(step: step, expected: expected, now: clock()))
            try contributeOwn(step)
        } else {
            handle(round.open(step: step, expected: expected, now: clock(), contributing: false))
        }
    }

    /// Computes, publishes and counts this peer's contribution to the open round `step`.
    func contributeOwn(_ step: Int) throws {
        let (body, loss): ([UInt8], Float)
        do { (body, loss) = try engine.contribute(step: step) } catch { throw PeerError.engine(step: step, underlying: error) }
        lastLoss = loss
        let full = CatchUpWire.joinUpdate(digest: digestBefore[step] ?? engine.digest(),
                                          expected: CatchUpWire.bitmap(round.expected), payload: body)
        publish(kind: .update, step: UInt64(step), body: full)
        handle(round.onContribution(peer: me, step: step, full, now: clock()))
    }

    func isTraining(_ p: Int) -> Bool {
        let s = membership.records[p]?.last?.state
        return s == .training || s == .isolated
    }
    func isTrainingOnly(_ p: Int) -> Bool { membership.records[p]?.last?.state == .training }
    func isObserving(_ p: Int) -> Bool { membership.records[p]?.last?.state == .observing }

    /// Whether an UPDATE body says its sender expects us at that step.
    func listsMe(_ body: [UInt8]) -> Bool {
        guard let split = try? CatchUpWire.splitUpdate(body) else { return false }
        return CatchUpWire.contains(split.expected, me)
    }

    /// While observing: the others expect us at the open round after all, so contribute to it.
    func joinOpenRound() throws {
        guard let step = round.openStep, case .observing = phase else { return }
        round.join()
        phase = .training
        state = .training
        log(["event": "joined", "step": step])
        try contributeOwn(step)
    }

    var applyError: PeerError?
    var lateLogged = 0

    /// Carries out round directives.
    func handle(_ directives: [TrainingRound<[UInt8]>.Directive]) {
        for d in directives {
            guard case .apply(let s, let contributions, let missing, let waited, let timedOut) = d else { continue }
            var payloads: [(peer: Int, body: [UInt8])] = []
            var digests: [(peer: Int, digest: UInt64)] = []
            for c in contributions {
                guard let split = try? CatchUpWire.splitUpdate(c.value) else { continue }
                _ = split.expected
                payloads.append((c.peer, split.payload))
                digests.append((c.peer, split.digest))
            }
            do { try engine.apply(step: s, contributions: payloads) } catch {
                applyError = .engine(step: s, underlying: error)
            }
            replayLog.record(step: s, payloads)
            lastApplied = s
            let digest = engine.digest()
            let late = round.lateDropped - lateLogged
            lateLogged = round.lateDropped
            let ms = wallMillis()
            rounds.write([
                "t": rfc3339(millis: ms), "late": late, "deadline_ms": Int(round.currentDeadlineSeconds * 1000),
                "step": s, "digest": ParameterDigest.hex(digest), "loss": jsonNumber(lastLoss),
                "contributors": contributions.map { peerIDs[$0.peer] }, "missing": missing.map { peerIDs[$0] },
                "bytes_out": contributions.first { $0.peer == me }?.value.count ?? 0,
                "bytes_in": contributions.filter { $0.peer != me }.reduce(0) { $0 + $1.value.count },
                "bytes_reference": engine.referenceBytesPerContribution, "bytes_dense": engine.denseBytesPerContribution,
                "waited_ms": Int(waited * 1000), "timed_out": timedOut, "late_dropped": round.lateDropped,
                "invalid_bodies": invalidBodies, "time_ms": ms, "peer": peerIDs[me], "phase": phaseName,
            ])
            onApplied?(s)
            checkMajority(step: s, digests: digests)
        }
    }

    var phaseName: String {
        switch phase {
        case .joining: "joining"
        case .catchingUp: "catching-up"
        case .observing: "observing"
        case .training: "training"
        case .leaving: "leaving"
        case .done: "done"
        }
    }

    /// Compares the digests the contributors had before step `s` with ours; if ours is in the
    /// minority (ties: the group holding the lowest peer index wins), we diverged and repair from a
    /// peer of the majority by snapshot.
    func checkMajority(step s: Int, digests: [(peer: Int, digest: UInt64)]) {
        guard let mine = digestBefore[s], digests.count >= 2 else { return }
        var groups: [UInt64: [Int]] = [:]
        for d in digests where d.peer != me { groups[d.digest, default: []].append(d.peer) }
        groups[mine, default: []].append(me)
        let best = groups.max { a, b in
            a.value.count != b.value.count ? a.value.count < b.value.count : a.value.min()! > b.value.min()!
        }!
        guard best.key != mine, case .training = phase else { return }
        repairs += 1
        log(["event": "diverged", "step": s, "mine": ParameterDigest.hex(mine), "majority": ParameterDigest.hex(best.key),
             "majority_peers": best.value.map { peerIDs[$0] }])
        beginCatchUp(donor: best.value.min()!, snapshot: true, reason: "digest differs from the majority")
    }

    func checkIsolation() {
        let silent = membership.silenceOfEveryone(now: clock())
        if silent.isFinite && silent > options.membership.deadAfter && peerIDs.count > 1 {
            if !isolatedReported {
                isolatedReported = true
                // Keep training alone: gradients pile up in the residual; the majority check repairs
                // the parameters when the others are heard again.
                if state == .training { state = .isolated }
                log(["event": "isolated", "silence_s": silent])
                onIsolated?()
            }
        } else {
            if isolatedReported && state == .isolated {
                // The partition healed: what we trained alone is ours only. Adopt the majority's
                // parameters (our residual keeps what we learned, and flows out from here).
                log(["event": "reconnected"])
                if let donor = membership.alivePeers.filter(isTrainingOnly).min() {
                    beginCatchUp(donor: donor, snapshot: true, reason: "partition healed")
                } else {
                    state = .training
                }
            }
            isolatedReported = false
        }
    }

    /// Adds an event line (checkpoint written, checkpoint skipped…) to heartbeats.jsonl.
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

/// A snapshot being sent to one requester under credit flow control.
struct SnapshotTransfer {
    var route: ReplyRoute
    var bytes: [UInt8]
    var chunkSize: Int
    var count: Int
    var next: Int
    var credit: Int
    /// The donor's step and digest when the snapshot was taken (the end marker reports these).
    var step: Int
    var digest: UInt64
}
