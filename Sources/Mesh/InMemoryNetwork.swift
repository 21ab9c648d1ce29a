import Foundation

/// Behaviour of one directed link (publisher → subscriber) in an `InMemoryNetwork`.
public struct LinkConditions: Sendable, Equatable {
    /// Probability in [0, 1] that a message on this link is lost (drawn from the network's seeded RNG).
    public var dropProbability: Double
    /// Ticks between publish and delivery.
    public var delayTicks: UInt64

    public init(dropProbability: Double = 0, delayTicks: UInt64 = 1) {
        self.dropProbability = dropProbability
        self.delayTicks = delayTicks
    }
}

/// A deterministic simulated mesh for cluster tests: every peer of a topology gets a `Transport`,
/// time is a manual tick counter, losses come from a seeded RNG, and partitions cut links.
///
/// Same topology + seed + sequence of calls → same deliveries, drops and event order.
/// Links follow the topology's subscriptions (a peer hears only its neighbours) and transports
/// relay exactly like the ZeroMQ one (`Relay`). Thread-safe: one lock guards all state; nothing
/// runs in the background — messages move only inside `advance(ticks:)`.
public final class InMemoryNetwork: @unchecked Sendable {
    // @unchecked Sendable: every mutable field below is read and written only with `lock` held.
    private let lock = NSLock()
    public let topology: Topology
    private var rng: SplitMix64
    private var clock: UInt64 = 0
    private var peers: [SimulatedPeer]
    private var inFlight: [InFlight] = []
    private var enqueueCounter: UInt64 = 0
    private var defaultConditions = LinkConditions()
    private var conditions: [LinkKey: LinkConditions] = [:]
    /// Group number per peer; peers in different groups cannot talk. nil = no partition.
    private var groups: [Int]?

    struct LinkKey: Hashable { var from: PeerIndex; var to: PeerIndex }

    struct InFlight {
        var deliverAt: UInt64
        var order: UInt64
        var from: PeerIndex
        var to: PeerIndex
        var envelope: Envelope
        /// Point-to-point catch-up traffic: never dropped at random, never relayed.
        var direct: DirectKind? = nil
    }

    enum DirectKind { case request, reply }

    struct SimulatedPeer {
        var started = false
        var stopped = false
        var relay: Relay
        var tracker = SequenceTracker()
        var inbox: [TransportEvent] = []
        var stats = TransportStats()
        /// Weak: the transport holds the network, so a strong reference here leaked every network
        /// (found by the handler fuzz targets, which make one per input).
        weak var transport: InMemoryTransport?
    }

    public init(topology: Topology, seed: UInt64) {
        self.topology = topology
        self.rng = SplitMix64(seed: seed)
        self.peers = topology.peers.map { SimulatedPeer(relay: Relay(topology: topology, me: $0.index)) }
    }

    /// The transport of `peer` (the same object on every call while anyone holds it).
    public func transport(for peer: PeerIndex) -> InMemoryTransport {
        lock.withLock {
            if let existing = peers[Int(peer)].transport { return existing }
            let made = InMemoryTransport(network: self, me: peer)
            peers[Int(peer)].transport = made
            return made
        }
    }

    /// Current tick.
    public var now: UInt64 { lock.withLock { clock } }

    /// Conditions for links without their own.
    public func setDefaultConditions(_ c: LinkConditions) { lock.withLock { defaultConditions = c } }

    /// Conditions of the directed link `from` (publisher) → `to` (subscriber).
    public func setConditions(_ c: LinkConditions, from: PeerIndex, to: PeerIndex) {
        lock.withLock { conditions[LinkKey(from: from, to: to)] = c }
    }

    /// Splits the peers into groups that cannot reach each other (peers not listed form one more
    /// group). Messages already in flight across the cut are lost. Emits disconnect events.
    public func partition(_ parts: [[PeerIndex]]) {
        lock.withLock {
            var newGroups = [Int](repeating: parts.count, count: peers.count)
            for (g, part) in parts.enumerated() { for p in part { newGroups[Int(p)] = g } }
            setGroups(newGroups)
        }
    }

    /// Removes any partition. Emits connect events for links that come back.
    public func heal() { lock.withLock { setGroups(nil) } }

    /// Moves time forward one tick at a time, delivering every message due (including relays
    /// they trigger with zero delay). Returns the number of messages delivered to inboxes.
    @discardableResult
    public func advance(ticks: UInt64 = 1) -> Int {
        lock.withLock {
            var delivered = 0
            for _ in 0..<ticks {
                clock += 1
                delivered += deliverDue()
            }
            return delivered
        }
    }

    /// Messages still travelling.
    public var inFlightCount: Int { lock.withLock { inFlight.count } }

    // MARK: - Called by InMemoryTransport (lock not held by the caller)

    func start(_ me: PeerIndex) {
        lock.withLock {
            if peers[Int(me)].started && peers[Int(me)].stopped {
                // A restart (crash and rejoin in a cluster test): a new process, so new relay state
                // and an empty inbox, like a fresh ZeroMQ transport.
                let t = peers[Int(me)].transport
                peers[Int(me)] = SimulatedPeer(relay: Relay(topology: topology, me: me))
                peers[Int(me)].transport = t
            }
            guard !peers[Int(me)].started else { return }
            peers[Int(me)].started = true
            for other in linkedPeers(of: me) where isUp(me, other) { announce(me, other, up: true) }
        }
    }

    func stop(_ me: PeerIndex) {
        lock.withLock {
            guard peers[Int(me)].started, !peers[Int(me)].stopped else { return }
            for other in linkedPeers(of: me) where isUp(me, other) { announce(me, other, up: false) }
            peers[Int(me)].stopped = true
            inFlight.removeAll { $0.to == me }
        }
    }

    func publish(_ envelope: Envelope, from me: PeerIndex) -> Bool {
        lock.withLock {
            guard isRunning(me) else { return false }
            send(envelope, from: me)
            return true
        }
    }

    /// Catch-up traffic: reliable (like TCP) but cut by partitions; delayed like the link.
    func direct(_ envelope: Envelope, from me: PeerIndex, to other: PeerIndex, kind: DirectKind) -> Bool {
        lock.withLock {
            guard isRunning(me), Int(other) < peers.count else { return false }
            guard isUp(me, other) else { return true }  // lost in the partition, like a dead TCP link
            let c = conditions[LinkKey(from: me, to: other)] ?? defaultConditions
            enqueueCounter += 1
            inFlight.append(InFlight(deliverAt: clock + c.delayTicks, order: enqueueCounter, from: me, to: other,
                                     envelope: envelope, direct: kind))
            peers[Int(me)].stats.messagesOut += 1
            return true
        }
    }

    func drain(_ me: PeerIndex) -> [TransportEvent] {
        lock.withLock {
            defer { peers[Int(me)].inbox.removeAll() }
            return peers[Int(me)].inbox
        }
    }

    func stats(_ me: PeerIndex) -> TransportStats { lock.withLock { peers[Int(me)].stats } }

    // MARK: - Internals (lock held)

    private func isRunning(_ p: PeerIndex) -> Bool { peers[Int(p)].started && !peers[Int(p)].stopped }

    private func sameSide(_ a: PeerIndex, _ b: PeerIndex) -> Bool {
        guard let groups else { return true }
        return groups[Int(a)] == groups[Int(b)]
    }

    private func isUp(_ a: PeerIndex, _ b: PeerIndex) -> Bool {
        isRunning(a) && isRunning(b) && sameSide(a, b)
    }

    /// Peers with a direct link to `p` in either direction, in index order.
    private func linkedPeers(of p: PeerIndex) -> [PeerIndex] {
        let linked = Set(topology.neighbors(of: p)).union(topology.subscribers(of: p))
        return linked.sorted()
    }

    private func announce(_ a: PeerIndex, _ b: PeerIndex, up: Bool) {
        peers[Int(a)].inbox.append(up ? .neighborConnected(b) : .neighborDisconnected(b))
        peers[Int(b)].inbox.append(up ? .neighborConnected(a) : .neighborDisconnected(a))
    }

    private func setGroups(_ newGroups: [Int]?) {
        let before = groups
        var pairsBefore: [LinkKey: Bool] = [:]
        for a in topology.peers.map(\.index) {
            for b in linkedPeers(of: a) where a < b { pairsBefore[LinkKey(from: a, to: b)] = isUp(a, b) }
        }
        groups = newGroups
        for (pair, wasUp) in pairsBefore.sorted(by: { ($0.key.from, $0.key.to) < ($1.key.from, $1.key.to) }) {
            let nowUp = isUp(pair.from, pair.to)
            if wasUp != nowUp { announce(pair.from, pair.to, up: nowUp) }
        }
        if before != newGroups { inFlight.removeAll { !sameSide($0.from, $0.to) } }
    }

    private func send(_ envelope: Envelope, from me: PeerIndex) {
        peers[Int(me)].stats.messagesOut += 1
        peers[Int(me)].stats.bytesOut += MessageHeader.size + envelope.body.count
        for subscriber in topology.subscribers(of: me) where isUp(me, subscriber) {
            let c = conditions[LinkKey(from: me, to: subscriber)] ?? defaultConditions
            // Always draw, even with p = 0, so changing one link's loss does not shift the others' draws.
            let roll = rng.nextUnit()
            if roll < c.dropProbability { continue }
            enqueueCounter += 1
            inFlight.append(InFlight(deliverAt: clock + c.delayTicks, order: enqueueCounter,
                                     from: me, to: subscriber, envelope: envelope))
        }
    }

    private func deliverDue() -> Int {
        var delivered = 0
        // Relays with zero delay land in the same tick; the flood is finite (each peer forwards a
        // message at most once), so this loop ends.
        while true {
            let due = inFlight.filter { $0.deliverAt <= clock }.sorted { ($0.deliverAt, $0.order) < ($1.deliverAt, $1.order) }
            if due.isEmpty { return delivered }
            inFlight.removeAll { $0.deliverAt <= clock }
            for item in due where isUp(item.from, item.to) {
                if receive(item) { delivered += 1 }
            }
        }
    }

    private func receive(_ item: InFlight) -> Bool {
        let to = Int(item.to)
        switch item.direct {
        case .request?:
            peers[to].inbox.append(.request(item.envelope, route: ReplyRoute(identity: [UInt8(item.from & 0xFF), UInt8(item.from >> 8)])))
            peers[to].stats.messagesIn += 1
            return true
        case .reply?:
            peers[to].inbox.append(.message(item.envelope, from: item.from))
            peers[to].stats.messagesIn += 1
            return true
        case nil:
            break
        }
        peers[to].stats.bytesIn += MessageHeader.size + item.envelope.body.count
        guard Relay.originFits(item.envelope.header, neighbor: item.from) else {
            peers[to].stats.invalidFrames += 1
            return false
        }
        switch peers[to].relay.decide(item.envelope.header) {
        case .own, .duplicate, .stale:
            peers[to].stats.duplicates += 1
            return false
        case .deliver(let forward):
            let h = item.envelope.header
            if case .gap(let missing) = peers[to].tracker.observe(origin: h.origin, incarnation: h.incarnation, sequence: h.sequence) {
                peers[to].stats.sequenceGaps = peers[to].stats.sequenceGaps.saturatingAdd(missing)   // sequences come off the wire
            }
            peers[to].stats.messagesIn += 1
            peers[to].inbox.append(.message(item.envelope, from: item.from))
            if forward {
                var copy = item.envelope
                copy.header.flags.insert(.relayed)
                peers[to].stats.relayed += 1
                send(copy, from: item.to)
            }
            return true
        }
    }
}
