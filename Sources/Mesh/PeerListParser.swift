import Yams

/// Parses and cross-checks `peers:`: unique ids and endpoints, neighbours that exist, no self-loops.
enum PeerListParser {
    static func parse(_ top: YAMLFields, file: String) throws(TopologyError) -> [PeerSpec] {
        let nodes = try top.sequence("peers")
        guard !nodes.isEmpty else { throw top.error("peers", .wrongShape(expected: "a list of at least one peer")) }
        guard nodes.count <= Int(PeerIndex.max) else {
            throw top.error("peers", .inconsistent("at most \(PeerIndex.max) peers are supported"))
        }
        var peers: [PeerSpec] = []
        var neighborNodes: [[Node]?] = []
        var idLines: [String: Int?] = [:]
        var endpointLines: [Endpoint: Int?] = [:]
        for (i, node) in nodes.enumerated() {
            let p = try YAMLFields(node, file: file, path: "peers[\(i)]", allowed: TopologyParser.peerKeys)
            let id = try p.string("id").trimmingWhitespace()
            guard id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw p.error("id", .badValue(id, allowed: ["letters, digits, '-' and '_' (it names key files)"]))
            }
            if let first = idLines[id] { throw p.error("id", .duplicate(id, firstLine: first)) }
            idLines[id] = p.line
            let pub = try p.endpoint("pub")
            let sync = try p.endpoint("sync")
            for (key, endpoint) in [("pub", pub), ("sync", sync)] {
                if let first = endpointLines[endpoint] { throw p.error(key, .duplicate(endpoint.description, firstLine: first)) }
                endpointLines[endpoint] = p.line
            }
            var publicKey = try p.optionalString("public_key")?.trimmingWhitespace()
            if let key = publicKey, key.utf8.count != 40 {
                throw p.error("public_key", .badValue(key, allowed: ["a 40-character Z85 CURVE public key (see `murmur keys`)"]))
            }
            if publicKey?.isEmpty == true { publicKey = nil }
            var signKey = try p.optionalString("sign_key")?.trimmingWhitespace().lowercased()
            if let key = signKey, !key.isEmpty, key.utf8.count != 64 || !key.allSatisfy(\.isHexDigit) {
                throw p.error("sign_key", .badValue(key, allowed: ["64 hex characters: an Ed25519 public key, the content of <id>.sign.pub (see `murmur keys`)"]))
            }
            if signKey?.isEmpty == true { signKey = nil }
            let netns = try p.optionalString("netns")?.trimmingWhitespace()
            if let name = netns, name.isEmpty || name.count > 64
                || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                throw p.error("netns", .badValue(name, allowed: ["a network namespace name: letters, digits, '-', '_' and '.' (see `ip netns list`)"]))
            }
            neighborNodes.append(p.optionalNode("neighbors") == nil ? nil : try p.sequence("neighbors"))
            let listen = try p.optionalString("listen")?.trimmingWhitespace()
            if let host = listen, Endpoint(parsing: "tcp://\(host):1") == nil {
                throw p.error("listen", .badValue(host, allowed: ["a host to bind on, e.g. 0.0.0.0 or 10.0.0.5 (the ports stay those of pub and sync)"]))
            }
            peers.append(PeerSpec(id: id, index: PeerIndex(i), pub: pub, sync: sync, neighbors: nil, publicKey: publicKey,
                                  netns: netns, listen: listen, signKey: signKey))
        }
        let known = peers.map(\.id)
        for i in peers.indices {
            guard let list = neighborNodes[i] else { continue }
            let field = "peers[\(i)].neighbors"
            var seen: Set<String> = []
            var ids: [String] = []
            for entry in list {
                let line = entry.mark?.line
                guard let id = entry.scalar?.string.trimmingWhitespace() else {
                    throw TopologyError(file: file, line: line, field: field, problem: .wrongShape(expected: "a list of peer ids"))
                }
                guard known.contains(id) else {
                    throw TopologyError(file: file, line: line, field: field, problem: .unknownPeer(id, known: known))
                }
                guard id != peers[i].id else {
                    throw TopologyError(file: file, line: line, field: field, problem: .selfNeighbor(id))
                }
                guard seen.insert(id).inserted else {
                    throw TopologyError(file: file, line: line, field: field, problem: .duplicate(id, firstLine: nil))
                }
                ids.append(id)
            }
            if ids.isEmpty && peers.count > 1 {
                throw TopologyError(file: file, line: nodes[i].mark?.line, field: field,
                                    problem: .inconsistent("a peer with no neighbours hears nobody; list at least one or remove the key"))
            }
            peers[i].neighbors = ids
        }
        return peers
    }

    /// Every peer must hear every other, directly or through relays.
    static func checkReachable(_ topology: Topology, line: Int?) throws(TopologyError) {
        for origin in topology.peers {
            let missed = topology.unreachable(from: origin.index)
            if let first = missed.first {
                throw TopologyError(file: topology.file, line: line, field: "peers",
                                    problem: .inconsistent("peer '\(topology.peers[Int(first)].id)' can never hear '\(origin.id)', even through relays; add neighbours"))
            }
        }
    }
}
