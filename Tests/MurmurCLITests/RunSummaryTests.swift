import Foundation
import Testing
@testable import MurmurCLI

/// `murmur up`'s closing summary says which peers trained alone and why a peer did not succeed.
@Suite struct RunSummaryTests {
    @Test func namesStepsTrainedAloneAndFailedOutcomes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-summary-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let peers: [(String, [String: Any])] = [
            ("p0", ["steps": 10, "digest": "aa", "val_loss": 2.0, "steps_alone": 0, "success": true, "outcome": "final digest aa agreed by 2 peer(s)"]),
            ("p1", ["steps": 10, "digest": "bb", "val_loss": 2.5, "steps_alone": 7, "success": false,
                    "outcome": "final digest bb was confirmed by 1 peer(s), 2 needed"]),
        ]
        for (id, s) in peers {
            let d = dir.appendingPathComponent(id)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: s).write(to: d.appendingPathComponent("summary.json"))
            try Data("{\"step\":9,\"digest\":\"\(s["digest"]!)\",\"bytes_out\":10,\"time_ms\":1}\n".utf8)
                .write(to: d.appendingPathComponent("rounds.jsonl"))
        }
        try Data("{\"event\":\"suspect-content\",\"peer\":\"p0\",\"from\":\"p1\",\"step\":9,\"reason\":\"loud\",\"norm_ratio\":120,\"time_ms\":5}\n".utf8)
            .write(to: dir.appendingPathComponent("p0/heartbeats.jsonl"))
        let text = RunSummary(files: RunFiles(directory: dir), peers: ["p0", "p1"]).text(exitCodes: ["p0": 0, "p1": 3])
        #expect(text.contains("updates out of line: p1 suspect-content since step 9: loud (norm ratio 120); marked by p0"), "\(text)")
        #expect(text.contains("trained alone (cut off from every other peer, the partition failsafe): p1 7 step(s)"), "\(text)")
        #expect(text.contains("p1: final digest bb was confirmed by 1 peer(s), 2 needed"))
        #expect(!text.contains("p0: final digest"), "a successful peer's outcome is not repeated")
        #expect(text.contains("failed peers: p1 (exit 3"))
    }
}
