import Mesh

/// Tuning of `ZMQTransport`. Defaults suit loopback and LANs; all durations are converted to
/// whole milliseconds for libzmq.
public struct ZMQTransportOptions: Sendable {
    /// Largest frame accepted (`ZMQ_MAXMSGSIZE`, per frame); a bigger one drops the connection.
    public var maxFrameBytes: Int64 = 64 << 20
    /// Largest frame the XPUB (subscriptions) and the ROUTER (catch-up requests and credits) accept.
    /// Those carry a header and a few bytes, so a stranger cannot make either buffer a 64 MiB
    /// frame: libzmq drops the connection at the limit, before the frame is assembled (issue 16).
    public var maxRequestFrameBytes: Int64 = 64 << 10
    /// ZMTP heartbeats: how often to ping, how long to wait for any traffic before declaring the
    /// connection dead, and the TTL asked of the other side. Catch a stopped (SIGSTOP) peer.
    public var zmtpHeartbeatInterval: Duration = .milliseconds(250)
    public var zmtpHeartbeatTimeout: Duration = .seconds(1)
    public var zmtpHeartbeatTTL: Duration = .seconds(2)
    /// Handshake deadline (libzmq's default is 30 s: far too long to notice a hung peer).
    public var handshakeInterval: Duration = .seconds(2)
    /// How long one TCP connect may take before libzmq gives up and retries with its back-off.
    /// Without it (libzmq's 0 = the kernel's SYN retries) a connect begun while the other side was
    /// cut off waits out exponential SYN retries for up to minutes after the link is back.
    public var connectTimeout: Duration = .seconds(2)
    /// Reconnect back-off start and cap (libzmq jitters and doubles between them).
    public var reconnectInterval: Duration = .milliseconds(100)
    public var reconnectIntervalMax: Duration = .seconds(2)
    /// High-water marks, in messages. PUB drops silently past it; sequence numbers show the loss.
    public var sendHighWaterMark: Int32 = 10_000
    public var receiveHighWaterMark: Int32 = 10_000
    /// Longest the mesh thread sleeps in `zmq_poll` when nothing happens (commands wake it at once).
    public var pollInterval: Duration = .milliseconds(100)
    /// Relay memory (see `RelayFilter`).
    public var relayStepWindow: UInt64 = 4096
    /// Bind here instead of the topology's endpoints (tests: `tcp://127.0.0.1:*`).
    public var listenOverride: ListenEndpoints?
    /// Connect the SUBs to the topology's neighbour endpoints during `start()`. Tests with ephemeral
    /// ports turn it off and call `connect(neighbor:pub:)` once the ports are known.
    public var connectOnStart = true

    public init() {}

    /// Options for a run: the ZMTP connection timeouts follow the topology's failure detector,
    /// never shorter than the defaults. A connection is only silent for as long as a message
    /// takes to cross it, and on a slow link that is long: 3 × 482 kB of AdamW gradients on a
    /// 10 Mbit/s uplink take 1.2 s, so a 1 s timeout cut every connection mid-message and no
    /// step ever completed (measured with scripts/weaklinks.sh). A connection silent for
    /// `suspect_after` is recycled; `dead_after` is the TTL asked of the other side.
    public init(heartbeat: HeartbeatSpec) {
        zmtpHeartbeatTimeout = max(zmtpHeartbeatTimeout, heartbeat.suspectAfter)
        zmtpHeartbeatTTL = max(zmtpHeartbeatTTL, heartbeat.deadAfter)
    }
}

/// Where a peer listens.
public struct ListenEndpoints: Sendable, Equatable {
    public var pub: String
    public var sync: String

    public init(pub: String, sync: String) {
        self.pub = pub
        self.sync = sync
    }

    /// Ephemeral loopback ports, for tests.
    public static let loopbackEphemeral = ListenEndpoints(pub: "tcp://127.0.0.1:*", sync: "tcp://127.0.0.1:*")
}

/// CURVE material for one peer: its own keypair and every peer's public key.
public struct CurveSetup: Sendable, Equatable {
    public var ownKeys: CurveKeyPair
    /// Public key (Z85) of every peer, self included.
    public var publicKeys: [PeerIndex: String]
    /// Signs what we originate and checks every broadcast's origin before it is delivered or
    /// relayed (issue 16 item 2). nil: origins are bound only to the link they arrive on.
    public var signing: Ed25519Authenticator?

    public init(ownKeys: CurveKeyPair, publicKeys: [PeerIndex: String], signing: Ed25519Authenticator? = nil) {
        self.ownKeys = ownKeys
        self.publicKeys = publicKeys
        self.signing = signing
    }

    public static func == (a: CurveSetup, b: CurveSetup) -> Bool {
        a.ownKeys == b.ownKeys && a.publicKeys == b.publicKeys && (a.signing == nil) == (b.signing == nil)
    }

    /// Reads `me`'s keypair and all public keys from the topology's key folder (and inline
    /// `public_key:` entries).
    public static func load(topology: Topology, me: PeerIndex) throws(KeyStoreError) -> CurveSetup {
        let store = KeyStore(directory: topology.security.keys)
        return CurveSetup(ownKeys: try store.keyPair(peer: topology.peers[Int(me)].id),
                          publicKeys: try store.publicKeys(of: topology),
                          signing: try store.authenticator(of: topology, me: me))
    }
}

extension Duration {
    /// Milliseconds clamped to libzmq's `int` options.
    var zmqMilliseconds: Int32 { Int32(clamping: milliseconds) }
}
