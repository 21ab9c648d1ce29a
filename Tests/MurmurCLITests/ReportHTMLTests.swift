import Foundation
import Testing
@testable import MurmurCLI

@Suite struct ReportHTMLTests {
    static func occurrences(_ needle: String, in hay: String) -> Int { hay.components(separatedBy: needle).count - 1 }

    static func html() throws -> String {
        let f = try RunFixture()
        defer { f.remove() }
        return ReportHTML(run: try f.load()).render()
    }

    @Test func oneSVGPerFigure() throws {
        let html = try Self.html()
        #expect(Self.occurrences("<svg", in: html) == 3)
        #expect(Self.occurrences("</svg>", in: html) == 3)
        #expect(html.contains("Train loss per step"))
        #expect(html.contains("Bytes per step (log scale)"))
        #expect(html.contains("Peer status over time"))
    }

    @Test func aSeriesPerPeerInLossAndBytes() throws {
        let html = try Self.html()
        let escaped = Markup.escape(RunFixture.odd)
        for id in ["p0", "p1", escaped] {
            // One loss polyline and one bytes polyline each.
            #expect(Self.occurrences("class=\"series\" data-peer=\"\(id)\"", in: html) == 2, "peer \(id)")
        }
        #expect(html.contains("data-peer=\"reference\""))
        #expect(html.contains("data-peer=\"dense AdamW\""))
    }

    @Test func validationEventsAreDiamondsOnTheLossFigure() throws {
        let f = try RunFixture()
        defer { f.remove() }
        var run = try f.load()
        #expect(!ReportHTML(run: run).render().contains("validation-point"))
        for (step, loss) in [(5, 4.25), (10, 3.75)] {
            run.peers[0].events.append(TimedEvent(json: ["event": "validation", "peer": "p0", "step": step, "val_loss": loss,
                                                         "batches": 20, "time_ms": RunFixture.t0 + Int64(step) * 1000])!)
        }
        run.peers[1].events.append(TimedEvent(json: ["event": "validation", "peer": "p1", "step": 7, "val_loss": "nan"])!)
        let html = ReportHTML(run: run).render()
        #expect(Self.occurrences("class=\"validation-point\"", in: html) == 2)
        #expect(html.contains("p0: validation loss 3.7500 after 10 steps"))
    }

    @Test func oddPeerIDsAreEscaped() throws {
        let html = try Self.html()
        #expect(!html.contains(RunFixture.odd))
        #expect(html.contains("x&lt;&amp;&quot;y&#39;"))
        #expect(Markup.escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
    }

    @Test func headerFacts() throws {
        let html = try Self.html()
        // 100 000 dense / 1 000 sent and 4 000 reference / 1 000 sent.
        #expect(html.contains("<b>100.0×</b>"))
        #expect(html.contains("reference / sent = 4.0×"))
        #expect(html.contains("1 kB sent"))
        #expect(html.contains("p0 4.2500"))
        #expect(html.contains("p1 <code>bad0bad0bad0bad9</code>"))
        #expect(html.contains("<span class=\"bad\">NO</span>"))
        // p0 sees p1 suspect and dead and a rejoin; the odd peer sees p1 dead.
        #expect(html.contains("1 suspect, 2 dead, 1 rejoined"))
        // late_dropped is a running total: p0's newest value (2), not the sum over its rounds.
        #expect(html.contains("3 rounds timed out; 3 contributions missing; 2 late contributions dropped"))
    }

    @Test func partialFilesGiveNotes() throws {
        let html = try Self.html()
        #expect(html.contains("p1: no summary.json"))
        #expect(html.contains("p1: 1 unreadable line(s) skipped"))
    }

    @Test func rejoinAndDeathAreMarked() throws {
        let html = try Self.html()
        #expect(html.contains(">p1 rejoined</text>"))
        #expect(html.contains(">p1 dead</text>"))
        #expect(Self.occurrences("class=\"rejoin\"", in: html) == 1)
        // The ring sits on p1's curve at step 6, where p1's loss is 5.0 - 0.6 - 0.01.
        #expect(html.contains("p1 rejoined: step 6, loss 4.3900"))
        #expect(html.contains("seen by p0"))
        #expect(html.contains("p1 suspect as seen by p0"))
    }

    @Test func selfContained() throws {
        let html = try Self.html()
        #expect(!html.contains("<script"))
        #expect(!html.contains("src="))
        #expect(!html.contains("href="))
        #expect(!html.contains("<link"))
    }

    @Test func deathMarkersMergeAcrossObserversAndMapToSteps() throws {
        let f = try RunFixture()
        defer { f.remove() }
        let markers = ReportFigures(run: try f.load()).markers()
        // p0 sees p1 dead at t0+4.5 s and the odd peer at t0+5 s: one marker, at p0's step then.
        #expect(markers.map(\.label) == ["p1 dead", "p1 rejoined"])
        #expect(markers.map(\.step) == [4, 6])
    }

    @Test func missingDataGivesNotesNotFigures() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-partial-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("p0"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "started\n".write(to: dir.appendingPathComponent("p0/peer.log"), atomically: true, encoding: .utf8)
        let html = ReportHTML(run: try RunData.load(dir)).render()
        #expect(Self.occurrences("<svg", in: html) == 0)
        #expect(html.contains("No losses in any rounds.jsonl yet."))
        #expect(html.contains("p0: no rounds.jsonl, heartbeats.jsonl, summary.json"))
    }

    @Test func logScaleTicksAreDecades() {
        let y = AxisScale(lo: 600, hi: 160_000, pixelLo: 300, pixelHi: 0, log: true)
        #expect(y.ticks() == [1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000])
        #expect(abs(y(600) - 300) < 1e-9)
        #expect(abs(y(160_000)) < 1e-9)
        let x = AxisScale(lo: 0, hi: 39, pixelLo: 0, pixelHi: 100)
        #expect(x.ticks(target: 8) == [0, 5, 10, 15, 20, 25, 30, 35])
        #expect(ReportFigures.byteLabel(87_936) == "87.9 kB")
        #expect(ReportFigures.byteLabel(2_000) == "2 kB")
    }
}
