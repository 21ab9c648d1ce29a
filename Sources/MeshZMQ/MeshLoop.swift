import CZMQ
import Mesh

/// Everything the mesh thread owns: the ZAP handler, the XPUB, the ROUTER and one SUB per
/// neighbour, plus the relay and sequence bookkeeping. Made, used and closed on that one thread
/// (so it is not Sendable); `ZMQTransport` talks to it only through `MeshShared`.
final class MeshLoop {
    let topology: Topology
    let me: PeerIndex
    let options: ZMQTransportOptions
    let curve: CurveSetup?
    let shared: MeshShared
    let runID: UInt64
    let zap: ZAPHandler?
    let xpub: ZMQSocket
    let router: ZMQSocket
    /// One SUB per neighbour, with its monitor and revival state.
    private var subs: [SubLink] = []
    /// Monotonic time base for `LinkWatch`.
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    /// DEALER per donor we asked for catch-up, made on first use.
    var dealers: [(peer: PeerIndex, socket: ZMQSocket)] = []
    /// Sync endpoints that differ from the topology's (tests with ephemeral ports).
    var syncOverrides: [PeerIndex: String] = [:]
    let context: ZMQContext
    private var relay: Relay
    private var tracker = SequenceTracker()
    private var connected: Set<PeerIndex> = []
    var stats = TransportStats()
    var pending: [TransportEvent] = []
    let boundPub: String
    let boundSync: String

    /// Binds the ZAP handler first (when CURVE is on), then the XPUB and the ROUTER.
    init(context: ZMQContext, topology: Topology, me: PeerIndex, curve: CurveSetup?,
         options: ZMQTransportOptions, shared: MeshShared) throws(ZMQError) {
        self.topology = topology
        self.me = me
        self.options = options
        self.curve = curve
        self.shared = shared
        self.context = context
        self.started = clock.now
        self.runID = topology.runID
        self.relay = Relay(topology: topology, me: me, filter: RelayFilter(stepWindow: options.relayStepWindow))
        if let curve {
            var allowed: [String: String] = [:]
            for (index, key) in curve.publicKeys where Int(index) < topology.peers.count {
                allowed[key] = topology.peers[Int(index)].id
            }
            zap = try ZAPHandler(context: context, allowed: allowed)
        } else {
            zap = nil
        }
        let spec = topology.peers[Int(me)]
        xpub = try ZMQSocket(context, type: ZMQ_XPUB)
        router = try ZMQSocket(context, type: ZMQ_ROUTER)
        // What each socket kind receives sets its frame limit: subscriptions and requests are tiny,
        // updates (SUB) and catch-up replies (DEALER) may be a dense gradient or a snapshot chunk.
        try Self.configure(xpub, options, maxFrame: options.maxRequestFrameBytes)
        try xpub.set(ZMQ_XPUB_VERBOSE, 1)
        try Self.configure(router, options, maxFrame: options.maxRequestFrameBytes)
        // Unknown reply routes fail loudly (EHOSTUNREACH) instead of vanishing; a requester that
        // reconnects under the same id takes its route over.
        try router.set(ZMQ_ROUTER_MANDATORY, 1)
        try router.set(ZMQ_ROUTER_HANDOVER, 1)
        if let curve {
            try xpub.makeCurveServer(secretKey: curve.ownKeys.secretKey)
            try router.makeCurveServer(secretKey: curve.ownKeys.secretKey)
        }
        boundPub = try xpub.bind(options.listenOverride?.pub ?? spec.pub.description)
        boundSync = try router.bind(options.listenOverride?.sync ?? spec.sync.description)
        for neighbor in topology.neighbors(of: me) {
            let sub = try ZMQSocket(context, type: ZMQ_SUB)
            try Self.configure(sub, options)
            if let curve { try sub.setCurveClientKeys(curve.ownKeys) }
            for kind in MessageKind.allCases where kind.isBroadcast {
                try sub.set(ZMQ_SUBSCRIBE, bytes: Topic.prefix(kind: kind))
            }
            // Nobody publishes on our presence topic: it tells the neighbour's XPUB who we are.
            try sub.set(ZMQ_SUBSCRIBE, bytes: Topic.presence(of: me))
            let events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_DELAYED | ZMQ_EVENT_CONNECT_RETRIED
                | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
            let monitor = try sub.monitor(name: "sub-\(neighbor)", events: events)
            subs.append(SubLink(peer: neighbor, socket: sub, monitor: monitor, endpoint: nil, watch: LinkWatch()))
        }
    }

    /// Options that must be set before bind/connect.
    static func configure(_ socket: ZMQSocket, _ o: ZMQTransportOptions, maxFrame: Int64? = nil) throws(ZMQError) {
        try socket.set(ZMQ_MAXMSGSIZE, int64: maxFrame ?? o.maxFrameBytes)
        try socket.set(ZMQ_HEARTBEAT_IVL, o.zmtpHeartbeatInterval.zmqMilliseconds)
        try socket.set(ZMQ_HEARTBEAT_TIMEOUT, o.zmtpHeartbeatTimeout.zmqMilliseconds)
        try socket.set(ZMQ_HEARTBEAT_TTL, o.zmtpHeartbeatTTL.zmqMilliseconds)
        try socket.set(ZMQ_HANDSHAKE_IVL, o.handshakeInterval.zmqMilliseconds)
        try socket.set(ZMQ_CONNECT_TIMEOUT, o.connectTimeout.zmqMilliseconds)
        try socket.set(ZMQ_RECONNECT_IVL, o.reconnectInterval.zmqMilliseconds)
        try socket.set(ZMQ_RECONNECT_IVL_MAX, o.reconnectIntervalMax.zmqMilliseconds)
        try socket.set(ZMQ_SNDHWM, o.sendHighWaterMark)
        try socket.set(ZMQ_RCVHWM, o.receiveHighWaterMark)
    }

    /// Connects the SUB of `peer` to `endpoint` (disconnecting a previous endpoint first: the only
    /// way to revive a link refused by ZAP or by an oversized frame).
    func connect(_ peer: PeerIndex, _ endpoint: String) throws(ZMQError) {
        guard let i = subs.firstIndex(where: { $0.peer == peer }) else { return }
        if let old = subs[i].endpoint { try? subs[i].socket.disconnect(old) }
        if let curve {
            guard let key = curve.publicKeys[peer] else {
                throw ZMQError(operation: "connect to \(topology.peers[Int(peer)].id): no public key", code: EINVAL)
            }
            try subs[i].socket.setCurveServerKey(key)
        }
        try subs[i].socket.connect(endpoint)
        subs[i].endpoint = endpoint
    }

    /// Connects every SUB to its neighbour's endpoint from the topology.
    func connectAllFromTopology() throws(ZMQError) {
        for sub in subs { try connect(sub.peer, topology.peers[Int(sub.peer)].pub.description) }
    }

    /// Runs until `shared` says stop. Errors other than EAGAIN/EINTR end the loop (and are
    /// rethrown): they mean a socket is unusable.
    func run() throws(ZMQError) {
        while !shared.isStopping {
            var poller = ZMQPoller()
            poller.add(fd: shared.wakeRead)
            let zapSlot = zap.map { poller.add($0.socket) }
            let xpubSlot = poller.add(xpub)
            let routerSlot = poller.add(router)
            let subBase = poller.count
            for sub in subs { poller.add(sub.socket) }
            let monitorBase = poller.count
            for sub in subs { poller.add(sub.monitor) }
            let dealerBase = poller.count
            let dealersNow = dealers
            for dealer in dealersNow { poller.add(dealer.socket) }
            try poller.poll(timeoutMilliseconds: Int(options.pollInterval.milliseconds))

            if let zapSlot, poller.isReadable(zapSlot) { try zap?.serve() }
            for command in shared.takeCommands() {
                // A bad command (malformed endpoint, stale reply route) must not stop the mesh.
                do { try execute(command) } catch {
                    if error.isTerminated { throw error }
                    stats.failedOperations += 1
                    stats.lastFailure = error.description
                }
            }
            for (offset, dealer) in dealersNow.enumerated() where poller.isReadable(dealerBase + offset) {
                try readDealer(from: dealer.peer, dealer.socket)
            }
            if poller.isReadable(xpubSlot) { try readSubscriptions() }
            if poller.isReadable(routerSlot) { try readRouter() }
            for (offset, sub) in subs.enumerated() where poller.isReadable(subBase + offset) {
                try readSub(from: sub.peer, sub.socket)
            }
            let now = clock.now - started
            for i in subs.indices {
                if poller.isReadable(monitorBase + i) {
                    while let frames = try subs[i].monitor.receive(maxFrames: 2) {
                        if let event = MonitorEvent(frames: frames) { subs[i].watch.observe(event.event, now: now) }
                    }
                }
                if subs[i].watch.takeRevival(now: now), let endpoint = subs[i].endpoint {
                    do {
                        try connect(subs[i].peer, endpoint)
                        stats.linkRevivals += 1
                    } catch {
                        stats.failedOperations += 1
                        stats.lastFailure = error.description
                    }
                }
            }
            flush()
        }
        flush()
    }

    private func flush() {
        stats.sequenceGaps = tracker.totalGaps
        shared.deliver(pending, stats: stats)
        pending.removeAll()
    }

    private func execute(_ command: MeshCommand) throws(ZMQError) {
        switch command {
        case .publish(let envelope):
            try broadcast(envelope)
        case let .connect(peer, endpoint):
            try connect(peer, endpoint)
        case let .setSyncEndpoint(peer, endpoint):
            syncOverrides[peer] = endpoint
        case let .request(envelope, donor):
            try send(envelope, toDonor: donor)
        case let .reply(envelope, route):
            if try router.send([route.identity] + envelope.frames) {
                stats.messagesOut += 1
                stats.bytesOut += MessageHeader.size + envelope.body.count
            }
        }
    }

    /// Decodes one message (the frames after any routing id); counts and drops invalid ones.
    func decode(_ frames: some Collection<[UInt8]>) -> Envelope? {
        stats.bytesIn += frames.reduce(0) { $0 + $1.count }
        do {
            return try Envelope(frames: Array(frames), expectedRunID: runID, maxBody: Int(options.maxFrameBytes),
                                peerCount: topology.peers.count)
        } catch {
            stats.invalidFrames += 1
            stats.lastInvalid = error
            return nil
        }
    }

    private func markConnected(_ peer: PeerIndex) {
        if connected.insert(peer).inserted { pending.append(.neighborConnected(peer)) }
    }

    /// XPUB_VERBOSE hands us every subscribe and the last unsubscribe of each topic.
    private func readSubscriptions() throws(ZMQError) {
        for _ in 0..<1000 {
            guard let frames = try xpub.receive() else { return }
            guard case let .presence(peer, subscribed) = Topic.parseSubscription(frames.first ?? []),
                  Int(peer) < topology.peers.count, peer != me else { continue }
            if subscribed {
                markConnected(peer)
            } else if connected.remove(peer) != nil {
                pending.append(.neighborDisconnected(peer))
            }
        }
    }

    private func readSub(from neighbor: PeerIndex, _ socket: ZMQSocket) throws(ZMQError) {
        // Bounded per round so one busy link cannot starve the others or the commands.
        for _ in 0..<1000 {
            guard let frames = try socket.receive(maxFrames: 4) else { return }
            guard let envelope = decode(frames) else { continue }
            if envelope.header.kind == .hello {
                // Perhaps from another run: neither a sign that our neighbour is up nor part of
                // its origin's sequence.
                stats.messagesIn += 1
                pending.append(.message(envelope, from: neighbor))
                continue
            }
            guard Relay.originFits(envelope.header, neighbor: neighbor) else {
                stats.invalidFrames += 1   // speaking for another peer on its own link
                continue
            }
            markConnected(neighbor)
            // Checked before the relay filter sees it: a forged copy that arrives first must not
            // make the genuine one look like a duplicate.
            if let signing = curve?.signing, envelope.header.kind.isSigned, envelope.header.origin != me,
               !signing.verify(envelope) {
                stats.unauthenticated += 1
                stats.lastUnauthenticated = "\(envelope.header.kind) claiming origin \(topology.peers[Int(envelope.header.origin)].id) via \(topology.peers[Int(neighbor)].id)"
                continue
            }
            switch relay.decide(envelope.header) {
            case .own, .duplicate, .stale:
                stats.duplicates += 1
            case .deliver(let forward):
                let h = envelope.header
                _ = tracker.observe(origin: h.origin, incarnation: h.incarnation, sequence: h.sequence)
                stats.messagesIn += 1
                pending.append(.message(envelope, from: neighbor))
                if forward {
                    var copy = envelope
                    copy.header.flags.insert(.relayed)
                    if try xpub.send(copy.frames) { stats.relayed += 1 }
                }
            }
        }
    }

    /// Closes every socket on this (the owning) thread; the ZAP handler last, so handshakes
    /// in progress are answered until the servers are gone.
    func close() {
        for sub in subs {
            sub.monitor.close()
            sub.socket.close()
        }
        subs.removeAll()
        for dealer in dealers { dealer.socket.close() }
        dealers.removeAll()
        xpub.close()
        router.close()
        zap?.socket.close()
    }
}

/// A SUB connected to one neighbour's XPUB.
struct SubLink {
    let peer: PeerIndex
    let socket: ZMQSocket
    /// PAIR reading the SUB's monitor events.
    let monitor: ZMQSocket
    var endpoint: String?
    var watch: LinkWatch
}
