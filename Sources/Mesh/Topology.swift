/// Index of a peer in `Topology.peers` (the order of the file). Every peer of a run reads the
/// same file, so an index names the same peer everywhere; it is what travels on the wire.
public typealias PeerIndex = UInt16

/// A whole run as described by one topology file (DESIGN §8). Values only; no I/O.
///
/// Made by `TopologyParser`; every field has been validated (ranges, references, uniqueness).
public struct Topology: Sendable, Equatable {
    /// Where the topology was read from (as given by the user), for error messages and logs.
    public var file: String
    /// Run name; part of `runID`, so peers of differently-named runs refuse each other.
    public var run: String
    /// Seed from which every peer derives its data order and initialisation.
    public var seed: UInt64
    public var model: ModelSpec
    public var data: DataSpec
    public var optimizer: OptimizerSpec
    /// Number of training steps in the run.
    public var steps: Int
    public var round: RoundSpec
    public var heartbeat: HeartbeatSpec
    public var checkpoint: CheckpointSpec
    public var security: SecuritySpec
    /// Periodic validation during training (none unless `validation.every` is given).
    public var validation: ValidationSpec = ValidationSpec()
    /// What a peer does when it hears nobody at start.
    public var startup: StartupSpec = StartupSpec()
    /// Peers in file order; `peers[i].index == i`.
    public var peers: [PeerSpec]
}

/// `startup: { give_up_after: 10m }`: a peer that has heard none of the others by the end of the
/// startup grace does not train alone (unless the topology has one peer or `murmur peer --alone`);
/// it keeps waiting, says whom it waits for, and exits non-zero after `give_up_after`.
public struct StartupSpec: Sendable, Equatable {
    public var giveUpAfter: Duration
    public init(giveUpAfter: Duration = .seconds(600)) { self.giveUpAfter = giveUpAfter }
}

/// `validation: { every: N, batches: B }`: each peer measures the validation loss on B fixed
/// batches after every N applied steps and logs it (a `validation` event in heartbeats.jsonl).
/// It changes no parameter, so it is not part of the run id.
public struct ValidationSpec: Sendable, Equatable {
    /// Steps between measurements; nil: only at the end of the run.
    public var every: Int?
    /// Validation batches per measurement (the same windows every time, on every peer).
    public var batches: Int

    public init(every: Int? = nil, batches: Int = 20) {
        self.every = every
        self.batches = batches
    }
}

/// The model: a named preset (resolved by TinyGPT) or explicit dimensions.
public enum ModelSpec: Sendable, Equatable {
    case preset(String)
    case explicit(nLayer: Int, nHead: Int, nEmbd: Int, blockSize: Int)
}

/// Training data for every peer.
public struct DataSpec: Sendable, Equatable {
    /// Corpus name (e.g. `shakespeare`).
    public var corpus: String
    /// Sequences per batch per peer.
    public var batchSize: Int
    /// Optional path to the corpus text; when absent the corpus is found by name.
    public var file: String?
}

public enum OptimizerKind: String, Sendable, Equatable, CaseIterable {
    case demo, adamw
}

/// How DeMo encodes the values of the transmitted coefficients (DESIGN §5).
public enum ValueFormat: String, Sendable, Equatable, CaseIterable {
    case f32, bf16, int8, sign
    case twoBit = "2bit"
}

/// Whether DeMo compresses in the DCT domain of each chunk (`dct`, the paper) or the raw values
/// (`none`, SparseLoCo/Templar style: top-k of the chunk's own entries).
public enum TransformKind: String, Sendable, Equatable, CaseIterable {
    case dct, none
}

/// The local optimizer of a local-steps run's inner phase.
public enum InnerOptimizerKind: String, Sendable, Equatable, CaseIterable {
    case adamw
}

/// Local steps over compressed sync (`optimizer: { kind: demo, local_steps: H, … }`, DESIGN §5):
/// H inner AdamW steps per peer, then the compressed pseudo-gradient is the round's contribution.
public struct LocalStepsSpec: Sendable, Equatable {
    /// Inner steps per outer step (round), H >= 2.
    public var steps: Int
    public var inner: InnerOptimizerKind = .adamw
    /// Peak learning rate of the inner AdamW (warm-up and cosine over all inner steps).
    public var innerLR: Double
    /// Outer learning rate: the shared parameters move by `outer_lr ×` the mean pseudo-gradient.
    public var outerLR: Double = 1
    /// Outer momentum μ in [0, 1) (0: none).
    public var outerMomentum: Double = 0
    /// Nesterov (true) or plain heavy-ball (false) outer momentum; unused when μ = 0.
    public var outerNesterov: Bool = true
}

public struct OptimizerSpec: Sendable, Equatable {
    public var kind: OptimizerKind
    /// Learning rate.
    public var lr: Double
    /// Coefficients kept per chunk (DeMo).
    public var topk: Int
    /// Chunk edge length for the DCT (DeMo).
    public var chunk: Int
    /// Momentum decay β (DeMo), in (0, 1].
    public var decay: Double
    public var values: ValueFormat
    /// Decoupled weight decay.
    public var weightDecay: Double
    /// Optional linear warm-up, in steps.
    public var warmup: Int?
    /// How DeMo combines the peers' coefficients (`optimizer: { aggregate: … }`).
    public var aggregate: AggregateRule = .clipped
    /// DeMo's chunk transform (`transform: dct | none`).
    public var transform: TransformKind = .dct
    /// Local steps (nil: H = 1, today's DeMo, one DeMo step per round).
    public var localSteps: LocalStepsSpec?
}

/// DeMo's aggregation rule (DESIGN, "Robust aggregation"): `clipped` (default) scales each
/// contributor down to the median norm of the step's contributors per tensor, then takes the mean;
/// `mean` is the reference's plain per-coefficient mean.
public enum AggregateRule: String, Sendable, Equatable, CaseIterable {
    case mean, clipped
}

/// The step deadline: fixed, or adaptive from past arrival times (capped by `maxDeadline`).
public enum DeadlineSpec: Sendable, Equatable {
    case fixed(Duration)
    case adaptive
}

public struct RoundSpec: Sendable, Equatable {
    public var deadline: DeadlineSpec
    /// Upper bound on any step's wait for contributions.
    public var maxDeadline: Duration
    /// Pipeline depth (round protocol v2): a peer computes step s+1+overlap's contribution while
    /// the steps before travel. 0: off (`overlap: false`); `overlap: true` means 1.
    public var overlap: Int = 0
}

public struct HeartbeatSpec: Sendable, Equatable {
    /// Time between two heartbeats sent by a peer.
    public var interval: Duration
    /// Silence after which a peer is suspected.
    public var suspectAfter: Duration
    /// Silence after which a peer is declared dead.
    public var deadAfter: Duration
    /// Whether the failure detector may stretch the timeouts from observed jitter.
    public var adaptive: Bool
}

public struct CheckpointSpec: Sendable, Equatable {
    /// Checkpoint every this many steps.
    public var every: Int
    /// Keep the newest this many checkpoints.
    public var keep: Int
    /// Folder of the checkpoints (relative to the working directory).
    public var dir: String
}

public struct SecuritySpec: Sendable, Equatable {
    /// CURVE encryption + ZAP authentication on every socket.
    public var curve: Bool
    /// Folder holding `<peer>.key` (secret, mode 0600) and `<peer>.pub`.
    public var keys: String
    /// `plaintext: allow`: the user accepts a mesh without CURVE on addresses other machines can
    /// reach. Without it such a topology is refused (plaintext is for loopback and the lab's
    /// network namespaces).
    public var plaintextAllowed: Bool = false

    public init(curve: Bool, keys: String, plaintextAllowed: Bool = false) {
        self.curve = curve
        self.keys = keys
        self.plaintextAllowed = plaintextAllowed
    }
}

/// A `tcp://host:port` endpoint. Only TCP: other transports make no sense between machines.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `tcp://host:port` (host may be a name, IPv4, or `[IPv6]`); nil when malformed.
    public init?(parsing text: String) {
        guard text.hasPrefix("tcp://") else { return nil }
        let rest = text.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        var host = String(rest[..<colon])
        let portText = rest[rest.index(after: colon)...]
        guard let port = UInt16(portText), port > 0 else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let allowed = host.unicodeScalars.allSatisfy {
            ($0.isASCII && (($0.properties.isAlphabetic) || ("0"..."9").contains($0))) || "-.:_".unicodeScalars.contains($0)
        }
        guard !host.isEmpty, allowed, host != "*" else { return nil }
        self.host = host
        self.port = port
    }

    /// The endpoint as ZeroMQ expects it.
    public var description: String {
        host.contains(":") ? "tcp://[\(host)]:\(port)" : "tcp://\(host):\(port)"
    }

    /// True for 127.0.0.0/8, `localhost` and `::1`.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// One peer of the run.
public struct PeerSpec: Sendable, Equatable {
    /// Human id, e.g. `p0`; used for key file names and logs.
    public var id: String
    /// Position in the file; what travels on the wire.
    public var index: PeerIndex
    /// Where this peer's XPUB is bound (UPDATEs, heartbeats, relays).
    public var pub: Endpoint
    /// Where this peer's ROUTER is bound (catch-up).
    public var sync: Endpoint
    /// Ids this peer subscribes to; nil means everyone else.
    public var neighbors: [String]?
    /// Z85 CURVE public key (40 characters), when written in the file instead of `keys/<id>.pub`.
    public var publicKey: String?
    /// Network namespace (`ip netns`) this peer runs in on this machine: a separate host with
    /// its own address, for lab runs over shaped or cut links (scripts/netlab.sh). `murmur up`
    /// starts such a peer as `ip netns exec NAME murmur peer …` and counts it as local.
    public var netns: String? = nil
    /// Host (an IP address or `0.0.0.0`) to bind `pub` and `sync` on instead of theirs, same
    /// ports: for a peer reached through an address that is not its own (NAT, a port forward,
    /// a relay that delays traffic). nil: bind the advertised endpoints.
    public var listen: String? = nil
    /// Ed25519 public key (64 hex characters) that signs this peer's broadcasts, when written in
    /// the file instead of `keys/<id>.sign.pub`.
    public var signKey: String? = nil
}
