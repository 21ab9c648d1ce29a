/// Remembers which broadcast messages a peer has already seen, so that gossip relaying delivers
/// each message once and forwards it at most once.
///
/// **How loops are prevented.** A SUB socket cannot address one publisher, so a relay cannot
/// "send back to everyone but the neighbour it came from": it republishes on its own XPUB, which
/// every subscriber receives, the sender included. Every receiver runs this filter first: a copy it
/// has already seen is dropped (not delivered, not forwarded). Each peer therefore forwards each
/// message at most once, so a message crosses each link at most once per direction and the flood
/// ends after at most `peers` hops, whatever cycles the topology has.
///
/// **Key.** (origin, incarnation, kind, step, sequence). The sequence number is part of it because
/// an origin sends several heartbeats within one step; (origin, incarnation, step, kind) alone would
/// swallow all but the first.
///
/// **Bounded memory.** Only the newest incarnation per origin is kept; within it, entries older
/// than `stepWindow` sequence numbers behind that origin's newest message are forgotten (the name
/// is historical: it once counted steps, but a peer's step can go back after a repair), and at most
/// `capacityPerOrigin` entries are kept (oldest first out). A message older than the window is
/// reported `.stale` — never forwarded — because it could no longer be recognised as a duplicate.
public struct RelayFilter: Sendable {
    public enum Admission: Sendable, Equatable {
        /// First time seen: deliver (and forward if the topology needs it).
        case new
        /// Seen before: drop silently.
        case duplicate
        /// Older than what is remembered (older incarnation or beyond the step window): drop.
        case stale
    }

    struct Key: Hashable, Sendable {
        var kind: UInt8
        var step: UInt64
        var sequence: UInt64
    }

    struct OriginState: Sendable {
        var incarnation: UInt32
        var newestSequence: UInt64
        var seen: Set<Key> = []
        /// Insertion order, for eviction; `head` is the first live index.
        var order: [Key] = []
        var head = 0
    }

    public let stepWindow: UInt64
    public let capacityPerOrigin: Int
    private var origins: [PeerIndex: OriginState] = [:]

    /// - Parameters:
    ///   - stepWindow: how many sequence numbers behind an origin's newest message are remembered.
    ///   - capacityPerOrigin: most entries kept per origin (heartbeats of a long step add up).
    public init(stepWindow: UInt64 = 4096, capacityPerOrigin: Int = 8192) {
        self.stepWindow = stepWindow
        self.capacityPerOrigin = max(1, capacityPerOrigin)
    }

    /// Records `header` and says whether it is new.
    public mutating func admit(_ header: MessageHeader) -> Admission {
        let key = Key(kind: header.kind.rawValue, step: header.step, sequence: header.sequence)
        var state = origins[header.origin]
            ?? OriginState(incarnation: header.incarnation, newestSequence: header.sequence)
        if header.incarnation < state.incarnation { return .stale }
        if header.incarnation > state.incarnation {
            state = OriginState(incarnation: header.incarnation, newestSequence: header.sequence)
        }
        defer { origins[header.origin] = state }
        // The window is over the origin's sequence numbers, not its steps: a peer's step can go
        // back (it adopted the majority's state after a partition) while its sequence never does.
        if isBeyondWindow(header.sequence, newest: state.newestSequence) { return .stale }
        guard state.seen.insert(key).inserted else { return .duplicate }
        state.order.append(key)
        state.newestSequence = max(state.newestSequence, header.sequence)
        evict(&state)
        return .new
    }

    /// `step` (a sequence number) is more than `stepWindow` behind `newest`. Written without addition: values come off
    /// the wire and may be anywhere up to `UInt64.max`.
    private func isBeyondWindow(_ step: UInt64, newest: UInt64) -> Bool {
        newest > stepWindow && step < newest - stepWindow
    }

    private func evict(_ state: inout OriginState) {
        while state.head < state.order.count {
            let oldest = state.order[state.head]
            let tooMany = state.seen.count > capacityPerOrigin
            let tooOld = isBeyondWindow(oldest.sequence, newest: state.newestSequence)
            guard tooMany || tooOld else { break }
            state.seen.remove(oldest)
            state.head += 1
        }
        // Compact the FIFO once half of it is dead, keeping appends amortised O(1).
        if state.head > 1024 && state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }

    /// Entries currently remembered, over all origins (for tests and metrics).
    public var count: Int { origins.values.reduce(0) { $0 + $1.seen.count } }
}

/// The relay decision for one peer: the filter plus the topology's "does anyone need this from me".
public struct Relay: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Hand to the application; republish on our XPUB when `forward`.
        case deliver(forward: Bool)
        /// Our own message coming back through a relay.
        case own
        case duplicate
        case stale
    }

    public let me: PeerIndex
    private var filter: RelayFilter
    /// `forwardFor[origin]`: whether this peer must republish what `origin` authored.
    private let forwardFor: [Bool]

    public init(topology: Topology, me: PeerIndex, filter: RelayFilter = RelayFilter()) {
        self.me = me
        self.filter = filter
        self.forwardFor = topology.peers.map { topology.shouldRelay(origin: $0.index, at: me) }
    }

    /// Whether a broadcast that arrived on the link from `neighbor` may claim its origin: a message
    /// its sender did not mark relayed must be the sender's own, and nobody relays its own
    /// messages. With CURVE the link is bound to the neighbour's key, so a key holder can no longer
    /// speak for another peer directly (a forged *relayed* copy still can: that needs signatures,
    /// DESIGN §10). HELLO and point-to-point kinds are not checked here.
    public static func originFits(_ h: MessageHeader, neighbor: PeerIndex) -> Bool {
        guard h.kind.isBroadcast, h.kind != .hello else { return true }
        return h.flags.contains(.relayed) ? h.origin != neighbor : h.origin == neighbor
    }

    /// Decides what to do with a broadcast message that just arrived (from any neighbour).
    /// Catch-up kinds are point-to-point: delivered, never forwarded, not remembered.
    public mutating func decide(_ header: MessageHeader) -> Decision {
        // HELLOs are for the direct neighbour only (they may come from another run, whose origin
        // indices mean nothing here): never relayed, never counted against an origin's stream.
        if header.kind == .hello { return .deliver(forward: false) }
        guard header.origin != me else { return .own }
        guard header.kind.isBroadcast else { return .deliver(forward: false) }
        switch filter.admit(header) {
        case .duplicate: return .duplicate
        case .stale: return .stale
        case .new:
            let index = Int(header.origin)
            return .deliver(forward: index < forwardFor.count && forwardFor[index])
        }
    }
}
