/// Questions a peer asks about the run's graph. All pure; "neighbour" means "a peer I subscribe to".
extension Topology {
    /// The peer with this id, if any.
    public func peer(id: String) -> PeerSpec? { peers.first { $0.id == id } }

    /// Index of the peer with this id, if any.
    public func index(of id: String) -> PeerIndex? { peer(id: id)?.index }

    /// The peers `peer` subscribes to (its `neighbors`, or everyone else when the list is absent),
    /// in file order.
    public func neighbors(of peer: PeerIndex) -> [PeerIndex] {
        let spec = peers[Int(peer)]
        guard let ids = spec.neighbors else { return peers.map(\.index).filter { $0 != peer } }
        return peers.filter { ids.contains($0.id) }.map(\.index)
    }

    /// The peers that subscribe to `peer` (the other direction of `neighbors(of:)`).
    public func subscribers(of peer: PeerIndex) -> [PeerIndex] {
        peers.map(\.index).filter { $0 != peer && neighbors(of: $0).contains(peer) }
    }

    /// True when every peer subscribes directly to every other: nothing ever needs relaying.
    public var isFullMesh: Bool {
        peers.allSatisfy { neighbors(of: $0.index).count == peers.count - 1 }
    }

    /// Whether `relay` must republish messages authored by `origin`: true when some subscriber of
    /// `relay` does not hear `origin` directly. In a full mesh this is always false, in a ring
    /// always true; it only depends on the file, so every peer computes the same answer.
    public func shouldRelay(origin: PeerIndex, at relay: PeerIndex) -> Bool {
        guard origin != relay else { return false }
        return subscribers(of: relay).contains { $0 != origin && !neighbors(of: $0).contains(origin) }
    }

    /// Peers that cannot hear `origin` even through relays (empty for a usable topology).
    public func unreachable(from origin: PeerIndex) -> [PeerIndex] {
        var reached: Set<PeerIndex> = [origin]
        var frontier = [origin]
        while let next = frontier.popLast() {
            for sub in subscribers(of: next) where reached.insert(sub).inserted { frontier.append(sub) }
        }
        return peers.map(\.index).filter { !reached.contains($0) }
    }

    /// Peers hosted on this machine: the host is loopback, or one of `localAddresses` (e.g.
    /// `HostAddresses.current()`), or the peer runs in a network namespace here (`netns`).
    /// Compared by text, so a name other than `localhost` must be listed in `localAddresses`.
    public func localPeers(localAddresses: Set<String> = []) -> [PeerSpec] {
        peers.filter { $0.netns != nil || $0.pub.isLoopback || localAddresses.contains($0.pub.host) }
    }

    /// Identity of the run: FNV-1a 64 over the run name, the model and the optimizer settings.
    ///
    /// Stable across processes, machines and Swift versions (unlike `hashValue`, which is seeded
    /// per process). Peers compare it on every message to refuse traffic from another run.
    public var runID: UInt64 {
        var hash = FNV1a64()
        hash.add("run=\(run);")
        switch model {
        case .preset(let name): hash.add("model=preset:\(name);")
        case let .explicit(l, h, e, b): hash.add("model=\(l),\(h),\(e),\(b);")
        }
        // Floating-point settings go in by bit pattern: no formatting ambiguity.
        hash.add("opt=\(optimizer.kind.rawValue),\(optimizer.lr.bitPattern),\(optimizer.topk),\(optimizer.chunk),")
        hash.add("\(optimizer.decay.bitPattern),\(optimizer.values.rawValue),\(optimizer.weightDecay.bitPattern),")
        hash.add("\(optimizer.warmup.map(String.init) ?? "-");")
        // The step count shapes the learning-rate schedule: peers that disagree on it would apply
        // different updates to the same contributions, so they must not be in the same run.
        hash.add("steps=\(steps);")
        // Overlap changes which parameters a contribution is computed on (absent when off, so the
        // run ids of earlier topologies stay as they were).
        if round.overlap > 0 { hash.add("overlap=\(round.overlap);") }
        // The aggregation rule changes what every peer applies (absent when it is the default,
        // so earlier run ids stay as they were).
        if optimizer.aggregate != .clipped { hash.add("aggregate=\(optimizer.aggregate.rawValue);") }
        // Transform and local steps likewise (absent at their defaults: dct, H = 1).
        if optimizer.transform != .dct { hash.add("transform=\(optimizer.transform.rawValue);") }
        if let ls = optimizer.localSteps {
            hash.add("local=\(ls.steps),\(ls.inner.rawValue),\(ls.innerLR.bitPattern),\(ls.outerLR.bitPattern),")
            hash.add("\(ls.outerMomentum.bitPattern),\(ls.outerNesterov);")
        }
        return hash.value
    }
}

/// FNV-1a, 64-bit: a tiny stable hash for identifiers (not for security).
public struct FNV1a64: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
    }

    public mutating func add(_ text: String) { add(bytes: text.utf8) }
}
