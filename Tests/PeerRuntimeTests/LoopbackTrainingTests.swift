import DeMo
import Foundation
import Mesh
import MeshZMQ
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

/// Peers on real ZeroMQ sockets on 127.0.0.1, each PeerNode on its own thread in this process.
@Suite(.serialized) struct LoopbackTrainingTests {
    static func topology(peers: Int, ring: Bool, basePort: Int, kind: String = "demo") throws -> Topology {
        try loopbackTopology(peers: peers, ring: ring, kind: kind, basePort: basePort, run: "loopback-\(basePort)", deadline: "adaptive")
    }

    /// A port range unlikely to collide between concurrent runs on one machine.
    /// Below Linux's ephemeral range (32768–60999): a port there can be taken at any moment by
    /// another test's ephemeral bind or outgoing connection ("Address already in use", seen once).
    /// 10000–20120, apart from EndToEndFaultTests' 21000–26340.
    static func basePort() -> Int { 10000 + Int(getpid() % 300) * 10 + Int.random(in: 0..<3) * 3400 }

    /// Runs every peer on its own thread; returns each peer's rounds.jsonl lines (bounded: 60 s).
    static func run(_ topo: Topology, steps: Int, alongside: (@Sendable () -> Void)? = nil) throws -> [[[String: Any]]] {
        let text = Array(String(repeating: "Now is the winter of our discontent made glorious summer. ", count: 80).utf8)
        let corpus = try Corpus(bytes: text, source: "test", contextLength: 32)
        let config = try PeerSetup.modelConfig(topo)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-loop-\(UUID().uuidString)")
        print("LOOPDIR \(dir.path)"); defer { if ProcessInfo.processInfo.environment["KEEP_LOOP"] == nil { try? FileManager.default.removeItem(at: dir) } }
        var opts = PeerSetup.options(topo)
        opts.steps = steps
        opts.startupGrace = 20
        let t0 = DispatchTime.now().uptimeNanoseconds
        let nodes = try topo.peers.map { p -> PeerNode in
            let model = try GPTModel(config: config, maxBatchSize: topo.data.batchSize, seed: topo.seed)
            let engine = try GPTEngine(model: model, sampler: BatchSampler(corpus: corpus, seed: topo.seed, batchSize: 2, seqLen: 32),
                                       peer: Int(p.index), optimizer: PeerSetup.optimizer(topo), schedule: PeerSetup.schedule(topo), clipNorm: 1)
            return try PeerNode(me: Int(p.index), runID: topo.runID, peerIDs: topo.peers.map(\.id), incarnation: 1,
                                transport: try ZMQTransport(topology: topo, me: p.index), engine: engine, options: opts,
                                runDirectory: dir.appendingPathComponent(p.id),
                                clock: { Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 })
        }
        let group = DispatchGroup()
        let errors = ErrorBox()
        for n in nodes {
            let box = NodeBox(n)
            Thread.detachNewThread {
                group.enter()
                defer { group.leave() }
                do { try box.node.run() } catch { errors.add("\(error)") }
            }
        }
        Thread.sleep(forTimeInterval: 0.2)
        alongside?()
        if group.wait(timeout: .now() + 60) == .timedOut {
            for n in nodes { n.stopRequested.set() }
            _ = group.wait(timeout: .now() + 10)
            Issue.record("peers did not finish within 60 s")
        }
        #expect(errors.messages.isEmpty, "\(errors.messages)")
        return try topo.peers.map { p in
            let text = try String(contentsOf: dir.appendingPathComponent(p.id).appendingPathComponent("rounds.jsonl"), encoding: .utf8)
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    static func checkAgreement(_ logs: [[[String: Any]]], steps: Int, peers: Int) {
        for (p, lines) in logs.enumerated() {
            #expect(lines.count == steps, "peer \(p) logged \(lines.count) rounds")
            for key in ["step", "digest", "loss", "contributors", "bytes_out", "bytes_in", "bytes_reference", "bytes_dense"] {
                #expect(lines.first?[key] != nil, "rounds.jsonl lacks \(key)")
            }
        }
        for s in 0..<steps {
            let digests = Set(logs.compactMap { $0.first { ($0["step"] as? Int) == s }?["digest"] as? String })
            #expect(digests.count == 1, "step \(s): \(digests.count) different digests")
            // Every peer applies the same set at every step (round protocol v2: the proposer's
            // COMMIT). A peer late by more than a quarter step lands in the next one instead.
            let sets = Set(logs.map { lines in (lines.first { ($0["step"] as? Int) == s }?["contributors"] as? [String]) ?? [] })
            #expect(sets.count == 1, "step \(s): different contributor sets \(sets)")
        }
        // Every peer takes part: a peer late once skips one computation (it computes on the newest
        // parameters next), so under load a few steps lack it; half is a floor that still fails
        // when a peer is shut out.
        let rounds = logs[0]
        for p in 0..<peers {
            let n = rounds.filter { (($0["contributors"] as? [String]) ?? []).contains("p\(p)") }.count
            #expect(2 * n >= steps, "p\(p) contributed to \(n) of \(steps) steps")
        }
    }

    @Test func threePeersFullMeshAgreeForTwentySteps() throws {
        let topo = try Self.topology(peers: 3, ring: false, basePort: Self.basePort())
        Self.checkAgreement(try Self.run(topo, steps: 20), steps: 20, peers: 3)
    }

    @Test func ringOfFourRelaysAndAgrees() throws {
        let topo = try Self.topology(peers: 4, ring: true, basePort: Self.basePort() + 100)
        Self.checkAgreement(try Self.run(topo, steps: 20), steps: 20, peers: 4)
    }

    @Test func adamwBaselineOverTheMeshAgrees() throws {
        let topo = try Self.topology(peers: 3, ring: false, basePort: Self.basePort() + 200, kind: "adamw")
        let logs = try Self.run(topo, steps: 10)
        Self.checkAgreement(logs, steps: 10, peers: 3)
        // Dense gradients: what goes out is the dense size plus the peer loop's prefix (digest, expected set).
        #expect(logs[0].first?["bytes_out"] as? Int == (logs[0].first?["bytes_dense"] as? Int).map { $0 + CatchUpWire.updatePrefix })
    }
}

extension LoopbackTrainingTests {
    /// Random bytes over plain TCP to every pub (XPUB) and sync (ROUTER) port of a running cluster:
    /// the peers must shrug them off (ZMTP handshakes fail; nothing reaches the training loop).
    @Test func randomBytesAtEveryEndpointDoNotDisturbTraining() throws {
        let topo = try Self.topology(peers: 3, ring: false, basePort: Self.basePort() + 300)
        let ports = topo.peers.flatMap { [Int($0.pub.port), Int($0.sync.port)] }
        let logs = try Self.run(topo, steps: 20) {
            var rng = SeededRNG(seed: 12)
            for round in 0..<30 {
                for port in ports {
                    let junk = (0..<(16 + Int(rng.next() % 2000))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    // Half the time, a plausible ZMTP greeting first, so the garbage reaches further.
                    let greeting: [UInt8] = round % 2 == 0 ? [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0] : []
                    sendRaw(port: port, bytes: greeting + junk)
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        Self.checkAgreement(logs, steps: 20, peers: 3)
    }
}

/// Connects to 127.0.0.1:port, writes `bytes`, closes. Errors are ignored: the point is the peer.
func sendRaw(port: Int, bytes: [UInt8]) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else { return }
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}

final class NodeBox: @unchecked Sendable {
    // Handed to exactly one thread, which is the only one to use it.
    let node: PeerNode
    init(_ n: PeerNode) { node = n }
}

final class ErrorBox: @unchecked Sendable {
    // Guarded by the lock.
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
