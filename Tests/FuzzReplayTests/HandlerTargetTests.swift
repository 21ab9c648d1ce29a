import Foundation
import FuzzHarness
import Mesh
import Testing

/// The handler targets (`peer`, `catchup`: hostile messages to running peers on the simulated
/// mesh) and the traps they found.
@Suite struct HandlerTargetTests {
    /// Regression (peer target): sequence numbers come off the wire, and two jumps to `UInt64.max`
    /// (one per incarnation) overflowed the in-memory network's gap counter — a trap in the
    /// simulated mesh the real transport does not have (its `SequenceTracker` saturates). The
    /// counter now saturates too.
    @Test func sequenceGapCounterSaturates() throws {
        var yaml = "run: gap\nseed: 1\nmodel: { preset: nano }\ndata: { corpus: shakespeare, batch_size: 2 }\n"
        yaml += "optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }\n"
        yaml += "steps: 2\nheartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }\n"
        yaml += "security: { curve: false, keys: keys/ }\npeers:\n"
        for i in 0..<2 { yaml += "  - { id: p\(i), pub: \"tcp://127.0.0.1:\(22000 + 10 * i)\", sync: \"tcp://127.0.0.1:\(22001 + 10 * i)\" }\n" }
        let network = InMemoryNetwork(topology: try TopologyParser.parse(yaml: yaml, file: "gap.yaml"), seed: 1)
        let victim = network.transport(for: 0), attacker = network.transport(for: 1)
        victim.start()
        attacker.start()
        for (inc, seq) in [(UInt32(1), UInt64(0)), (1, .max), (2, 0), (2, .max)] {
            try attacker.publish(Envelope.make(kind: .heartbeat, runID: 1, origin: 1, incarnation: inc, step: 0, sequence: seq, body: []))
            network.advance()
        }
        #expect(victim.events(timeout: .zero).count >= 4)
        #expect(victim.stats.sequenceGaps == .max)
        #expect(try FuzzHarness.peerHandler(try regression("peer", "sequence-gap-overflow")) == .accepted)
    }

    /// The one-frame kill (a catch-up request for step 2^63 + 5 at every peer) and every
    /// seed run to the end on both targets without a finding.
    @Test(arguments: ["peer", "catchup"])
    func seedsRunClean(target: String) throws {
        let seeds = FuzzSeeds.seeds(for: target, root: packageRoot.path)
        #expect(seeds.contains { $0.name == "seed-request-2e63" })
        for s in seeds { #expect(try FuzzHarness.run(target, s.bytes) == .accepted, "\(s.name)") }
    }

    /// The harness reaches the handlers' interesting states: the honest peers train, and in the
    /// catch-up target the late peer catches up (replay or snapshot) from the others.
    @Test func harnessReachesTrainingAndCatchUp() throws {
        let quiet = try FuzzHarness.handlerSummary("peer", [60])
        #expect(quiet.allSatisfy { $0.lastApplied >= 10 }, "\(quiet)")
        let late = try FuzzHarness.handlerSummary("catchup", [30, 5, 6 | 31 << 3, 6 | 31 << 3])
        #expect(late[2].replayed + late[2].snapshots > 0, "\(late)")
        print("handler harness: peer \(quiet); catchup \(late)")
    }

    /// A long input is cut at `handlerMaxMessages` / `handlerMaxIterations` (fuzzing stays fast).
    @Test func handlerRunsAreBounded() throws {
        let long = [UInt8](repeating: 0x21, count: 4096)   // op 1: a send every byte run; capped
        #expect(try FuzzHarness.peerHandler(long) == .accepted)
        #expect(try FuzzHarness.catchUpHandler(long) == .accepted)
    }

    func regression(_ target: String, _ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: packageRoot.appendingPathComponent("Fuzz/regressions/\(target)/\(name)")))
    }
}
