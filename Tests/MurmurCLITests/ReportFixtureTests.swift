import Foundation
import Testing
@testable import MurmurCLI

/// A small synthetic run folder written to a temporary directory: three peers (one with an id
/// full of characters that need escaping), ten steps, p1's digest differs from step 8 on, p1 goes
/// suspect → dead → alive and rejoins as seen by p0, p1 has no summary.json and a half-written
/// last line in rounds.jsonl.
struct RunFixture {
    static let odd = "x<&\"y'"
    static let peers = ["p0", "p1", odd]
    /// 2026-01-01 12:00:00.000 UTC.
    static let t0: Int64 = 1_767_268_800_000
    static let steps = 10

    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-report-\(UUID().uuidString)")
        for (i, id) in Self.peers.enumerated() {
            let dir = directory.appendingPathComponent(id)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var rounds: [[String: Any]] = []
            for s in 0..<Self.steps {
                let digest = id == "p1" && s >= 8 ? "bad0bad0bad0bad\(s)" : String(format: "%016x", 0xabc000 + s)
                rounds.append(["step": s, "digest": digest, "loss": 5.0 - Double(s) * 0.1 - Double(i) * 0.01,
                               "contributors": Self.peers, "missing": s == 4 ? ["p1"] : [String](),
                               "bytes_out": 1000, "bytes_in": 2000, "bytes_reference": 4000, "bytes_dense": 100_000,
                               "waited_ms": 5, "timed_out": s == 4, "late_dropped": id == "p0" && s >= 5 ? 2 : 0, "invalid_bodies": 0,
                               "time_ms": Self.t0 + Int64(s) * 1000, "peer": id])
            }
            var text = try Self.jsonl(rounds)
            if id == "p1" { text += "{\"step\": 10, \"dig" }  // a peer still writing
            try text.write(to: dir.appendingPathComponent("rounds.jsonl"), atomically: true, encoding: .utf8)
            try Self.jsonl(Self.heartbeats(of: id)).write(to: dir.appendingPathComponent("heartbeats.jsonl"),
                                                           atomically: true, encoding: .utf8)
            if id != "p1" {
                let summary: [String: Any] = ["peer": id, "steps": Self.steps, "digest": String(format: "%016x", 0xabc000 + 9),
                                              "val_loss": 4.25 + Double(i) * 0.5, "transport_bytes_out": 10_000,
                                              "transport_bytes_in": 20_000, "bytes_reference_per_step": 4000,
                                              "bytes_dense_per_step": 100_000, "stopped_early": false]
                try JSONSerialization.data(withJSONObject: summary).write(to: dir.appendingPathComponent("summary.json"))
            }
        }
    }

    /// Heartbeat events logged by `id`.
    static func heartbeats(of id: String) -> [[String: Any]] {
        var out: [[String: Any]] = []
        for s in 0..<steps {
            out.append(["event": "sent", "peer": id, "from": id, "state": "training", "step": s - 1, "time_ms": t0 + Int64(s) * 1000 + 100])
            for other in peers where other != id {
                out.append(["event": "received", "peer": id, "from": other, "incarnation": 1, "state": "training", "step": s - 1,
                            "digest": "0123456789abcdef", "loss": NSNull(), "lag": 0, "time_ms": t0 + Int64(s) * 1000 + 200])
            }
        }
        for other in peers where other != id {
            out.append(["event": "status", "peer": id, "from": other, "previous": "unknown", "status": "alive", "time_ms": t0 + 50])
        }
        if id == "p0" {
            out += [
                ["event": "status", "peer": id, "from": "p1", "previous": "alive", "status": "suspect", "time_ms": t0 + 3000],
                ["event": "status", "peer": id, "from": "p1", "previous": "suspect", "status": "dead", "time_ms": t0 + 4500],
                ["event": "status", "peer": id, "from": "p1", "status": "rejoined", "incarnation": 2, "time_ms": t0 + 6000],
                ["event": "status", "peer": id, "from": "p1", "previous": "dead", "status": "alive", "time_ms": t0 + 6000],
                ["event": "checkpoint", "peer": "p0", "step": 5, "path": "ckpt/5", "time_ms": t0 + 6500],
            ]
        }
        if id == odd {
            out.append(["event": "status", "peer": id, "from": "p1", "previous": "alive", "status": "dead", "time_ms": t0 + 5000])
        }
        return out.sorted { ($0["time_ms"] as! Int64) < ($1["time_ms"] as! Int64) }
    }

    static func jsonl(_ objects: [[String: Any]]) throws -> String {
        try objects.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            .joined(separator: "\n") + "\n"
    }

    func load() throws -> RunData { try RunData.load(directory) }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

@Suite struct ReportFixtureTests {
    @Test func fixtureLoadsEveryPeerWithNotes() throws {
        let f = try RunFixture()
        defer { f.remove() }
        let run = try f.load()
        #expect(run.peerIDs == RunFixture.peers)
        let p1 = try #require(run.peer("p1"))
        #expect(p1.rounds.count == RunFixture.steps)
        #expect(p1.unreadableLines == 1)
        #expect(p1.missingFiles == ["summary.json"])
        #expect(p1.summary == nil)
        #expect(run.peer("p0")?.summary?.valLoss == 4.25)
        #expect(run.peer("p0")?.rounds[4].timedOut == true)
        #expect(run.peer("p0")?.rounds[4].missing == ["p1"])
    }

    @Test func missingAndEmptyFoldersAreTypedErrors() throws {
        let nowhere = URL(fileURLWithPath: "/nonexistent/murmur-run")
        #expect(throws: RunFolderError.missing(path: nowhere.path)) { try RunData.load(nowhere) }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: RunFolderError.empty(path: empty.path)) { try RunData.load(empty) }
        #expect(RunFolderError.missing(path: "/x").description.contains("murmur up"))
    }
}
