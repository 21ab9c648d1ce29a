import Foundation
import Testing
@testable import MurmurCLI

/// `suspect-content` lines in the peers' heartbeat logs reach `murmur status` and the report.
@Suite struct ContentSuspectsTests {
    func append(_ f: RunFixture, _ peer: String, _ line: String) throws {
        let h = try FileHandle(forWritingTo: f.directory.appendingPathComponent("\(peer)/heartbeats.jsonl"))
        try h.seekToEnd()
        try h.write(contentsOf: Data((line + "\n").utf8))
        try h.close()
    }

    func line(_ event: String, by observer: String, about subject: String, step: Int, extra: [String: Any] = [:]) throws -> String {
        let o = extra.merging(["event": event, "peer": observer, "from": subject, "step": step, "time_ms": RunFixture.t0 + 9000]) { a, _ in a }
        return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test func statusAndReportNameTheSuspect() throws {
        let f = try RunFixture()
        defer { f.remove() }
        try append(f, "p0", try line("suspect-content", by: "p0", about: "p1", step: 12, extra: ["reason": "disagrees", "agreement": 0.03, "norm_ratio": 1.1]))
        try append(f, RunFixture.odd, try line("suspect-content", by: RunFixture.odd, about: "p1", step: 13, extra: ["reason": "disagrees", "agreement": 0.04, "norm_ratio": 1.1]))
        let run = try f.load()
        let s = ContentSuspects(run.peers)
        #expect(s.suspects.map(\.peer) == ["p1"])
        #expect(s.suspects.first?.step == 12)
        #expect(s.suspects.first?.by == ["p0", RunFixture.odd].sorted())
        let text = StatusTable(run: run).render()
        #expect(text.contains("warning: p1 suspect-content since step 12: disagrees (agreement 0.03, norm ratio 1.1)"), "\(text)")
        let html = ReportHTML(run: run).render()
        #expect(html.contains("p1 suspect-content since step 12"))
        // `murmur logs --events status` keeps the line.
        #expect(EventFilter.status.keeps(.other(name: "suspect-content", peer: "p0", fields: [:])))
    }

    @Test func clearedOrHonestRunNamesNobody() throws {
        let f = try RunFixture()
        defer { f.remove() }
        #expect(ContentSuspects(try f.load().peers).suspects.isEmpty)
        #expect(ReportHTML(run: try f.load()).render().contains("none (no peer marked suspect-content)"))
        try append(f, "p0", try line("suspect-content", by: "p0", about: "p1", step: 12, extra: ["reason": "loud", "norm_ratio": 160]))
        try append(f, "p0", try line("content-ok", by: "p0", about: "p1", step: 30))
        #expect(ContentSuspects(try f.load().peers).suspects.isEmpty)
        #expect(!StatusTable(run: try f.load()).render().contains("suspect-content"))
    }
}
