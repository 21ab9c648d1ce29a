/// Builds this peer's outgoing envelopes: fills run id, origin and incarnation, and numbers them
/// with the per-publisher sequence that receivers use to detect losses (`SequenceTracker`).
///
/// One stamper per (peer, incarnation); every broadcast the peer authors must go through it, so
/// the sequence has no holes of its own making. Value type: the owner serialises access.
public struct MessageStamper: Sendable {
    public let runID: UInt64
    public let origin: PeerIndex
    public let incarnation: UInt32
    /// Sequence number the next envelope gets.
    public private(set) var nextSequence: UInt64

    public init(runID: UInt64, origin: PeerIndex, incarnation: UInt32, firstSequence: UInt64 = 0) {
        self.runID = runID
        self.origin = origin
        self.incarnation = incarnation
        self.nextSequence = firstSequence
    }

    /// A new envelope of `kind` about `step` carrying `body` (length and CRC-32C computed).
    public mutating func stamp(_ kind: MessageKind, step: UInt64, body: [UInt8], flags: MessageFlags = []) -> Envelope {
        defer { nextSequence += 1 }
        return .make(kind: kind, flags: flags, runID: runID, origin: origin, incarnation: incarnation,
                     step: step, sequence: nextSequence, body: body)
    }
}
