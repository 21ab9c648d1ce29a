/// What a message is. Raw values are on the wire: never renumber, only add.
public enum MessageKind: UInt8, Sendable, CaseIterable {
    /// Liveness + progress (step, digest) of its origin; published on XPUB, relayed.
    case heartbeat = 1
    /// A step's DeMo contribution; published on XPUB, relayed.
    case update = 2
    /// The origin leaves cleanly; published on XPUB, relayed.
    case bye = 3
    /// The proposer's decision of which contributions make up one step (round protocol v2);
    /// published on XPUB, relayed.
    case commit = 4
    /// The origin's run fingerprint (`RunFingerprint`): accepted whatever its run id, so a peer on
    /// another copy of the topology is named, not silently dropped; published on XPUB, never relayed.
    case hello = 5
    /// DEALER → ROUTER: ask a donor for log replay or a snapshot.
    case catchUpRequest = 16
    /// ROUTER → DEALER: one replayed step's contributions.
    case catchUpReplay = 17
    /// ROUTER → DEALER: one chunk of a parameter snapshot.
    case catchUpSnapshot = 18
    /// DEALER → ROUTER: credit for more chunks (flow control).
    case catchUpCredit = 19
    /// ROUTER → DEALER: end of the catch-up stream, or refusal.
    case catchUpEnd = 20

    /// Kinds that travel over pub/sub (and are relayed); the others go over ROUTER/DEALER.
    public var isBroadcast: Bool { rawValue < 16 }
}

/// Header flag bits.
public struct MessageFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Set by a relay on the copy it republishes (diagnostics only; the header is otherwise unchanged).
    public static let relayed = MessageFlags(rawValue: 1 << 0)
    /// The body is the last chunk of a multi-chunk transfer.
    public static let lastChunk = MessageFlags(rawValue: 1 << 1)
    public static let known: MessageFlags = [.relayed, .lastChunk]
}

/// The fixed-size header of every message (DESIGN §5), little-endian, `size` = 48 bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `MRMR` |
/// | 4 | 1 | format version |
/// | 5 | 1 | kind |
/// | 6 | 2 | flags |
/// | 8 | 8 | run id |
/// | 16 | 2 | origin peer index |
/// | 18 | 4 | incarnation |
/// | 22 | 8 | step |
/// | 30 | 8 | per-publisher sequence number |
/// | 38 | 4 | body length |
/// | 42 | 4 | CRC-32C of the body |
/// | 46 | 2 | reserved, zero |
public struct MessageHeader: Sendable, Hashable {
    public static let size = 48
    public static let magic: [UInt8] = Array("MRMR".utf8)
    public static let version: UInt8 = 1

    public var kind: MessageKind
    public var flags: MessageFlags
    public var runID: UInt64
    /// Index of the peer that authored the message (unchanged by relays).
    public var origin: PeerIndex
    /// Bumped by the origin at every restart, so its sequence numbers can start again.
    public var incarnation: UInt32
    /// Training step the message is about.
    public var step: UInt64
    /// Per-(origin, incarnation) counter over everything the origin published; gaps = losses.
    public var sequence: UInt64
    /// Length of the body frame in bytes.
    public var bodyLength: UInt32
    /// CRC-32C of the body frame.
    public var bodyCRC: UInt32

    public init(kind: MessageKind, flags: MessageFlags = [], runID: UInt64, origin: PeerIndex, incarnation: UInt32,
                step: UInt64, sequence: UInt64, bodyLength: UInt32, bodyCRC: UInt32) {
        self.kind = kind
        self.flags = flags
        self.runID = runID
        self.origin = origin
        self.incarnation = incarnation
        self.step = step
        self.sequence = sequence
        self.bodyLength = bodyLength
        self.bodyCRC = bodyCRC
    }

    /// A header describing `body` (length and CRC computed here).
    public init(kind: MessageKind, flags: MessageFlags = [], runID: UInt64, origin: PeerIndex, incarnation: UInt32,
                step: UInt64, sequence: UInt64, body: [UInt8]) {
        self.init(kind: kind, flags: flags, runID: runID, origin: origin, incarnation: incarnation, step: step,
                  sequence: sequence, bodyLength: UInt32(body.count), bodyCRC: CRC32C.checksum(body))
    }

    /// The 48 header bytes.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        out += Self.magic
        out.append(Self.version)
        out.append(kind.rawValue)
        out.appendLE(flags.rawValue)
        out.appendLE(runID)
        out.appendLE(origin)
        out.appendLE(incarnation)
        out.appendLE(step)
        out.appendLE(sequence)
        out.appendLE(bodyLength)
        out.appendLE(bodyCRC)
        out.appendLE(UInt16(0))
        return out
    }

    /// Decodes and checks a header against its body, in this order: header length, magic, version,
    /// kind, flags/reserved, run id, origin, declared body length against `maxBody`, actual body
    /// length, and only then the CRC over the body.
    ///
    /// - Parameters:
    ///   - bytes: the header frame.
    ///   - body: the body frame.
    ///   - expectedRunID: this run's `Topology.runID`.
    ///   - maxBody: largest body accepted, in bytes.
    ///   - peerCount: number of peers in the topology (origins must be below it).
    public static func decode(_ bytes: [UInt8], body: [UInt8], expectedRunID: UInt64, maxBody: Int,
                              peerCount: Int = Int(PeerIndex.max) + 1) throws(WireError) -> MessageHeader {
        guard bytes.count == size else { throw .badHeaderLength(bytes.count) }
        guard Array(bytes[0..<4]) == magic else { throw .badMagic(Array(bytes[0..<4])) }
        guard bytes[4] == version else { throw .unsupportedVersion(bytes[4]) }
        guard let kind = MessageKind(rawValue: bytes[5]) else { throw .unknownKind(bytes[5]) }
        let flags: UInt16 = bytes.readLE(at: 6)
        guard flags & ~MessageFlags.known.rawValue == 0 else { throw .unknownFlags(flags) }
        let reserved: UInt16 = bytes.readLE(at: 46)
        guard reserved == 0 else { throw .unknownFlags(reserved) }
        let runID: UInt64 = bytes.readLE(at: 8)
        // A HELLO is the one message another run may send us: it says what differs.
        let foreignHello = kind == .hello && runID != expectedRunID
        guard runID == expectedRunID || foreignHello else { throw .wrongRunID(expected: expectedRunID, actual: runID) }
        let origin: PeerIndex = bytes.readLE(at: 16)
        guard Int(origin) < peerCount || foreignHello else { throw .originOutOfRange(origin: origin, peerCount: peerCount) }
        let bodyLength: UInt32 = bytes.readLE(at: 38)
        guard Int(bodyLength) <= maxBody else { throw .oversized(declared: bodyLength, limit: maxBody) }
        guard Int(bodyLength) == body.count else { throw .bodyLengthMismatch(declared: bodyLength, actual: body.count) }
        let declaredCRC: UInt32 = bytes.readLE(at: 42)
        let actualCRC = CRC32C.checksum(body)
        guard declaredCRC == actualCRC else { throw .crcMismatch(declared: declaredCRC, actual: actualCRC) }
        return MessageHeader(kind: kind, flags: MessageFlags(rawValue: flags), runID: runID, origin: origin,
                             incarnation: bytes.readLE(at: 18), step: bytes.readLE(at: 22),
                             sequence: bytes.readLE(at: 30), bodyLength: bodyLength, bodyCRC: declaredCRC)
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    /// Reads a little-endian integer; the caller has checked the bounds.
    func readLE<T: FixedWidthInteger>(at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size {
            value |= T(truncatingIfNeeded: self[offset + i]) << (8 * i)
        }
        return value
    }
}
