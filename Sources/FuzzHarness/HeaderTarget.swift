import Mesh

extension FuzzHarness {
    /// The run id every header fuzz input is checked against (`MurmurFu` in ASCII).
    public static let headerRunID: UInt64 = 0x7546_7275_6d72_754d
    /// Largest body the header harness accepts.
    public static let headerMaxBody = 1 << 16
    /// Peer count of the header harness (origins must be below it).
    public static let headerPeerCount = 16

    /// Splits a fuzz input into message frames: `[h][h header bytes][t][t topic bytes][body…]`.
    /// An input that ends before the topic length byte gives fewer than three frames (so short
    /// inputs test the frame count check); otherwise the body is the rest, possibly empty.
    public static func headerFrames(_ bytes: [UInt8]) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var at = 0
        for _ in 0..<2 {
            guard at < bytes.count else { return frames }
            let n = Int(bytes[at])
            let end = min(bytes.count, at + 1 + n)
            frames.append(Array(bytes[(at + 1)..<end]))
            at = end
        }
        // Reorder [header, topic] + body into the wire order [topic, header, body].
        return [frames[1], frames[0], Array(bytes[at...])]
    }

    /// Inverse of `headerFrames` for well-formed frames (header and topic under 256 bytes).
    public static func headerInput(topic: [UInt8], header: [UInt8], body: [UInt8]) -> [UInt8] {
        precondition(topic.count < 256 && header.count < 256)
        return [UInt8(header.count)] + header + [UInt8(topic.count)] + topic + body
    }

    /// Fuzzes `Envelope(frames:…)` / `MessageHeader.decode` and `Topic.parseSubscription`.
    ///
    /// Invariants on acceptance: the header re-encodes to the exact received bytes, every checked
    /// field is within its bound (run id, origin, body length, CRC, flags), the envelope's frames are
    /// the received frames, and decoding them again gives the same envelope.
    @discardableResult
    public static func header(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        let t = "header"
        let frames = headerFrames(bytes)
        if let first = frames.first { try subscription(first) }
        let env: Envelope
        do {
            env = try Envelope(frames: frames, expectedRunID: headerRunID, maxBody: headerMaxBody,
                               peerCount: headerPeerCount)
        } catch {
            return .rejected(error.description)
        }
        let h = env.header
        try require(h.encode() == frames[1], t, "header does not re-encode to the received 48 bytes")
        try require(h.runID == headerRunID, t, "accepted run id \(h.runID)")
        try require(Int(h.origin) < headerPeerCount, t, "accepted origin \(h.origin)")
        try require(Int(h.bodyLength) == env.body.count && env.body.count <= headerMaxBody, t,
                    "body length \(h.bodyLength) vs \(env.body.count) bytes")
        try require(CRC32C.checksum(env.body) == h.bodyCRC, t, "accepted a body whose CRC differs")
        try require(MessageFlags.known.isSuperset(of: h.flags), t, "accepted unknown flags \(h.flags.rawValue)")
        try require(env.frames == frames, t, "envelope frames differ from the received frames")
        do {
            let again = try Envelope(frames: env.frames, expectedRunID: headerRunID, maxBody: headerMaxBody,
                                     peerCount: headerPeerCount)
            try require(again == env, t, "decode ∘ encode ∘ decode changed the envelope")
        } catch {
            throw FuzzFinding(t, "re-encoded envelope rejected: \(error)")
        }
        return .accepted
    }

    /// `Topic.parseSubscription` must describe `frame` exactly (rebuilding it gives the same bytes).
    static func subscription(_ frame: [UInt8]) throws(FuzzFinding) {
        switch Topic.parseSubscription(frame) {
        case .malformed:
            try require(frame.isEmpty || frame[0] > 1, "header", "well-formed subscription \(frame) called malformed")
        case let .presence(peer, subscribed):
            try require([subscribed ? 1 : 0] + Topic.presence(of: peer) == frame, "header",
                        "presence subscription \(frame) does not rebuild")
        case let .other(subscribed, topic):
            try require([subscribed ? 1 : 0] + topic == frame, "header", "subscription \(frame) does not rebuild")
        }
    }
}
