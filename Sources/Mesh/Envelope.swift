/// One message as it travels: ZeroMQ multipart `[topic][header][body]`, plus `[signature]` (64
/// bytes, Ed25519 by the origin over `signedBytes`) on broadcasts of a CURVE run.
///
/// The topic is derived from the header so a subscriber can filter by prefix without decoding:
/// `[kind][origin low byte][origin high byte]`. Subscribing to the one-byte prefix `[kind]`
/// receives that kind from every origin.
public struct Envelope: Sendable, Hashable {
    public var header: MessageHeader
    public var body: [UInt8]
    /// The origin's signature (`signatureSize` bytes) when the run signs broadcasts; nil otherwise.
    /// Relays forward it unchanged: it covers the header with the `relayed` flag cleared.
    public var signature: [UInt8]?

    /// Bytes of an Ed25519 signature.
    public static let signatureSize = 64

    /// Wraps `body`; the header's length and CRC must describe it (use
    /// `MessageHeader.init(kind:...body:)` or `Envelope.make`).
    public init(header: MessageHeader, body: [UInt8], signature: [UInt8]? = nil) {
        self.header = header
        self.body = body
        self.signature = signature
    }

    /// What the origin signs: the encoded header with `relayed` cleared (a relay sets it on its copy),
    /// then the body. The header holds kind, run id, origin, incarnation, step, sequence and the body
    /// length, so a signature cannot be moved to another message, run or origin.
    public var signedBytes: [UInt8] {
        var h = header
        h.flags.remove(.relayed)
        var out = h.encode()
        out.reserveCapacity(MessageHeader.size + body.count)
        out += body
        return out
    }

    /// Builds an envelope, computing the body length and CRC.
    public static func make(kind: MessageKind, flags: MessageFlags = [], runID: UInt64, origin: PeerIndex,
                            incarnation: UInt32, step: UInt64, sequence: UInt64, body: [UInt8]) -> Envelope {
        Envelope(header: MessageHeader(kind: kind, flags: flags, runID: runID, origin: origin,
                                       incarnation: incarnation, step: step, sequence: sequence, body: body),
                 body: body)
    }

    /// The topic frame for this envelope.
    public var topic: [UInt8] { Topic.message(kind: header.kind, origin: header.origin) }

    /// The frames to send: three, or four with a signature.
    public var frames: [[UInt8]] {
        if let signature { return [topic, header.encode(), body, signature] }
        return [topic, header.encode(), body]
    }

    /// Decodes and checks the frames of one received message (see `MessageHeader.decode`), then
    /// checks that the topic agrees with the header.
    public init(frames: [[UInt8]], expectedRunID: UInt64, maxBody: Int, peerCount: Int) throws(WireError) {
        guard frames.count == 3 || frames.count == 4 else { throw .badFrameCount(frames.count) }
        if frames.count == 4, frames[3].count != Self.signatureSize { throw .badSignatureLength(frames[3].count) }
        let header = try MessageHeader.decode(frames[1], body: frames[2], expectedRunID: expectedRunID,
                                              maxBody: maxBody, peerCount: peerCount)
        guard frames[0] == Topic.message(kind: header.kind, origin: header.origin) else {
            throw .badTopic(Array(frames[0].prefix(8)))
        }
        self.header = header
        self.body = frames[2]
        self.signature = frames.count == 4 ? frames[3] : nil
    }
}

/// Topic conventions on the XPUB/SUB links.
public enum Topic {
    /// First byte of a presence topic. No message kind uses it.
    public static let presenceByte: UInt8 = 0xFE

    /// `[kind][origin LE]`.
    public static func message(kind: MessageKind, origin: PeerIndex) -> [UInt8] {
        [kind.rawValue, UInt8(truncatingIfNeeded: origin), UInt8(truncatingIfNeeded: origin >> 8)]
    }

    /// The prefix a subscriber uses to receive every message of `kind`.
    public static func prefix(kind: MessageKind) -> [UInt8] { [kind.rawValue] }

    /// Private presence topic of `peer`: `[0xFE][peer LE]`. Nobody publishes on it; a peer subscribes
    /// to it on each neighbour's XPUB so that neighbour learns exactly who joined (subscribe frame)
    /// and when that connection died (unsubscribe frame).
    public static func presence(of peer: PeerIndex) -> [UInt8] {
        [presenceByte, UInt8(truncatingIfNeeded: peer), UInt8(truncatingIfNeeded: peer >> 8)]
    }

    /// What an XPUB learned from one subscription frame (`[1 or 0][topic…]`).
    public enum Subscription: Sendable, Equatable {
        /// A subscriber announced itself (`true`) or its connection went away (`false`).
        case presence(PeerIndex, subscribed: Bool)
        /// Any other topic (kind prefixes): no identity attached.
        case other(subscribed: Bool, topic: [UInt8])
        /// Not a subscription frame.
        case malformed
    }

    /// Parses an XPUB subscription frame.
    public static func parseSubscription(_ frame: [UInt8]) -> Subscription {
        guard let first = frame.first, first <= 1 else { return .malformed }
        let topic = Array(frame.dropFirst())
        if topic.count == 3, topic[0] == presenceByte {
            return .presence(PeerIndex(topic[1]) | PeerIndex(topic[2]) << 8, subscribed: first == 1)
        }
        return .other(subscribed: first == 1, topic: topic)
    }
}
