import Foundation
import Membership
import Mesh
import PeerRuntime

/// A deterministic engine for protocol tests: its "parameters" are a running hash of every
/// contribution applied, in order, so replicas agree exactly when they applied the same
/// contributions in the same order. Records what it applied per step.
public final class LedgerEngine: StepEngine {
    public let peer: Int
    public private(set) var state: UInt64 = 0x1234
    public private(set) var contributorsByStep: [Int: [Int]] = [:]
    public private(set) var contributed: [Int] = []
    public private(set) var applied = 0
    public init(peer: Int) { self.peer = peer }

    public func contribute(step: Int) throws -> (body: [UInt8], loss: Float) {
        contributed.append(step)
        var b = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: UInt64(peer).littleEndian) { b.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: UInt64(step).littleEndian) { b.replaceSubrange(8..<16, with: $0) }
        return (b, Float(step))
    }

    public struct Malformed: Error {}
    public func validate(body: [UInt8]) throws { if body.count != 16 { throw Malformed() } }

    public func apply(step: Int, contributions: [(peer: Int, body: [UInt8])]) throws {
        for c in contributions {
            for byte in c.body { state = (state ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        state = (state ^ UInt64(step)) &* 0x100_0000_01B3
        contributorsByStep[step] = contributions.map(\.peer)
        applied += 1
    }

    public func digest() -> UInt64 { state }
    public func snapshot() -> [UInt8] { withUnsafeBytes(of: state.littleEndian) { Array($0) } }
    public func restore(snapshot: [UInt8]) throws {
        guard snapshot.count == 8 else { throw Malformed() }
        state = snapshot.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
    public var referenceBytesPerContribution: Int { 16 }
    public var denseBytesPerContribution: Int { 16 }
}

/// A manual clock (seconds).
public final class SimClock: @unchecked Sendable {
    // Only touched from the test's thread.
    public var now = 0.0
    public init() {}
}

/// Peers of a topology on an `InMemoryNetwork`, each with a `SimulatedStepWorker` whose compute
/// takes simulated time, driven by one manual clock: kill, restart, stop (SIGSTOP), slow down and
/// partition, all deterministic for a seed, none with `sleep`.
///
/// One `step()` polls every running peer once, moves the network one tick and the clock by `dt`.
public final class SimCluster {
    public let topology: Topology
    public let network: InMemoryNetwork
    public let clock = SimClock()
    public let options: PeerOptions
    public let dt: Double
    public private(set) var nodes: [PeerNode]
    public private(set) var engines: [LedgerEngine]
    public private(set) var workers: [SimulatedStepWorker]
    /// Seconds one compute takes on each peer (change it to slow a peer down).
    public var computeSeconds: [Double]
    public var applySeconds: Double
    /// Peers not polled (killed, or stopped with SIGSTOP).
    public private(set) var stopped: Set<Int> = []
    public private(set) var killed: Set<Int> = []
    private var checkpoints: [Int: (step: Int, bytes: [UInt8])] = [:]
    private var incarnations: [Int]
    public private(set) var iterations = 0
    let runDirectory: URL?

    public init(topology: Topology, options: PeerOptions, seed: UInt64, computeSeconds: Double = 0.05,
                applySeconds: Double = 0.005, dt: Double = 0.005, runDirectory: URL? = nil) throws {
        self.topology = topology
        self.options = options
        self.dt = dt
        self.runDirectory = runDirectory
        network = InMemoryNetwork(topology: topology, seed: seed)
        let n = topology.peers.count
        self.computeSeconds = Array(repeating: computeSeconds, count: n)
        self.applySeconds = applySeconds
        incarnations = Array(repeating: 1, count: n)
        nodes = []
        engines = []
        workers = []
        for p in 0..<n {
            let (node, engine, worker) = try make(p, engine: LedgerEngine(peer: p))
            nodes.append(node)
            engines.append(engine)
            workers.append(worker)
        }
    }

    private func make(_ p: Int, engine: LedgerEngine) throws -> (PeerNode, LedgerEngine, SimulatedStepWorker) {
        let worker = SimulatedStepWorker()
        worker.duration = { [unowned self] kind in
            switch kind {
            case .compute: return self.computeSeconds[p]
            case .apply: return self.applySeconds
            case .other: return self.applySeconds
            }
        }
        let clock = self.clock
        let node = try PeerNode(me: p, runID: 7, peerIDs: topology.peers.map(\.id), incarnation: UInt32(incarnations[p]),
                                transport: network.transport(for: PeerIndex(p)), engine: engine, options: options,
                                runDirectory: runDirectory?.appendingPathComponent("\(topology.peers[p].id)-\(incarnations[p])"),
                                worker: worker, clock: { clock.now })
        node.onApplied = { [unowned self] s in
            if (s + 1) % 10 == 0 { self.checkpoints[p] = (s, engine.snapshot()) }
        }
        return (node, engine, worker)
    }

    public func start() throws { for n in nodes { try n.start() } }

    /// Starts only `peers`; the others count as never started (killed).
    public func start(only peers: Set<Int>) throws {
        for (p, n) in nodes.enumerated() {
            if peers.contains(p) { try n.start() } else { killed.insert(p) }
        }
    }

    /// Changes the options of a peer before it starts (e.g. `alone`).
    public func setOptions(_ p: Int, _ change: (inout PeerOptions) -> Void) throws {
        var o = options
        change(&o)
        let worker = workers[p]
        let clock = self.clock
        nodes[p] = try PeerNode(me: p, runID: 7, peerIDs: topology.peers.map(\.id), incarnation: UInt32(incarnations[p]),
                                transport: network.transport(for: PeerIndex(p)), engine: engines[p], options: o,
                                runDirectory: nil, worker: worker, clock: { clock.now })
    }

    /// Polls every running peer once; advances the network and the clock. False when every peer is done.
    @discardableResult
    public func step() throws -> Bool {
        iterations += 1
        var running = false
        for (p, n) in nodes.enumerated() where !stopped.contains(p) && !killed.contains(p) {
            if try n.poll(wait: 0) { running = true }
        }
        network.advance()
        clock.now += dt
        return running || !stopped.subtracting(killed).isEmpty
    }

    /// Runs until every peer is done or `maxIterations`; `each` is called after every iteration.
    public func run(maxIterations: Int, each: ((Int) throws -> Void)? = nil) throws -> Bool {
        for i in 0..<maxIterations {
            if try !step() { return true }
            try each?(i)
        }
        return false
    }

    /// SIGKILL: the process is gone (its transport stops; no BYE, no checkpoint).
    public func kill(_ p: Int) {
        killed.insert(p)
        network.transport(for: PeerIndex(p)).stop()
    }

    /// Restarts a killed peer from its last checkpoint (every 10 steps), with a new incarnation.
    public func restart(_ p: Int) throws {
        incarnations[p] += 1
        let engine = LedgerEngine(peer: p)
        var first = 0
        if let c = checkpoints[p] { try engine.restore(snapshot: c.bytes); first = c.step + 1 }
        let (node, e, w) = try make(p, engine: engine)
        nodes[p] = node
        engines[p] = e
        workers[p] = w
        killed.remove(p)
        try node.start(firstStep: first)
    }

    /// SIGSTOP / SIGCONT: the peer is not polled, but what is sent to it queues up.
    public func pause(_ p: Int) { stopped.insert(p) }
    public func resume(_ p: Int) { stopped.remove(p) }

    /// Final digests of the peers that ended with success, and of all.
    public var successfulDigests: Set<UInt64> {
        Set(nodes.enumerated().filter { $0.element.outcome?.isSuccess ?? false }.map { $0.element.digest })
    }
}
