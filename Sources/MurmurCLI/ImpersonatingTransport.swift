import Mesh

/// Measurements only (issue 16's "must show", `scripts/impersonate.sh`): a peer whose operator
/// went bad. Everything it publishes goes out as usual, and with every heartbeat it also publishes,
/// as if relaying, messages in the name of every other peer: a heartbeat with `incarnation =
/// UInt32.max` (which, believed, makes the real peer's messages look stale everywhere for good), a
/// BYE (which, believed, makes the others drop that peer), and a copy of its own UPDATE under that
/// peer's origin (which, believed, lets one key fill every contribution of a step). It holds a valid
/// key, so the frames pass CURVE, ZAP and the link check; only their origins' signatures are missing.
/// Started by `murmur peer --impersonate` (hidden), or `MURMUR_IMPERSONATE=ID` for `murmur up`.
final class ImpersonatingTransport: Transport, @unchecked Sendable {
    // @unchecked: `sequence` and `forged` are touched only from the peer's loop thread (publish).
    let inner: any Transport
    let peerCount: Int
    private var sequence: UInt64 = 1 << 40
    private(set) var forged = 0

    init(_ inner: any Transport, peerCount: Int) {
        self.inner = inner
        self.peerCount = peerCount
    }

    var me: PeerIndex { inner.me }
    func start() throws { try inner.start() }

    func publish(_ envelope: Envelope) throws {
        try inner.publish(envelope)
        let h = envelope.header
        guard h.origin == me, h.kind == .heartbeat || h.kind == .update else { return }
        for victim in 0..<peerCount where victim != Int(me) {
            func forge(_ kind: MessageKind, incarnation: UInt32, body: [UInt8]) throws {
                sequence += 1
                try inner.publish(Envelope.make(kind: kind, flags: [.relayed], runID: h.runID, origin: PeerIndex(victim),
                                                incarnation: incarnation, step: h.step, sequence: sequence, body: body))
                forged += 1
            }
            if h.kind == .heartbeat {
                try forge(.heartbeat, incarnation: .max, body: envelope.body)
                try forge(.bye, incarnation: .max, body: [])
            } else {
                try forge(.update, incarnation: h.incarnation, body: envelope.body)
            }
        }
    }

    func request(_ envelope: Envelope, from donor: PeerIndex) throws { try inner.request(envelope, from: donor) }
    func reply(_ envelope: Envelope, to route: ReplyRoute) throws { try inner.reply(envelope, to: route) }
    func events(timeout: Duration) -> [TransportEvent] { inner.events(timeout: timeout) }
    var stats: TransportStats { inner.stats }
    func stop() { inner.stop() }
    func wake() { inner.wake() }
}
