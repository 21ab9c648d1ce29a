import Testing
@testable import Mesh

/// `optimizer: { kind: demo, local_steps: H, … }`: parsing, defaults, identity, clear errors.
@Suite struct LocalStepsTopologyTests {
    static func yaml(_ optimizer: String, round: String = "") -> String {
        """
        run: ls
        seed: 1
        model: { preset: nano }
        data: { corpus: shakespeare, batch_size: 2 }
        optimizer: { \(optimizer) }
        steps: 10
        \(round)
        peers:
          - { id: p0, pub: "tcp://127.0.0.1:7100", sync: "tcp://127.0.0.1:7101" }
          - { id: p1, pub: "tcp://127.0.0.1:7110", sync: "tcp://127.0.0.1:7111" }
        """
    }

    func parse(_ optimizer: String, round: String = "") throws -> Topology {
        try TopologyParser.parse(yaml: Self.yaml(optimizer, round: round), file: "t.yaml")
    }

    func failure(_ optimizer: String, round: String = "") -> TopologyError? {
        do { _ = try TopologyParser.parse(yaml: Self.yaml(optimizer, round: round), file: "t.yaml"); return nil } catch { return error }
    }

    @Test func fullSpecParses() throws {
        let t = try parse("kind: demo, local_steps: 32, inner: adamw, inner_lr: 1.0e-3, outer_lr: 0.7, outer_momentum: 0.9, outer_nesterov: false, transform: none, values: 2bit, topk: 64, chunk: 64")
        let ls = try #require(t.optimizer.localSteps)
        #expect(ls == LocalStepsSpec(steps: 32, inner: .adamw, innerLR: 1e-3, outerLR: 0.7, outerMomentum: 0.9, outerNesterov: false))
        #expect(t.optimizer.transform == .none && t.optimizer.values == .twoBit)
        #expect(t.optimizer.lr == 1e-3)          // lr defaults to inner_lr
        #expect(t.optimizer.decay == 0.95)       // the error-feedback decay's default with local steps
    }

    @Test func defaultsOfTheOuterStep() throws {
        let ls = try #require(try parse("kind: demo, local_steps: 8, inner_lr: 2.0e-3").optimizer.localSteps)
        #expect(ls.outerLR == 1 && ls.outerMomentum == 0 && ls.outerNesterov && ls.inner == .adamw)
    }

    /// H = 1 is today's DeMo: the same spec, run id and fingerprint as without the key.
    @Test func oneLocalStepIsTodaysDeMo() throws {
        let a = try parse("kind: demo, lr: 3.0e-3"), b = try parse("kind: demo, lr: 3.0e-3, local_steps: 1")
        #expect(a == b && b.optimizer.localSteps == nil && b.optimizer.decay == 0.999)
        #expect(a.runID == b.runID)
        #expect(a.fingerprint(peerID: "p0") == b.fingerprint(peerID: "p0"))
        let c = try parse("kind: demo, lr: 3.0e-3, transform: dct")
        #expect(a.runID == c.runID)
    }

    @Test func everyLocalSettingIsInTheRunID() throws {
        let base = "kind: demo, local_steps: 8, inner_lr: 1.0e-3"
        let ids = try [base, "kind: demo, lr: 1.0e-3", "kind: demo, local_steps: 16, inner_lr: 1.0e-3", base + ", outer_lr: 0.5",
                       base + ", outer_momentum: 0.5", base + ", outer_momentum: 0.5, outer_nesterov: false",
                       base + ", transform: none", base + ", values: 2bit", "kind: demo, local_steps: 8, inner_lr: 2.0e-3"]
            .map { try parse($0).runID }
        #expect(Set(ids).count == ids.count)
    }

    @Test func errorsSayWhatToDo() {
        let noLR = failure("kind: demo, local_steps: 8")
        #expect(noLR?.field == "optimizer.inner_lr")
        #expect(noLR?.description.contains("add inner_lr") == true)
        let stray = failure("kind: demo, lr: 1.0e-3, outer_lr: 0.5")
        #expect(stray?.field == "optimizer.outer_lr")
        #expect(stray?.description.contains("only applies with local_steps of 2 or more") == true)
        let adam = failure("kind: adamw, lr: 1.0e-3, local_steps: 8")
        #expect(adam?.field == "optimizer.local_steps")
        #expect(adam?.description.contains("use kind: demo") == true)
        #expect(failure("kind: demo, local_steps: 8, inner_lr: 1.0e-3, outer_momentum: 1")?.field == "optimizer.outer_momentum")
        #expect(failure("kind: demo, local_steps: 8, inner_lr: 1.0e-3, outer_lr: 0")?.field == "optimizer.outer_lr")
        #expect(failure("kind: demo, local_steps: 0, inner_lr: 1.0e-3")?.field == "optimizer.local_steps")
        #expect(failure("kind: demo, local_steps: 8, inner_lr: 1.0e-3, inner: sgd")?.field == "optimizer.inner")
        #expect(failure("kind: demo, local_steps: 8, inner_lr: 1.0e-3, transform: wavelet")?.field == "optimizer.transform")
        #expect(failure("kind: demo, local_steps: 8, inner_lr: 1.0e-3, values: 3bit")?.field == "optimizer.values")
        #expect(failure("kind: adamw, lr: 1.0e-3, transform: none")?.field == "optimizer.transform")
        let overlap = failure("kind: demo, local_steps: 8, inner_lr: 1.0e-3", round: "round: { overlap: 1 }")
        #expect(overlap?.field == "optimizer.local_steps")
        #expect(overlap?.description.contains("set overlap: 0") == true)
    }
}
