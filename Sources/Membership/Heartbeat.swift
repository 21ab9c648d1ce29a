/// What a peer says it is doing, carried in its heartbeats.
public enum PeerState: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case joining = 0, catchingUp = 1, training = 2, isolated = 3, leaving = 4, observing = 5

    public var description: String {
        switch self {
        case .joining: "joining"
        case .catchingUp: "catching-up"
        case .training: "training"
        case .isolated: "isolated"
        case .leaving: "leaving"
        case .observing: "observing"
        }
    }
}

/// The body of a HEARTBEAT message: a fixed 58-byte little-endian record.
///
/// The envelope header (DESIGN §5) already carries run id, origin, incarnation and sequence number;
/// they are repeated here only where the membership logic needs them without the header.
public struct Heartbeat: Sendable, Equatable {
    public var peer: Int
    public var incarnation: UInt32
    public var state: PeerState
    /// Last step this peer applied (-1 before the first).
    public var lastAppliedStep: Int64
    /// Digest of the parameters after `lastAppliedStep`.
    public var digest: UInt64
    /// Training loss of the last step (NaN when none yet).
    public var loss: Float
    public var bytesOut: UInt64
    public var bytesIn: UInt64
    /// Sender's wall time in milliseconds since 1970 (for logs only; never trusted for timeouts).
    public var sentAtMillis: UInt64
    /// Bit i set: the sender currently hears peer i (peers 0–55; higher indices are not reported).
    /// A peer coming back waits until everyone reports hearing it before it contributes again.
    public var heard: UInt64 = 0

    public init(peer: Int, incarnation: UInt32, state: PeerState, lastAppliedStep: Int64, digest: UInt64,
                loss: Float, bytesOut: UInt64, bytesIn: UInt64, sentAtMillis: UInt64, heard: UInt64 = 0) {
        self.heard = heard
        self.peer = peer
        self.incarnation = incarnation
        self.state = state
        self.lastAppliedStep = lastAppliedStep
        self.digest = digest
        self.loss = loss
        self.bytesOut = bytesOut
        self.bytesIn = bytesIn
        self.sentAtMillis = sentAtMillis
    }

    public static let encodedSize = 2 + 4 + 1 + 8 + 8 + 4 + 8 + 8 + 8 + 7  // last 7 bytes: the `heard` bitmap
    /// Peers the `heard` bitmap can name.
    public static let heardCapacity = 56

    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.encodedSize)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(UInt16(truncatingIfNeeded: peer))
        put(incarnation)
        out.append(state.rawValue)
        put(lastAppliedStep)
        put(digest)
        put(loss.bitPattern)
        put(bytesOut)
        put(bytesIn)
        put(sentAtMillis)
        for k in 0..<7 { out.append(UInt8(truncatingIfNeeded: heard >> (8 * UInt64(k)))) }
        return out
    }

    /// Errors decoding a heartbeat body.
    /// Whether the sender reports hearing `peer` (always true beyond the bitmap's capacity).
    public func hears(_ peer: Int) -> Bool { peer >= Self.heardCapacity || heard & (1 << UInt64(peer)) != 0 }

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        case wrongLength(Int)
        case unknownState(UInt8)
        case peerOutOfRange(Int, peers: Int)
        case stepOutOfRange(Int64)

        public var description: String {
            switch self {
            case .wrongLength(let n): "heartbeat body has \(n) bytes, expected \(Heartbeat.encodedSize)"
            case .unknownState(let s): "heartbeat carries unknown peer state \(s)"
            case .peerOutOfRange(let p, let n): "heartbeat names peer \(p) but the topology has \(n) peers"
            case .stepOutOfRange(let s): "heartbeat carries impossible step \(s)"
            }
        }
    }

    /// Decodes and validates a body; `peerCount` bounds the peer index.
    public static func decode(_ b: [UInt8], peerCount: Int) throws(DecodeError) -> Heartbeat {
        guard b.count == encodedSize else { throw .wrongLength(b.count) }
        var i = 0
        func get<T: FixedWidthInteger>(_: T.Type) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: b[i + k]) << (8 * k) }
            i += MemoryLayout<T>.size
            return v
        }
        let peer = Int(get(UInt16.self))
        let inc = get(UInt32.self)
        let rawState = b[i]; i += 1
        guard let state = PeerState(rawValue: rawState) else { throw .unknownState(rawState) }
        guard peer < peerCount else { throw .peerOutOfRange(peer, peers: peerCount) }
        let step = get(Int64.self)
        guard step >= -1 else { throw .stepOutOfRange(step) }
        let digest = get(UInt64.self)
        let loss = Float(bitPattern: get(UInt32.self))
        let out = get(UInt64.self), inn = get(UInt64.self), at = get(UInt64.self)
        var heard: UInt64 = 0
        for k in 0..<7 { heard |= UInt64(b[i + k]) << (8 * UInt64(k)) }
        var hb = Heartbeat(peer: peer, incarnation: inc, state: state, lastAppliedStep: step, digest: digest,
                           loss: loss, bytesOut: out, bytesIn: inn, sentAtMillis: at)
        hb.heard = heard
        return hb
    }
}
