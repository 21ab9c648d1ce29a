/// Something that happened on the mesh, as seen by one peer.
public enum TransportEvent: Sendable, Equatable {
    /// A valid message arrived through the link to neighbour `from` (which relayed it when
    /// `envelope.header.origin != from`). Already deduplicated: each message is delivered once.
    case message(Envelope, from: PeerIndex)
    /// A directly linked peer (we subscribe to it, or it subscribes to us) became reachable: its
    /// presence subscription reached our XPUB, or its first message arrived on our SUB link to it.
    /// Emitted once per transition, so a reconnect produces a new event.
    case neighborConnected(PeerIndex)
    /// A directly linked peer's presence subscription was withdrawn: its connection to our XPUB
    /// died (process gone, or ZMTP heartbeats timed out). Liveness proper is the membership
    /// layer's job (heartbeat messages); this is the transport's early hint.
    case neighborDisconnected(PeerIndex)
    /// A point-to-point catch-up message (request or credit) reached our sync endpoint; answer it
    /// with `Transport.reply(_:to:)` and `route`. The requester is `envelope.header.origin`.
    case request(Envelope, route: ReplyRoute)
}

/// Opaque return address of a catch-up requester (its ROUTER routing id over ZeroMQ).
public struct ReplyRoute: Sendable, Hashable {
    public var identity: [UInt8]
    public init(identity: [UInt8]) { self.identity = identity }
}

/// Counters a transport keeps for logs (`rounds.jsonl`) and tests.
public struct TransportStats: Sendable, Equatable {
    public var messagesIn = 0
    public var messagesOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    /// Frames refused by the wire decoder (dropped, never delivered).
    public var invalidFrames = 0
    /// Broadcasts dropped because their origin's signature was missing or wrong (a key holder
    /// speaking for another peer, or a tampered relay). Never delivered, never relayed.
    public var unauthenticated = 0
    /// Which origin the last such message claimed, for the human log.
    public var lastUnauthenticated: String?
    /// Messages dropped because the queue to the caller was full (`MeshShared.maxQueuedBytes`).
    public var queueDropped = 0
    /// Copies dropped by the relay filter.
    public var duplicates = 0
    /// Messages republished for other peers.
    public var relayed = 0
    /// Links revived by hand after libzmq gave up on them (ZAP refusal, oversized frame).
    public var linkRevivals = 0
    /// Messages missing according to per-origin sequence numbers.
    public var sequenceGaps: UInt64 = 0
    /// The last decode error, for the human log.
    public var lastInvalid: WireError?
    /// Sends/connects that failed (bad endpoint, unknown reply route, …); the transport goes on.
    public var failedOperations = 0
    /// The last such failure, as text for the human log.
    public var lastFailure: String?

    public init() {}
}

/// The I/O boundary between a peer's logic and the network (DESIGN §3–§4).
///
/// Contract:
/// - `start()` once, before anything else; `stop()` once at the end (idempotent). After `stop()`,
///   `publish` throws or drops and `events` returns nothing.
/// - `publish` never blocks on the network: it queues the envelope for every subscriber. Delivery
///   is best effort (pub/sub may drop); sequence numbers reveal losses.
/// - `events(timeout:)` returns what arrived since the last call, oldest first, waiting at most
///   `timeout` for the first one (implementations driven by a manual clock do not wait). Events
///   accumulate until drained: call it regularly (between steps at least).
/// - Relaying for partial meshes and deduplication happen inside the transport.
/// - Catch-up traffic is point-to-point (`request`/`reply`, DEALER → ROUTER over ZeroMQ): never
///   relayed, never deduplicated, delivered in order per pair (TCP), and not subject to PUB drops.
/// - Implementations are safe to call from any one thread at a time per method; their own
///   network threads are internal.
public protocol Transport: AnyObject, Sendable {
    /// This peer.
    var me: PeerIndex { get }
    /// Opens sockets / joins the network.
    func start() throws
    /// Queues `envelope` for broadcast to every subscriber.
    func publish(_ envelope: Envelope) throws
    /// Sends a catch-up message (kind `catchUpRequest` or `catchUpCredit`) point-to-point to
    /// `donor`'s sync endpoint. Its replies arrive as `.message(_, from: donor)`.
    func request(_ envelope: Envelope, from donor: PeerIndex) throws
    /// Answers a `.request` event (kinds `catchUpReplay`, `catchUpSnapshot`, `catchUpEnd`).
    func reply(_ envelope: Envelope, to route: ReplyRoute) throws
    /// Drains received events, waiting up to `timeout` for the first one.
    func events(timeout: Duration) -> [TransportEvent]
    /// Counters so far.
    var stats: TransportStats { get }
    /// Closes everything; pending outgoing messages may be dropped.
    func stop()
    /// Cuts a waiting `events(timeout:)` short (from any thread): the peer's worker finished a job.
    func wake()
}

extension Transport {
    /// Transports driven by a manual clock never wait, so there is nothing to cut short.
    public func wake() {}
}
