import Testing
@testable import MurmurCLI

/// The recovery report of `murmur chaos`, on hand-made logs: step s is applied at 1000 + 500·s ms
/// by the two healthy peers (digest "d<s>"); p2 is the victim.
@Suite struct ChaosReportTests {
    static func round(_ peer: String, _ step: Int, at t: Int, digest: String? = nil, phase: String = "training",
                      missing: [String] = []) -> [String: Any] {
        ["peer": peer, "step": step, "time_ms": t, "digest": digest ?? "d\(step)", "phase": phase, "missing": missing]
    }

    static func healthy(_ peer: String, steps: ClosedRange<Int>, missingP2: Range<Int>) -> [[String: Any]] {
        steps.map { round(peer, $0, at: 1000 + 500 * $0, missing: missingP2.contains($0) ? ["p2"] : []) }
    }

    static func event(_ fields: [String: Any], at t: Int) -> [String: Any] { fields.merging(["time_ms": t]) { a, _ in a } }

    @Test func killDetectionRecoveryAndStepsLost() {
        let fault = ChaosFault(kind: .kill, peer: "p2", began: 11_200, ended: 17_200, stepAtFault: 20)
        var p2 = (0...20).map { Self.round("p2", $0, at: 1000 + 500 * $0) }
        p2 += (15...30).map { Self.round("p2", $0, at: 17_500, phase: "replay") }
        p2.append(Self.round("p2", 32, at: 17_650, digest: "x"))          // diverged once: not back
        p2.append(Self.round("p2", 33, at: 17_700))                       // right digest, not behind
        let rounds = ["p0": Self.healthy("p0", steps: 0...40, missingP2: 21..<25),
                      "p1": Self.healthy("p1", steps: 0...40, missingP2: 21..<25), "p2": p2]
        let beats: [String: [[String: Any]]] = [
            "p0": [Self.event(["event": "status", "from": "p2", "status": "suspect"], at: 12_300),
                   Self.event(["event": "status", "from": "p2", "status": "dead"], at: 14_200)],
            "p1": [Self.event(["event": "status", "from": "p2", "status": "dead"], at: 14_400)],
            "p2": [Self.event(["event": "catchup", "result": "requested", "from_step": 15], at: 17_300),
                   Self.event(["event": "catchup", "result": "done", "mode": "replay"], at: 17_500),
                   Self.event(["event": "catchup", "result": "done", "mode": "snapshot"], at: 30_000)],   // later: not this fault's
        ]
        let report = ChaosReport(faults: [fault], peers: ["p0", "p1", "p2"], rounds: rounds, heartbeats: beats)
        let o = report.outcomes[0]
        #expect(o.detectedMs == 3000)
        #expect(o.suspectMs == 1100)
        #expect(o.recoveredMs == 500)
        #expect(o.recoveredAtStep == 33)
        #expect(o.catchUpModes == ["replay"])
        #expect(o.stepsLost == 6)
        #expect(o.missed == 8)
        #expect(!report.digestsAgree)                                  // p2 ends at 33, the others at 40
        #expect(report.text.contains("p2: killed at step 20 for 6000 ms; detected dead after 3000 ms; back in step 500 ms"))
    }

    @Test func aStoppedPeerIsBackOnlyWhenItIsNoLongerBehind() {
        let fault = ChaosFault(kind: .stop, peer: "p2", began: 11_200, ended: 15_200, stepAtFault: 20)
        var p2 = (0...20).map { Self.round("p2", $0, at: 1000 + 500 * $0) }
        p2.append(Self.round("p2", 21, at: 15_210))                       // resumes 8 steps behind
        p2.append(Self.round("p2", 29, at: 15_900, phase: "replay"))
        p2.append(Self.round("p2", 30, at: 16_100))
        let rounds = ["p0": Self.healthy("p0", steps: 0...30, missingP2: 0..<0),
                      "p1": Self.healthy("p1", steps: 0...30, missingP2: 0..<0), "p2": p2]
        let report = ChaosReport(faults: [fault], peers: ["p0", "p1", "p2"], rounds: rounds, heartbeats: [:])
        let o = report.outcomes[0]
        #expect(o.recoveredAtStep == 30)
        #expect(o.recoveredMs == 900)
        #expect(o.detectedMs == nil)
        #expect(o.stepsLost == 0)
        #expect(report.digestsAgree)
        #expect(report.text.contains("detected dead after - (back before the dead timeout)"))
    }

    @Test func aPeerThatCatchesUpToTheLastStepBySnapshotIsBackAndEndsOnTheFinalDigest() {
        let fault = ChaosFault(kind: .kill, peer: "p2", began: 11_200, ended: 15_200, stepAtFault: 20)
        let p2 = (0...20).map { Self.round("p2", $0, at: 1000 + 500 * $0) }   // no round after the restart
        let rounds = ["p0": Self.healthy("p0", steps: 0...29, missingP2: 21..<29),
                      "p1": Self.healthy("p1", steps: 0...29, missingP2: 21..<29), "p2": p2]
        let beats: [String: [[String: Any]]] = [
            "p2": [Self.event(["event": "catchup", "result": "requested", "from_step": 18], at: 15_400),
                   Self.event(["event": "catchup", "result": "done", "mode": "snapshot", "step": 29, "digest": "d29"], at: 15_600)],
        ]
        let summaries: [String: [String: Any]] = ["p0": ["steps": 30, "digest": "d29"], "p1": ["steps": 30, "digest": "d29"],
                                                 "p2": ["steps": 30, "digest": "d29"]]
        let report = ChaosReport(faults: [fault], peers: ["p0", "p1", "p2"], rounds: rounds, heartbeats: beats, summaries: summaries)
        #expect(report.outcomes[0].recoveredMs == 400)
        #expect(report.outcomes[0].recoveredAtStep == 29)
        #expect(report.outcomes[0].catchUpModes == ["snapshot"])
        #expect(report.digestsAgree, "\(report.finals)")
        let without = ChaosReport(faults: [fault], peers: ["p0", "p1", "p2"], rounds: rounds, heartbeats: beats)
        #expect(!without.digestsAgree, "from rounds alone p2 looks stuck at step 20")
    }

    @Test func stepsTrainedAloneInAPartitionAreLost() {
        let fault = ChaosFault(kind: .partition, peer: "p2", began: 11_200, ended: 21_200, stepAtFault: 20)
        var p2 = (0...20).map { Self.round("p2", $0, at: 1000 + 500 * $0) }
        p2 += (21...25).map { Self.round("p2", $0, at: 14_000 + 100 * $0, digest: "alone\($0)") }
        p2.append(Self.round("p2", 41, at: 21_600))
        let rounds = ["p0": Self.healthy("p0", steps: 0...41, missingP2: 21..<23),
                      "p1": Self.healthy("p1", steps: 0...41, missingP2: 21..<23), "p2": p2]
        let report = ChaosReport(faults: [fault], peers: ["p0", "p1", "p2"], rounds: rounds, heartbeats: [:])
        let o = report.outcomes[0]
        #expect(o.stepsLost == 5)
        #expect(o.recoveredMs == 400)
        #expect(o.missed == 4)
        #expect(report.digestsAgree)
        #expect(report.text.contains("p2: cut off at step 20"))
    }

    @Test func linkNamesFromIPOutput() {
        let listing = """
        1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00
        2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc tbf state UP mode DEFAULT group default qlen 1000\\    link/ether 1a:2b
        3: wg1: <POINTOPOINT,UP> mtu 1420
        garbage line
        """
        #expect(NamespaceLinks.linkNames(listing) == ["eth0", "wg1"])
        #expect(NamespaceLinks.linkNames("").isEmpty)
    }

    @Test func kindsParse() throws {
        #expect(try ChaosCommand.parseKinds("kill, stop,partition") == [.kill, .stop, .partition])
        #expect(throws: (any Error).self) { try ChaosCommand.parseKinds("kill,freeze") }
        #expect(throws: (any Error).self) { try ChaosCommand.parseKinds("") }
    }
}
