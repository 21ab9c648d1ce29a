import Foundation
import Testing
@testable import Mesh

@Suite struct TopologyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func shipped(_ name: String) throws -> Topology {
        try TopologyParser.load(path: root.appendingPathComponent("topologies/\(name)").path)
    }

    @Test(arguments: ["local2.yaml", "local4.yaml", "ring8.yaml", "multihost.example.yaml"])
    func shippedFilesParse(name: String) throws {
        let t = try Self.shipped(name)
        #expect(!t.peers.isEmpty)
        for p in t.peers { #expect(t.unreachable(from: p.index).isEmpty) }
    }

    @Test func local4IsTheDefaultFullMesh() throws {
        let t = try Self.shipped("local4.yaml")
        #expect(t.peers.count == 4)
        #expect(t.isFullMesh)
        #expect(t.neighbors(of: 2) == [0, 1, 3])
        #expect(t.localPeers().count == 4)
        #expect(t.heartbeat.interval == .milliseconds(250))
        #expect(t.round.deadline == .adaptive)
        #expect(t.optimizer.values == .bf16)
        #expect(t.model == .preset("tiny"))
    }

    @Test func ring8NeedsRelays() throws {
        let t = try Self.shipped("ring8.yaml")
        #expect(t.peers.count == 8)
        #expect(!t.isFullMesh)
        for p in t.peers { #expect(t.neighbors(of: p.index).count == 2) }
        #expect(t.neighbors(of: 0) == [1, 7])
        #expect(t.shouldRelay(origin: 0, at: 1))
    }

    @Test func multihostIsRemoteAndSecure() throws {
        let t = try Self.shipped("multihost.example.yaml")
        #expect(t.security.curve)
        #expect(t.localPeers(localAddresses: ["127.0.0.1"]).isEmpty)
        #expect(t.localPeers(localAddresses: ["10.8.0.5"]).map(\.id) == ["far-c"])
        #expect(t.model == .explicit(nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 128))
        #expect(t.optimizer.warmup == 20)
    }

    @Test func hostAddressesIncludeLoopback() {
        #expect(HostAddresses.current().contains("127.0.0.1"))
    }

    @Test func runIDIsStableAndSensitive() throws {
        let a = try Self.shipped("local4.yaml")
        // Pinned: the FNV-1a input format is part of the protocol; changing it splits runs.
        #expect(a.runID == 0x5d75_0b6f_0494_ec6f)  // computed independently (Python) from the same string
        var b = a
        b.optimizer.lr *= 2
        #expect(a.runID != b.runID)
        var d = a
        d.steps += 1  // the step count shapes the lr schedule
        #expect(a.runID != d.runID)
        var c = a
        c.peers.removeLast()  // peers are not part of the run identity
        #expect(a.runID == c.runID)
        var fnv = FNV1a64()
        fnv.add("a")
        #expect(fnv.value == 0xaf63_dc4c_8601_ec8c)
    }

    @Test func durations() {
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("1s") == .seconds(1))
        #expect(DurationText.parse("1.5s") == .milliseconds(1500))
        #expect(DurationText.parse("2m") == .seconds(120))
        for bad in ["", "1", "s", "1.5", "-1s", "1e3s", "1 sec", "nan s", "inf s"] { #expect(DurationText.parse(bad) == nil) }
        #expect(DurationText.format(.milliseconds(250)) == "250ms")
        #expect(DurationText.format(.seconds(3)) == "3s")
        #expect(DurationText.format(.milliseconds(1500)) == "1.5s")
        #expect(DurationText.format(.milliseconds(1234)) == "1234ms")
    }

    @Test func endpoints() {
        #expect(Endpoint(parsing: "tcp://127.0.0.1:7100") == Endpoint(host: "127.0.0.1", port: 7100))
        #expect(Endpoint(parsing: "tcp://[::1]:7100")?.description == "tcp://[::1]:7100")
        for bad in ["127.0.0.1:7100", "tcp://127.0.0.1", "tcp://:7100", "tcp://h:0", "tcp://h:70000", "udp://h:1", "tcp://*:7100"] {
            #expect(Endpoint(parsing: bad) == nil)
        }
    }
}

/// Each validation error: file, line and field in the message.
@Suite struct TopologyValidationTests {
    static let base = """
    run: t
    seed: 1
    model:
      preset: tiny
    data:
      corpus: shakespeare
      batch_size: 8
    optimizer:
      kind: demo
      lr: 0.003
    steps: 10
    heartbeat:
      interval: 250ms
    peers:
      - id: p0
        pub: tcp://127.0.0.1:7100
        sync: tcp://127.0.0.1:7101
      - id: p1
        pub: tcp://127.0.0.1:7110
        sync: tcp://127.0.0.1:7111
        neighbors: [p0, p2]
      - id: p2
        pub: tcp://127.0.0.1:7120
        sync: tcp://127.0.0.1:7121
    """

    func failure(_ yaml: String) -> TopologyError? {
        do {
            _ = try TopologyParser.parse(yaml: yaml, file: "topologies/x.yaml")
            return nil
        } catch {
            return error
        }
    }

    func replacing(_ old: String, _ new: String) -> String {
        precondition(Self.base.contains(old), old)
        return Self.base.replacingOccurrences(of: old, with: new)
    }

    @Test func baseIsValid() throws {
        let t = try TopologyParser.parse(yaml: Self.base, file: "x")
        #expect(t.neighbors(of: 1) == [0, 2])
        #expect(t.neighbors(of: 0) == [1, 2])
        #expect(t.subscribers(of: 0) == [1, 2])
    }

    @Test func unknownNeighbourMatchesTheDocumentedMessage() {
        let e = failure(replacing("[p0, p2]", "[p0, p9]"))
        #expect(e?.description == "topologies/x.yaml:21: peers[1].neighbors: unknown peer 'p9' (known: p0, p1, p2)")
    }

    @Test func unknownKeySuggestsTheClosest() {
        let e = failure(replacing("  batch_size: 8", "  batchsize: 8"))
        #expect(e?.line == 7)
        #expect(e?.field == "data.batchsize")
        #expect(e?.problem == .unknownKey("batchsize", suggestion: "batch_size"))
        #expect(e?.description.contains("did you mean 'batch_size'") == true)
        #expect(failure(replacing("steps: 10", "stepz: 10"))?.problem == .unknownKey("stepz", suggestion: "steps"))
    }

    @Test func missingRequiredField() {
        let e = failure(replacing("steps: 10\n", ""))
        #expect(e?.field == "steps")
        #expect(e?.problem == .missing)
        let f = failure(replacing("    sync: tcp://127.0.0.1:7111\n", ""))
        #expect(f?.field == "peers[1].sync")
        #expect(f?.line == 18)
    }

    @Test func duplicatePeerIdAndEndpoint() {
        let e = failure(replacing("- id: p2", "- id: p1"))
        #expect(e?.line == 22)
        #expect(e?.field == "peers[2].id")
        #expect(e?.problem == .duplicate("p1", firstLine: 18))
        let f = failure(replacing("tcp://127.0.0.1:7121", "tcp://127.0.0.1:7101"))
        #expect(f?.field == "peers[2].sync")
        #expect(f?.line == 24)
    }

    @Test func selfNeighbour() {
        let e = failure(replacing("[p0, p2]", "[p0, p1]"))
        #expect(e?.problem == .selfNeighbor("p1"))
        #expect(e?.line == 21)
    }

    @Test func badDurationAndNumber() {
        let e = failure(replacing("250ms", "250 parsecs"))
        #expect(e?.line == 13)
        #expect(e?.field == "heartbeat.interval")
        #expect(e?.problem == .badDuration("250 parsecs"))
        let f = failure(replacing("batch_size: 8", "batch_size: eight"))
        #expect(f?.field == "data.batch_size")
        #expect(f?.line == 7)
        let g = failure(replacing("lr: 0.003", "lr: fast"))
        #expect(g?.field == "optimizer.lr")
        #expect(failure(replacing("batch_size: 8", "batch_size: 0"))?.field == "data.batch_size")
    }

    @Test func badEndpoint() {
        let e = failure(replacing("tcp://127.0.0.1:7110", "127.0.0.1:7110"))
        #expect(e?.line == 19)
        #expect(e?.field == "peers[1].pub")
        #expect(e?.problem == .badEndpoint("127.0.0.1:7110"))
    }

    @Test func badChoiceAndShapes() {
        #expect(failure(replacing("kind: demo", "kind: sgd"))?.problem == .badValue("sgd", allowed: ["demo", "adamw"]))
        #expect(failure(replacing("  preset: tiny", "  preset: tiny\n  n_layer: 2"))?.field == "model.n_layer")
        #expect(failure("- just\n- a list\n")?.problem == .wrongShape(expected: "a mapping of key: value"))
        #expect(failure("run: [unclosed\n")?.problem.isSyntax == true)
        #expect(failure(replacing("steps: 10", "steps: 10\nsteps: 11"))?.problem.isSyntax == true)
    }

    @Test func unreachablePeerIsRefused() {
        // p0 and p2 hear each other; p1 hears p0 only, and nobody hears p1.
        let yaml = replacing("[p0, p2]", "[p0]").replacingOccurrences(of: "    sync: tcp://127.0.0.1:7101\n",
                                                                     with: "    sync: tcp://127.0.0.1:7101\n    neighbors: [p2]\n")
            + "\n    neighbors: [p0]\n"
        let e = failure(yaml)
        #expect(e?.field == "peers")
        #expect(e?.description.contains("can never hear 'p1'") == true)
    }

    @Test func loadReportsAMissingFile() {
        #expect(throws: TopologyError.self) { try TopologyParser.load(path: "/nonexistent/t.yaml") }
    }
}

extension TopologyError.Problem {
    var isSyntax: Bool { if case .syntax = self { true } else { false } }
}

extension TopologyValidationTests {
    @Test func nullCountsAsMissingAndExplicitModelIsChecked() {
        let e = failure(replacing("steps: 10", "steps: ~"))
        #expect(e?.field == "steps" && e?.problem == .missing)
        let model = replacing("  preset: tiny", "  n_layer: 2\n  n_head: 3\n  n_embd: 64\n  block_size: 32")
        #expect(failure(model)?.field == "model.n_embd")  // 64 is not a multiple of 3
        let ok = replacing("  preset: tiny", "  n_layer: 2\n  n_head: 4\n  n_embd: 64\n  block_size: 32")
        #expect(failure(ok) == nil)
        #expect(failure(replacing("  preset: tiny", "  n_layer: 2"))?.field == "model.n_head")
    }

    @Test func heartbeatOrderAndFixedDeadline() {
        #expect(failure(replacing("  interval: 250ms", "  interval: 250ms\n  suspect_after: 100ms"))?.field == "heartbeat.suspect_after")
        let fixed = replacing("steps: 10", "steps: 10\nround: { deadline: 2s, max_deadline: 5s }")
        #expect(failure(fixed) == nil)
        let tooLong = replacing("steps: 10", "steps: 10\nround: { deadline: 20s, max_deadline: 5s }")
        #expect(failure(tooLong)?.field == "round.deadline")
    }
}
