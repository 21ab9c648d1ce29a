import CZMQ
import Mesh

/// Catch-up traffic (DESIGN §7): requests/credits arrive on our ROUTER, we ask donors through one
/// DEALER each. Point-to-point, never relayed. Runs on the mesh thread like the rest of MeshLoop.
extension MeshLoop {
    func send(_ envelope: Envelope, toDonor donor: PeerIndex) throws(ZMQError) {
        guard Int(donor) < topology.peers.count, donor != me else {
            throw ZMQError(operation: "catch-up request to peer index \(donor)", code: EINVAL)
        }
        let socket: ZMQSocket
        if let existing = dealers.first(where: { $0.peer == donor }) {
            socket = existing.socket
        } else {
            socket = try ZMQSocket(context, type: ZMQ_DEALER)
            try Self.configure(socket, options)
            if let curve {
                try socket.setCurveClientKeys(curve.ownKeys)
                guard let key = curve.publicKeys[donor] else {
                    throw ZMQError(operation: "catch-up from \(topology.peers[Int(donor)].id): no public key", code: EINVAL)
                }
                try socket.setCurveServerKey(key)
            }
            try socket.connect(syncOverrides[donor] ?? topology.peers[Int(donor)].sync.description)
            dealers.append((donor, socket))
        }
        // A DEALER queues while connecting; blocking is impossible with DONTWAIT (false = HWM).
        if try socket.send(envelope.frames) {
            stats.messagesOut += 1
            stats.bytesOut += MessageHeader.size + envelope.body.count
        }
    }

    func readDealer(from donor: PeerIndex, _ socket: ZMQSocket) throws(ZMQError) {
        for _ in 0..<1000 {
            guard let frames = try socket.receive(maxFrames: 4) else { return }
            guard let envelope = decode(frames) else { continue }
            guard !envelope.header.kind.isBroadcast, envelope.header.kind != .catchUpRequest,
                  envelope.header.kind != .catchUpCredit else {
                stats.invalidFrames += 1
                continue
            }
            stats.messagesIn += 1
            pending.append(.message(envelope, from: donor))
        }
    }

    func broadcast(_ envelope: Envelope) throws(ZMQError) {
        var envelope = envelope
        // We sign what we author; signing costs ~50 µs plus hashing the body, on this thread.
        if let signing = curve?.signing, envelope.header.kind.isSigned, envelope.header.origin == me {
            envelope.signature = signing.sign(envelope)
        }
        if try xpub.send(envelope.frames) {
            stats.messagesOut += 1
            stats.bytesOut += MessageHeader.size + envelope.body.count
        }
    }

    /// Catch-up requests and credits: `[routing id][topic][header][body]`.
    func readRouter() throws(ZMQError) {
        for _ in 0..<1000 {
            guard let (frames, user) = try router.receiveWithUser(maxFrames: 5) else { return }
            guard frames.count >= 2, let envelope = decode(frames.dropFirst()) else {
                if frames.count < 2 { stats.invalidFrames += 1 }
                continue
            }
            guard envelope.header.kind == .catchUpRequest || envelope.header.kind == .catchUpCredit else {
                stats.invalidFrames += 1
                continue
            }
            // With CURVE the ZAP handler named the key's peer: a request or credit must be its own,
            // so nobody asks (or grants credit) in another peer's name.
            if curve != nil, user != topology.peers[Int(envelope.header.origin)].id {
                stats.unauthenticated += 1
                stats.lastUnauthenticated = "\(envelope.header.kind) claiming origin \(topology.peers[Int(envelope.header.origin)].id) from key of \(user ?? "nobody")"
                continue
            }
            stats.messagesIn += 1
            pending.append(.request(envelope, route: ReplyRoute(identity: frames[0])))
        }
    }

}
