/// One peer's view of an `InMemoryNetwork`. `events(timeout:)` never waits: advance the network.
public final class InMemoryTransport: Transport {
    // Sendable without @unchecked: both stored properties are immutable and Sendable.
    private let network: InMemoryNetwork
    public let me: PeerIndex

    init(network: InMemoryNetwork, me: PeerIndex) {
        self.network = network
        self.me = me
    }

    public func start() { network.start(me) }

    /// Queues `envelope` on every link; throws `TransportStopped` when not running.
    public func publish(_ envelope: Envelope) throws {
        guard network.publish(envelope, from: me) else { throw TransportStopped() }
    }

    public func request(_ envelope: Envelope, from donor: PeerIndex) throws {
        guard network.direct(envelope, from: me, to: donor, kind: .request) else { throw TransportStopped() }
    }

    /// `route` is the one from the `.request` event (in memory: the requester's index).
    public func reply(_ envelope: Envelope, to route: ReplyRoute) throws {
        guard route.identity.count == 2 else { throw TransportStopped() }
        let requester = PeerIndex(route.identity[0]) | PeerIndex(route.identity[1]) << 8
        guard network.direct(envelope, from: me, to: requester, kind: .reply) else { throw TransportStopped() }
    }

    public func events(timeout: Duration) -> [TransportEvent] { network.drain(me) }

    public var stats: TransportStats { network.stats(me) }

    public func stop() { network.stop(me) }
}

/// `publish` on a transport that is not started or already stopped.
public struct TransportStopped: Error, Sendable, CustomStringConvertible {
    public init() {}
    public var description: String { "the transport is not running (call start() first; nothing is sent after stop())" }
}
