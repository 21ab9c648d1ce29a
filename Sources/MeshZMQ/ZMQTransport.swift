import Foundation
import Mesh

/// The ZeroMQ mesh (DESIGN §3–§4) behind the `Transport` contract.
///
/// One Foundation `Thread` (the mesh thread) owns every socket: an XPUB bound at the peer's `pub`
/// endpoint (XPUB_VERBOSE, to see who subscribed), one SUB per neighbour, a ROUTER at `sync`, and
/// with CURVE the ZAP handler. It runs a `zmq_poll` loop, so ZAP, subscriptions and relaying go on
/// while the trainer thread computes. Callers talk to it only through a locked queue and a wake-up
/// pipe (`MeshShared`); every method here is safe from any thread.
///
/// Invalid frames are counted (`stats.invalidFrames`) and dropped. Partial meshes are relayed
/// through `Relay`: each message is delivered once and forwarded at most once.
///
/// Slow joiners: PUB sends to nobody until a subscription has arrived, so a peer should publish
/// its first UPDATE only after `.neighborConnected` for the peers it expects (their presence
/// subscription reached our XPUB). Losses after that show up as sequence gaps.
public final class ZMQTransport: Transport, @unchecked Sendable {
    // @unchecked Sendable: immutable lets plus `started`/`finished`, which are only touched under
    // `lifecycle` (an NSLock). Sockets never leave the mesh thread. The thread does not capture
    // `self` (only `MeshShared`), so dropping the last reference stops it through `deinit`.
    public let me: PeerIndex
    public let topology: Topology
    private let options: ZMQTransportOptions
    private let curve: CurveSetup?
    private let context: ZMQContext
    private let shared: MeshShared
    private let lifecycle = NSLock()
    private var started = false
    private var finished: DispatchSemaphore?

    /// - Parameters:
    ///   - topology: the run; `me` must index into `topology.peers`.
    ///   - curve: keys when `topology.security.curve` is on (see `CurveSetup.load`); nil = plaintext.
    public init(topology: Topology, me: PeerIndex, curve: CurveSetup? = nil,
                options: ZMQTransportOptions = ZMQTransportOptions()) throws(ZMQError) {
        precondition(Int(me) < topology.peers.count, "peer index \(me) outside the topology")
        self.topology = topology
        self.me = me
        self.curve = curve
        self.options = options
        self.context = try ZMQContext()
        self.shared = try MeshShared()
    }

    /// Starts the mesh thread and returns once its sockets are bound (and, with
    /// `connectOnStart`, connected). Throws the bind/connect error, e.g. a port in use.
    public func start() throws {
        let ready = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        // The lock is not held while waiting below: the mesh thread takes it to report back.
        let first = lifecycle.withLock { () -> Bool in
            guard !started else { return false }
            started = true
            finished = done
            return true
        }
        guard first else { return }
        let (topology, me, curve, options, context, shared) = (topology, me, curve, options, context, shared)
        let thread = Thread {
            defer { done.signal() }
            let loop: MeshLoop
            do throws(ZMQError) {
                loop = try MeshLoop(context: context, topology: topology, me: me, curve: curve, options: options, shared: shared)
                if options.connectOnStart { try loop.connectAllFromTopology() }
            } catch {
                shared.failure = error
                ready.signal()
                return
            }
            shared.bound = ListenEndpoints(pub: loop.boundPub, sync: loop.boundSync)
            ready.signal()
            do throws(ZMQError) { try loop.run() } catch { shared.failure = error }
            loop.close()
        }
        thread.name = "murmur-mesh-\(topology.peers[Int(me)].id)"
        thread.start()
        ready.wait()
        if let failure = lastError {
            // The thread has ended (or is ending): consume its exit signal here, so stop() does
            // not wait for it a second time.
            done.wait()
            lifecycle.withLock { finished = nil }
            throw failure
        }
    }


    /// Endpoints actually bound (resolved wildcard ports); nil before `start()`.
    public var boundEndpoints: ListenEndpoints? { shared.bound }

    /// The error that stopped the mesh thread, if any (e.g. a socket became unusable).
    public var lastError: ZMQError? { shared.failure }

    /// (Re)connects the SUB for `neighbor` to `pub` (a `tcp://` endpoint). Asynchronous.
    public func connect(neighbor: PeerIndex, pub: String) {
        _ = shared.enqueue(.connect(neighbor, pub))
    }

    /// Uses `sync` (a `tcp://` endpoint) instead of the topology's for catch-up requests to `peer`.
    /// Takes effect for DEALERs made afterwards.
    public func setSyncEndpoint(of peer: PeerIndex, _ sync: String) {
        _ = shared.enqueue(.setSyncEndpoint(peer, sync))
    }

    /// Sends a catch-up request or credit to `donor`'s ROUTER over a DEALER (made on first use,
    /// CURVE client when security is on). Replies arrive as `.message(_, from: donor)`.
    public func request(_ envelope: Envelope, from donor: PeerIndex) throws {
        guard shared.enqueue(.request(envelope, donor)) else { throw TransportStopped() }
    }

    /// Answers a `.request` event through our ROUTER. An unknown or vanished route is counted in
    /// `stats.failedOperations`, not thrown (the send happens later, on the mesh thread).
    public func reply(_ envelope: Envelope, to route: ReplyRoute) throws {
        guard shared.enqueue(.reply(envelope, route)) else { throw TransportStopped() }
    }

    /// Queues `envelope` for broadcast on our XPUB. Never blocks; throws `TransportStopped` after stop.
    /// Throws `MessageTooLarge` for a body above `options.maxFrameBytes` (peers would drop the link).
    public func publish(_ envelope: Envelope) throws {
        guard Int64(envelope.body.count) <= options.maxFrameBytes else {
            throw MessageTooLarge(bytes: envelope.body.count, limit: options.maxFrameBytes)
        }
        guard shared.enqueue(.publish(envelope)) else { throw TransportStopped() }
    }

    public func events(timeout: Duration) -> [TransportEvent] { shared.drain(timeout: timeout) }

    public func wake() { shared.wakeCaller() }

    public var stats: TransportStats { shared.stats }

    /// Stops the mesh thread, which closes every socket, then terminates the context. Idempotent.
    public func stop() {
        shared.requestStop()
        let done = lifecycle.withLock { () -> DispatchSemaphore? in
            defer { finished = nil }
            return finished
        }
        done?.wait()
        context.terminate()
    }

    deinit { stop() }
}

extension ZMQTransport {
    /// The transport `murmur peer` runs: peer `id` of `topology`, with CURVE keys loaded from the
    /// topology's key folder when `security.curve` is on. Call `start()` next.
    public static func forPeer(id: String, of topology: Topology,
                               options: ZMQTransportOptions = ZMQTransportOptions()) throws -> ZMQTransport {
        guard let me = topology.index(of: id) else {
            throw TopologyError(file: topology.file, line: nil, field: "peers",
                                problem: .unknownPeer(id, known: topology.peers.map(\.id)))
        }
        let curve = topology.security.curve ? try CurveSetup.load(topology: topology, me: me) : nil
        return try ZMQTransport(topology: topology, me: me, curve: curve, options: options)
    }
}

/// A message body larger than the frame limit (`ZMQTransportOptions.maxFrameBytes`): receivers
/// would close the connection on it. Split it (catch-up snapshots go in chunks) or raise the limit
/// on every peer.
public struct MessageTooLarge: Error, Sendable, Equatable, CustomStringConvertible {
    public var bytes: Int
    public var limit: Int64
    public var description: String {
        "message body of \(bytes) bytes exceeds the \(limit)-byte frame limit; send it in chunks or raise maxFrameBytes on every peer"
    }
}
