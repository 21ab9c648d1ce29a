/// How a peer looks from here.
public enum PeerStatus: String, Sendable, Equatable {
    case unknown, alive, suspect, dead, left
}

/// Failure-detector settings (seconds).
public struct MembershipConfig: Sendable, Equatable {
    public var heartbeatInterval: Double
    public var suspectAfter: Double
    public var deadAfter: Double
    /// When set, suspicion uses median + k·MAD of each peer's observed heartbeat gaps (never below
    /// `suspectAfter`'s floor share and never above `deadAfter`), so a slow link is not flagged by a
    /// threshold made for a fast one.
    public var adaptiveK: Double?

    public init(heartbeatInterval: Double = 0.25, suspectAfter: Double = 1, deadAfter: Double = 3, adaptiveK: Double? = nil) {
        self.heartbeatInterval = heartbeatInterval
        self.suspectAfter = suspectAfter
        self.deadAfter = deadAfter
        self.adaptiveK = adaptiveK
    }
}

/// What the shell should do or log after an event.
public enum MembershipEvent: Sendable, Equatable {
    /// Send our own heartbeat now.
    case sendHeartbeat
    /// A peer's status changed (log it in heartbeats.jsonl; the round stops expecting dead peers).
    case statusChanged(peer: Int, from: PeerStatus, to: PeerStatus)
    /// A peer came back with a newer incarnation (it restarted).
    case rejoined(peer: Int, incarnation: UInt32)
}

/// Heartbeat bookkeeping and failure detection for one peer: a pure state machine.
///
/// Time is an input (`now`, seconds on any monotonic clock the shell picks). Events: `onHeartbeat`,
/// `onBye`, `onTick`. Transitions: unknown/suspect/dead → alive on a heartbeat of the current or a newer
/// incarnation; alive → suspect after `suspectAfter` of silence; suspect → dead after `deadAfter`;
/// any → left on BYE. A heartbeat from an older incarnation (a stale message of a previous life) is
/// ignored. Value type, not thread-safe: the shell owns it on one thread.
public struct Membership: Sendable {
    public struct Record: Sendable, Equatable {
        public var status: PeerStatus = .unknown
        public var lastHeard: Double = -.infinity
        public var last: Heartbeat?
        public var incarnation: UInt32 = 0
        /// Recent gaps between heartbeats (seconds), for the adaptive threshold.
        public var gaps: [Double] = []
    }

    public let me: Int
    public let config: MembershipConfig
    public private(set) var records: [Int: Record]
    private var lastSent: Double = -.infinity

    /// `peers` are the indices of every other peer in the topology.
    public init(me: Int, peers: [Int], config: MembershipConfig) {
        self.me = me
        self.config = config
        var r: [Int: Record] = [:]
        for p in peers where p != me { r[p] = Record() }
        records = r
    }

    public func status(of peer: Int) -> PeerStatus { records[peer]?.status ?? .unknown }

    /// Peers currently alive (not suspect, dead, left or never heard), sorted.
    public var alivePeers: [Int] { records.filter { $0.value.status == .alive }.map(\.key).sorted() }

    /// Peers we still wait for in a round: alive or merely suspect (a suspect may only be slow).
    public var reachablePeers: [Int] {
        records.filter { $0.value.status == .alive || $0.value.status == .suspect }.map(\.key).sorted()
    }

    /// The silence after which `peer` becomes suspect.
    public func suspectThreshold(for peer: Int) -> Double {
        guard let k = config.adaptiveK, let rec = records[peer], rec.gaps.count >= 8 else { return config.suspectAfter }
        let s = rec.gaps.sorted()
        let med = s[s.count / 2]
        let mad = rec.gaps.map { abs($0 - med) }.sorted()[s.count / 2]
        return min(config.deadAfter, max(2 * config.heartbeatInterval, med + k * max(mad, 0.1 * med)))
    }

    public mutating func onHeartbeat(_ hb: Heartbeat, now: Double) -> [MembershipEvent] {
        guard hb.peer != me, var rec = records[hb.peer] else { return [] }
        if rec.last != nil && hb.incarnation < rec.incarnation { return [] }  // stale, previous life
        var events: [MembershipEvent] = []
        let newer = rec.last != nil && hb.incarnation > rec.incarnation
        if newer {
            events.append(.rejoined(peer: hb.peer, incarnation: hb.incarnation))
            rec.gaps.removeAll()
        } else if rec.lastHeard.isFinite {
            rec.gaps.append(now - rec.lastHeard)
            if rec.gaps.count > 32 { rec.gaps.removeFirst(rec.gaps.count - 32) }
        }
        rec.incarnation = hb.incarnation
        rec.lastHeard = now
        rec.last = hb
        let newStatus: PeerStatus = hb.state == .leaving ? .left : .alive
        if rec.status != newStatus {
            events.append(.statusChanged(peer: hb.peer, from: rec.status, to: newStatus))
            rec.status = newStatus
        }
        records[hb.peer] = rec
        return events
    }

    /// The peer said goodbye (BYE): it is gone on purpose, not failed.
    public mutating func onBye(peer: Int, now: Double) -> [MembershipEvent] {
        guard var rec = records[peer], rec.status != .left else { return [] }
        let from = rec.status
        rec.status = .left
        rec.lastHeard = now
        records[peer] = rec
        return [.statusChanged(peer: peer, from: from, to: .left)]
    }

    /// Advances time: heartbeat due, suspicions, deaths.
    public mutating func onTick(now: Double) -> [MembershipEvent] {
        var events: [MembershipEvent] = []
        if now - lastSent >= config.heartbeatInterval {
            lastSent = now
            events.append(.sendHeartbeat)
        }
        for peer in records.keys.sorted() {
            var rec = records[peer]!
            guard rec.lastHeard.isFinite, rec.status == .alive || rec.status == .suspect else { continue }
            let silent = now - rec.lastHeard
            let target: PeerStatus = silent >= config.deadAfter ? .dead : silent >= suspectThreshold(for: peer) ? .suspect : rec.status
            if target != rec.status {
                events.append(.statusChanged(peer: peer, from: rec.status, to: target))
                rec.status = target
                records[peer] = rec
            }
        }
        return events
    }

    /// Seconds since we last heard anyone (infinity when never): the failsafe trigger.
    public func silenceOfEveryone(now: Double) -> Double {
        let last = records.values.map(\.lastHeard).max() ?? -.infinity
        return now - last
    }
}
