import Mesh

extension FuzzHarness {
    /// File name the topology harness passes to the parser (appears in errors only).
    public static let topologyFile = "fuzz.yaml"

    /// Fuzzes `TopologyParser.parse(yaml:file:)` on the input read as UTF-8 (invalid sequences
    /// become U+FFFD, as a file read would refuse them anyway).
    ///
    /// Invariants on acceptance: at least one peer; `peers[i].index == i`; ids non-empty, unique and
    /// file-name safe; every `pub`/`sync` endpoint distinct with a non-zero port; neighbour lists
    /// name existing peers, never the peer itself, without repeats; every peer reaches every other
    /// (directly or through relays); top-k fits a chunk; parsing is deterministic (same topology,
    /// same run id).
    @discardableResult
    public static func topology(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        let t = "topology"
        let text = String(decoding: bytes, as: UTF8.self)
        let topo: Topology
        do { topo = try TopologyParser.parse(yaml: text, file: topologyFile) } catch {
            return .rejected(error.description)
        }
        try require(topo.file == topologyFile, t, "file name not kept")
        try require(!topo.peers.isEmpty, t, "accepted a topology without peers")
        var ids = Set<String>()
        var endpoints = Set<Endpoint>()
        for (i, p) in topo.peers.enumerated() {
            try require(Int(p.index) == i, t, "peer \(p.id) has index \(p.index) at position \(i)")
            try require(!p.id.isEmpty, t, "peer \(i) has an empty id")
            try require(p.id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }, t,
                        "peer id \(p.id.debugDescription) is not file-name safe")
            try require(ids.insert(p.id).inserted, t, "duplicate peer id \(p.id)")
            for e in [p.pub, p.sync] {
                try require(e.port > 0, t, "endpoint \(e) has port 0")
                try require(endpoints.insert(e).inserted, t, "endpoint \(e) used twice")
            }
        }
        for p in topo.peers {
            guard let list = p.neighbors else { continue }
            try require(Set(list).count == list.count, t, "peer \(p.id) lists a neighbour twice")
            try require(!list.contains(p.id), t, "peer \(p.id) is its own neighbour")
            try require(list.allSatisfy(ids.contains), t, "peer \(p.id) lists an unknown neighbour")
            try require(!list.isEmpty || topo.peers.count == 1, t, "peer \(p.id) has no neighbours")
            for n in topo.neighbors(of: p.index) {
                try require(Int(n) < topo.peers.count && n != p.index, t, "neighbors(of: \(p.index)) returned \(n)")
            }
        }
        for p in topo.peers {
            try require(topo.unreachable(from: p.index).isEmpty, t, "peer \(p.id) cannot reach everyone")
        }
        let o = topo.optimizer
        try require(o.lr > 0 && o.topk >= 1 && o.chunk >= 1 && o.topk <= o.chunk * o.chunk, t,
                    "optimizer lr \(o.lr) topk \(o.topk) chunk \(o.chunk) out of bounds")
        try require(topo.steps >= 1 && topo.data.batchSize >= 1, t, "steps or batch size below 1")
        let h = topo.heartbeat
        try require(h.interval < h.suspectAfter && h.suspectAfter < h.deadAfter, t, "heartbeat timeouts not ordered")
        do {
            let again = try TopologyParser.parse(yaml: text, file: topologyFile)
            try require(again == topo && again.runID == topo.runID, t, "parsing the same text twice differs")
        } catch let finding as FuzzFinding {
            throw finding
        } catch {
            throw FuzzFinding(t, "second parse of the same text failed: \(error)")
        }
        return .accepted
    }
}
