import Foundation
import Testing
@testable import MurmurCLI

@Suite struct StatusTableTests {
    static func table(pids: [String: Int32] = [:], alive: Set<Int32> = []) throws -> (StatusTable, RunFixture) {
        let f = try RunFixture()
        var run = try f.load()
        run.pids = pids.mapValues { PeerPID(pid: $0, startTime: nil) }
        // 30 s after the last heartbeat received from p0 (t0 + 9.2 s).
        let now = Date(timeIntervalSince1970: Double(RunFixture.t0 + 39_200) / 1000)
        return (StatusTable(run: run, now: now, alive: { alive.contains($0.pid) }), f)
    }

    @Test func oneRowPerPeerWithAgreement() throws {
        let (t, f) = try Self.table()
        defer { f.remove() }
        let rows = t.rows
        #expect(rows.map(\.peer) == RunFixture.peers)
        #expect(t.agreement.step == 9)
        #expect(rows.map(\.agrees) == [true, false, true])
        #expect(rows.map(\.step) == ["10", "10", "10"])
        #expect(rows[1].digest == "bad0bad0bad0bad9")
        #expect(rows[0].loss == "4.1000")
        #expect(rows[0].bytesPerStep == "1000")
        #expect(rows[0].heartbeatAge == "30s")
    }

    @Test func warnsAboutAPeerOfAnotherTopology() throws {
        let f = try RunFixture()
        defer { f.remove() }
        let line = "{\"event\":\"foreign_topology\",\"peer\":\"p0\",\"from\":\"p9\",\"time_ms\":\(RunFixture.t0 + 9000),"
            + "\"detail\":\"p9 at tcp://10.0.0.3:7120 uses another topology: optimizer.lr 0.003 here, 0.001 there\"}\n"
        let url = f.directory.appendingPathComponent("p0/heartbeats.jsonl")
        let h = try FileHandle(forWritingTo: url)
        try h.seekToEnd()
        try h.write(contentsOf: Data(line.utf8))
        try h.close()
        let text = StatusTable(run: try f.load()).render()
        #expect(text.contains("warning: p0 heard p9 at tcp://10.0.0.3:7120 uses another topology: optimizer.lr 0.003 here, 0.001 there"), "\(text)")
        let plain = try RunFixture()
        defer { plain.remove() }
        #expect(!StatusTable(run: try plain.load()).render().contains("warning:"))
    }

    @Test func processFromSummaryAndPids() throws {
        let (t, f) = try Self.table(pids: ["p0": 11, "p1": 4242], alive: [11])
        defer { f.remove() }
        #expect(t.rows.map(\.process) == ["finished", "dead process", "finished"])
        let (running, g) = try Self.table(pids: ["p1": 4242], alive: [4242])
        defer { g.remove() }
        #expect(running.rows[1].process == "running")
    }

    @Test func seenAsUsesTheOthersLastStatus() throws {
        let (t, f) = try Self.table()
        defer { f.remove() }
        // p0 last saw p1 come back alive; the odd peer last saw it dead.
        #expect(t.seenAs("p1") == "alive by p0; dead by \(RunFixture.odd)")
        #expect(t.seenAs("p0") == "alive")
    }

    @Test func renderedTableNamesTheDisagreement() throws {
        let (t, f) = try Self.table()
        defer { f.remove() }
        let text = t.render()
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 + RunFixture.peers.count)
        #expect(lines[0].contains("digests DIFFER at step 9"))
        #expect(lines[1].hasPrefix("peer"))
        #expect(lines[2].contains("yes@9"))
        #expect(lines[3].hasPrefix("p1") && lines[3].contains("NO@9"))
    }

    @Test func lanesMergeRepeatedStates() throws {
        let f = try RunFixture()
        defer { f.remove() }
        let lanes = StatusLane.lanes(try f.load().peers)
        let p1ByP0 = try #require(lanes.first { $0.subject == "p1" && $0.observer == "p0" })
        #expect(p1ByP0.segments.map(\.state) == ["alive", "suspect", "dead", "alive"])
        #expect(p1ByP0.segments.first?.endMs == RunFixture.t0 + 3000)
        #expect(p1ByP0.rejoinsMs == [RunFixture.t0 + 6000])
        #expect(lanes.count == 6)
    }

    @Test func agreementNeedsAUniqueMajority() throws {
        let f = try RunFixture()
        defer { f.remove() }
        let run = try f.load()
        let two = DigestAgreement(run.peers.filter { $0.id != RunFixture.odd })
        #expect(two.agrees == ["p0": false, "p1": false])
        #expect(!two.all)
        #expect(DigestAgreement(run.peers.filter { $0.id != "p1" }).all)
    }
}

@Suite struct LogsTests {
    let utc = EventFormatter(timeZone: TimeZone(identifier: "UTC")!)
    /// 2026-01-01 12:00:01.250 UTC.
    let t: Int64 = 1_767_268_801_250

    @Test func localTimeWithMilliseconds() {
        #expect(utc.time(t) == "12:00:01.250")
        #expect(utc.time(t + 58_750) == "12:01:00.000")
        let paris = EventFormatter(timeZone: TimeZone(identifier: "Europe/Paris")!)
        #expect(paris.time(t) == "13:00:01.250")
    }

    @Test func statusRecvSendAndUnknownLines() throws {
        let status = try #require(TimedEvent(json: ["event": "status", "peer": "p1", "from": "alive", "to": "suspect", "time_ms": t]))
        #expect(utc.line(status) == "12:00:01.250  p1 → suspect (was alive)")
        let recv = try #require(TimedEvent(json: ["event": "recv", "peer": "p2", "incarnation": 1, "state": "training", "step": 41,
                                                  "digest": "0123456789abcdef", "loss": 3.795, "lag": 0, "time_ms": t]))
        #expect(utc.line(recv) == "12:00:01.250  recv p2 step 41 digest 0123456789abcdef  loss 3.7950  lag 0  (training, incarnation 1)")
        let send = try #require(TimedEvent(json: ["event": "send", "peer": "p0", "state": "joining", "step": -1, "time_ms": t]))
        #expect(utc.line(send) == "12:00:01.250  send step - (joining)")
        let rejoin = try #require(TimedEvent(json: ["event": "rejoined", "peer": "p3", "incarnation": 2, "time_ms": t]))
        #expect(utc.line(rejoin) == "12:00:01.250  p3 rejoined (incarnation 2)")
        let catchup = try #require(TimedEvent(json: ["event": "catchup", "peer": "p3", "from_step": 40, "to_step": 50, "time_ms": t]))
        #expect(utc.line(catchup) == "12:00:01.250  catchup p3 from_step=40 to_step=50")
        let untimed = try #require(TimedEvent(json: ["event": "mystery"]))
        #expect(utc.line(untimed) == "--:--:--.---  mystery")
        #expect(TimedEvent(json: ["peer": "p0"]) == nil)
    }

    @Test func statusFilterKeepsMembershipEventsOnly() throws {
        let f = try RunFixture()
        defer { f.remove() }
        let url = f.directory.appendingPathComponent("p0/heartbeats.jsonl")
        var tail = JSONLTail(url: url)
        let objects = tail.readNew()
        let all = LogPrinter(filter: .all, formatter: utc).lines(objects)
        let status = LogPrinter(filter: .status, formatter: utc).lines(objects)
        #expect(all.count == objects.count)
        #expect(status == [
            "12:00:00.050  p1 → alive (was unknown)",
            "12:00:00.050  \(RunFixture.odd) → alive (was unknown)",
            "12:00:03.000  p1 → suspect (was alive)",
            "12:00:04.500  p1 → dead (was suspect)",
            "12:00:06.000  p1 rejoined (incarnation 2)",
            "12:00:06.000  p1 → alive (was dead)",
            "12:00:06.500  checkpoint p0 path=ckpt/5 step=5",
        ])
        #expect(LogPrinter(filter: .recv, formatter: utc).lines(objects).allSatisfy { $0.contains("  recv ") })
        #expect(LogPrinter(filter: .send, formatter: utc).lines(objects).count == RunFixture.steps)
    }

    @Test func unknownPeerListsThePeers() throws {
        let f = try RunFixture()
        defer { f.remove() }
        #expect(throws: RunFolderError.unknownPeer(id: "p9", path: f.directory.path, known: RunFixture.peers)) {
            try LogsCommand.heartbeatFile(run: f.directory, id: "p9")
        }
        let message = RunFolderError.unknownPeer(id: "p9", path: "/r", known: ["p0", "p1"]).description
        #expect(message.contains("peers there: p0, p1"))
        #expect(try LogsCommand.heartbeatFile(run: f.directory, id: "p1").lastPathComponent == "heartbeats.jsonl")
    }

    @Test func tailReadsOnlyCompleteNewLines() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-tail-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        var tail = JSONLTail(url: url)
        #expect(tail.readNew().isEmpty)  // not there yet
        try "{\"event\":\"send\",\"step\":1}\n{\"event\":\"se".write(to: url, atomically: false, encoding: .utf8)
        #expect(tail.readNew().count == 1)
        let h = try FileHandle(forWritingTo: url)
        try h.seekToEnd()
        try h.write(contentsOf: Data("nd\",\"step\":2}\n".utf8))
        try h.close()
        let next = tail.readNew()
        #expect(next.count == 1)
        #expect(next.first?["step"] as? Int == 2)
        #expect(tail.readNew().isEmpty)
    }

    @Test func ageText() {
        #expect(AgeText.format(0.44) == "0.4s")
        #expect(AgeText.format(42) == "42s")
        #expect(AgeText.format(185) == "3m05s")
        #expect(AgeText.format(7800) == "2h10m")
    }
}
