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

    public init(steps: Int, membership: MembershipConfig, deadline: TrainingRound<[UInt8]>.Deadline,
                startupGrace: Double = 20, tick: Double = 0.02) {
        self.steps = steps
        self.membership = membership
        self.deadline = deadline
        self.startupGrace = startupGrace
        self.tick = tick
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
public final class PeerNode {
    public let me: Int
    public let runID: UInt64
    public let peerIDs: [String]
    let transport: any Transport
    let engine: any StepEngine
    let options: PeerOptions
    let clock: () -> Double
    let incarnation: UInt32

    var membership: Membership
    var round: TrainingRound<[UInt8]>
    var sequence: UInt64 = 0
    var lastLoss: Float = .nan
    var lastApplied: Int = -1
    var state: PeerState = .joining
    var bytesOut: UInt64 = 0
    var bytesIn: UInt64 = 0
    var invalidBodies = 0
    let rounds: JSONLWriter
    let heartbeats: JSONLWriter
    /// Set from a signal handler's thread to ask the loop to stop after the current step.
    public let stopRequested = ManagedFlag()

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
        rounds = try JSONLWriter(url: runDirectory?.appendingPathComponent("rounds.jsonl"))
        heartbeats = try JSONLWriter(url: runDirectory?.appendingPathComponent("heartbeats.jsonl"))
    }

    /// Where the loop is.
    public enum Phase: Sendable, Equatable {
        /// Heartbeating until every peer is heard and reports `training` (or the grace ends).
        case joining(since: Double)
        /// Running steps.
        case training
        /// Sent BYE; lingering briefly so it leaves before the sockets close.
        case leaving(until: Double)
        case done
    }

    public private(set) var phase: Phase = .done
    /// Next step to compute.
    public private(set) var nextStep = 0

    /// Opens the transport and starts joining at `firstStep` (a restored checkpoint's step).
    public func start(firstStep: Int = 0) throws {
        try transport.start()
        nextStep = firstStep
        lastApplied = firstStep - 1
        phase = .joining(since: clock())
        state = .joining
        sendHeartbeat(now: clock())
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
            let others = peerIDs.count - 1
            let heard = membership.alivePeers.count
            if state == .joining && heard == others { state = .training; sendHeartbeat(now: clock()) }
            let everyoneReady = heard == others && membership.records.values.allSatisfy { $0.last?.state == .training }
            if (state == .training && everyoneReady) || clock() - since >= options.startupGrace {
                state = .training
                phase = .training
            }
        case .training:
            if stopRequested.value || nextStep >= options.steps {
                if round.openStep == nil { beginLeaving(); return true }
            }
            if round.openStep == nil && lastApplied == nextStep - 1 && nextStep < options.steps && !stopRequested.value {
                try beginStep(nextStep)
            }
            let timeout = min(wait, round.secondsUntilDeadline(now: clock()) ?? wait)
            pump(timeout: timeout)
            handle(round.onTick(now: clock()))
            if let e = applyError { applyError = nil; throw e }
        case .leaving(let until):
            pump(timeout: wait)
            if clock() >= until { transport.stop(); phase = .done; return false }
        }
        return true
    }

    /// Runs to the end on the real clock. Returns the final digest.
    @discardableResult
    public func run(firstStep: Int = 0) throws -> UInt64 {
        try start(firstStep: firstStep)
        defer { if phase != .done { transport.stop(); phase = .done } }
        while try poll(wait: options.tick) {}
        return engine.digest()
    }

    func beginLeaving() {
        state = .leaving
        sendHeartbeat(now: clock())
        publish(kind: .bye, step: UInt64(max(0, lastApplied)), body: [])
        // LINGER 0 would drop what is still queued; give the BYE a moment to leave.
        phase = .leaving(until: clock() + 0.2)
    }

    func beginStep(_ step: Int) throws {
        let (body, loss): ([UInt8], Float)
        do { (body, loss) = try engine.contribute(step: step) } catch { throw PeerError.engine(step: step, underlying: error) }
        lastLoss = loss
        nextStep = step + 1
        publish(kind: .update, step: UInt64(step), body: body)
        handle(round.open(step: step, expected: Set(membership.reachablePeers), now: clock()))
        handle(round.onContribution(peer: me, step: step, body, now: clock()))
    }

    var applyError: PeerError?

    /// Carries out round directives.
    func handle(_ directives: [TrainingRound<[UInt8]>.Directive]) {
        for d in directives {
            guard case .apply(let s, let contributions, let missing, let waited, let timedOut) = d else { continue }
            do {
                try engine.apply(step: s, contributions: contributions.map { (peer: $0.peer, body: $0.value) })
            } catch {
                applyError = .engine(step: s, underlying: error)
            }
            lastApplied = s
            let digest = engine.digest()
            let inBytes = contributions.filter { $0.peer != me }.reduce(0) { $0 + $1.value.count }
            rounds.write([
                "step": s, "digest": ParameterDigest.hex(digest), "loss": jsonNumber(lastLoss),
                "contributors": contributions.map { peerIDs[$0.peer] }, "missing": missing.map { peerIDs[$0] },
                "bytes_out": contributions.first { $0.peer == me }?.value.count ?? 0, "bytes_in": inBytes,
                "bytes_reference": engine.referenceBytesPerContribution, "bytes_dense": engine.denseBytesPerContribution,
                "waited_ms": Int(waited * 1000), "timed_out": timedOut, "late_dropped": round.lateDropped,
                "invalid_bodies": invalidBodies, "time_ms": wallMillis(), "peer": peerIDs[me],
            ])
        }
    }

    /// Drains transport events for up to `timeout` seconds and runs the membership clock.
    func pump(timeout: Double) {
        let events = transport.events(timeout: .milliseconds(Int64(max(0, timeout) * 1000)))
        for e in events {
            guard case .message(let env, _) = e else { continue }
            let origin = Int(env.header.origin)
            guard origin != me, origin < peerIDs.count else { continue }
            bytesIn += UInt64(env.body.count + MessageHeader.size)
            let now = clock()
            switch env.header.kind {
            case .heartbeat:
                guard let hb = try? Heartbeat.decode(env.body, peerCount: peerIDs.count), hb.peer == origin else {
                    invalidBodies += 1
                    continue
                }
                heartbeats.write(["event": "recv", "peer": peerIDs[origin], "incarnation": hb.incarnation,
                                  "state": hb.state.description, "step": hb.lastAppliedStep,
                                  "digest": ParameterDigest.hex(hb.digest), "loss": jsonNumber(hb.loss),
                                  "lag": Int(hb.lastAppliedStep) - lastApplied, "time_ms": wallMillis()])
                membershipEvents(membership.onHeartbeat(hb, now: now), now: now)
            case .bye:
                membershipEvents(membership.onBye(peer: origin, now: now), now: now)
            case .update:
                do { try engine.validate(body: env.body) } catch {
                    invalidBodies += 1
                    continue
                }
                handle(round.onContribution(peer: origin, step: Int(env.header.step), env.body, now: now))
            default:
                continue
            }
        }
        let now = clock()
        membershipEvents(membership.onTick(now: now), now: now)
    }

    func membershipEvents(_ events: [MembershipEvent], now: Double) {
        for e in events {
            switch e {
            case .sendHeartbeat:
                sendHeartbeat(now: now)
            case .statusChanged(let p, let from, let to):
                heartbeats.write(["event": "status", "peer": peerIDs[p], "from": from.rawValue, "to": to.rawValue,
                                  "time_ms": wallMillis()])
                if to == .dead || to == .left {
                    handle(round.onPeerGone(p, now: now))
                }
            case .rejoined(let p, let inc):
                heartbeats.write(["event": "rejoined", "peer": peerIDs[p], "incarnation": inc, "time_ms": wallMillis()])
            }
        }
    }

    func sendHeartbeat(now: Double) {
        let hb = Heartbeat(peer: me, incarnation: incarnation, state: state, lastAppliedStep: Int64(lastApplied),
                           digest: engine.digest(), loss: lastLoss, bytesOut: bytesOut, bytesIn: bytesIn,
                           sentAtMillis: wallMillis())
        publish(kind: .heartbeat, step: UInt64(max(0, lastApplied)), body: hb.encode())
        heartbeats.write(["event": "send", "peer": peerIDs[me], "state": state.description, "step": lastApplied,
                          "time_ms": wallMillis()])
    }

    func publish(kind: MessageKind, step: UInt64, body: [UInt8]) {
        sequence += 1
        let env = Envelope.make(kind: kind, runID: runID, origin: PeerIndex(me), incarnation: incarnation,
                                step: step, sequence: sequence, body: body)
        bytesOut += UInt64(body.count + MessageHeader.size)
        try? transport.publish(env)
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
