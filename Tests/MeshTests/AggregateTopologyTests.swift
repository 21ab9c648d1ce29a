import Foundation
import Testing
@testable import Mesh

/// `optimizer: { aggregate: mean | clipped }` (issue 12).
@Suite struct AggregateTopologyTests {
    func topology(_ aggregate: String?) throws -> Topology {
        let extra = aggregate.map { ", aggregate: \($0)" } ?? ""
        return try TopologyParser.parse(yaml: """
        run: agg
        seed: 1
        model: { preset: tiny }
        data: { corpus: shakespeare, batch_size: 8 }
        optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64\(extra) }
        steps: 10
        peers:
          - { id: p0, pub: "tcp://127.0.0.1:7100", sync: "tcp://127.0.0.1:7101" }
          - { id: p1, pub: "tcp://127.0.0.1:7110", sync: "tcp://127.0.0.1:7111" }
        """, file: "agg.yaml")
    }

    @Test func defaultIsClippedAndKeepsTheRunID() throws {
        let absent = try topology(nil), clipped = try topology("clipped"), mean = try topology("mean")
        #expect(absent.optimizer.aggregate == .clipped)
        #expect(mean.optimizer.aggregate == .mean)
        // The default adds nothing to the hash: run ids of earlier topologies stay as they were.
        #expect(absent.runID == clipped.runID)
        #expect(mean.runID != clipped.runID)
        let diff = mean.fingerprint(peerID: "p0").differences(from: clipped.fingerprint(peerID: "p1"))
        #expect(diff.map(\.field) == ["optimizer.aggregate"])
    }

    @Test func unknownRuleIsRefusedWithTheField() throws {
        #expect(throws: TopologyError.self) { _ = try topology("median-of-means") }
        do { _ = try topology("vote"); Issue.record("accepted") } catch {
            #expect("\(error)".contains("aggregate"))
        }
    }
}
