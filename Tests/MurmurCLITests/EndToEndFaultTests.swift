import Foundation
import Testing

/// Four real `murmur peer` processes (`nano`) on loopback, with real faults: kill -9 and restart
/// (replay and snapshot catch-up) and SIGSTOP/SIGCONT. Every wait is bounded; every process started
/// is killed at the end.
@Suite(.serialized) struct EndToEndFaultTests {
    /// The built `murmur` binary next to the test bundle (swift build builds it with the tests).
    static var binary: String? {
        // The murmur of the same build as this test bundle first (any --scratch-path), else .build/debug.
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = here.deletingLastPathComponent()
        for _ in 0..<4 {
            let sibling = dir.appendingPathComponent("murmur").path
            if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = root.appendingPathComponent(".build/debug/murmur").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }

    final class Cluster {
        let dir: URL
        let topology: URL
        let binary: String
        var processes: [String: Process] = [:]
        let peers = ["p0", "p1", "p2", "p3"]

        init(binary: String, steps: Int, basePort: Int) throws {
            self.binary = binary
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-e2e-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let text = (0..<3000).map { i in "Line \(i): what's in a name? that which we call a rose by any other word would smell as sweet.\n" }.joined()
            try text.write(to: dir.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
            var yaml = """
            run: e2e-\(basePort)
            seed: 3
            model: { preset: nano }
            data: { corpus: file, batch_size: 4, file: \(dir.appendingPathComponent("corpus.txt").path) }
            optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }
            steps: \(steps)
            round: { deadline: adaptive, max_deadline: 5s }
            heartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }
            checkpoint: { every: 10, keep: 3, dir: \(dir.appendingPathComponent("run").path) }
            security: { curve: false, keys: \(dir.appendingPathComponent("keys").path) }
            peers:

            """
            for (i, p) in peers.enumerated() {
                yaml += "  - { id: \(p), pub: \"tcp://127.0.0.1:\(basePort + 10 * i)\", sync: \"tcp://127.0.0.1:\(basePort + 10 * i + 1)\" }\n"
            }
            topology = dir.appendingPathComponent("e2e.yaml")
            try yaml.write(to: topology, atomically: true, encoding: .utf8)
        }

        deinit {
            for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            if ProcessInfo.processInfo.environment["MURMUR_KEEP_E2E"] == nil { try? FileManager.default.removeItem(at: dir) }
        }

        func start(_ id: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["peer", "--topology", topology.path, "--id", id, "--eval-batches", "2"]
            let log = dir.appendingPathComponent("\(id).out")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let h = try FileHandle(forWritingTo: log)
            h.seekToEndOfFile()
            p.standardOutput = h
            p.standardError = h
            try p.run()
            processes[id] = p
        }

        func signal(_ id: String, _ sig: Int32) { if let p = processes[id] { kill(p.processIdentifier, sig) } }

        func rounds(_ id: String) -> [[String: Any]] { lines(dir.appendingPathComponent("run/\(id)/rounds.jsonl")) }
        func events(_ id: String) -> [[String: Any]] { lines(dir.appendingPathComponent("run/\(id)/heartbeats.jsonl")) }

        func lines(_ url: URL) -> [[String: Any]] {
            guard let d = FileManager.default.contents(atPath: url.path) else { return [] }
            return d.split(separator: 0x0A).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        }

        func lastStep(_ id: String) -> Int { rounds(id).compactMap { $0["step"] as? Int }.max() ?? -1 }

        /// Polls `condition` every 50 ms for at most `seconds`.
        @discardableResult
        func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return condition()
        }

        func allExited() -> Bool { processes.values.allSatisfy { !$0.isRunning } }

        /// Final digest of each peer (its last rounds line).
        func finalDigests() -> [String: String] {
            var out: [String: String] = [:]
            for id in peers {
                if let last = rounds(id).max(by: { ($0["step"] as? Int ?? -1) < ($1["step"] as? Int ?? -1) }) {
                    out[id] = "\(last["step"] ?? "?"):\(last["digest"] ?? "?")"
                }
            }
            return out
        }

        func catchUps(_ id: String) -> [[String: Any]] { events(id).filter { $0["event"] as? String == "catchup" && $0["result"] as? String == "done" } }

        /// Milliseconds from `t0` (ms since 1970) to the first event of `observer`'s log matching `match`.
        func msUntil(_ observer: String, after t0: Int, _ match: ([String: Any]) -> Bool) -> Int? {
            events(observer).first { ($0["time_ms"] as? Int ?? 0) >= t0 && match($0) }.map { ($0["time_ms"] as! Int) - t0 }
        }

        /// A one-line measurement for the test output: detection by p0 and catch-up of `id`.
        func report(_ id: String, faultAt t0: Int, restartAt t1: Int?) -> String {
            let suspect = msUntil("p0", after: t0) { $0["from"] as? String == id && $0["status"] as? String == "suspect" }
            let dead = msUntil("p0", after: t0) { $0["from"] as? String == id && $0["status"] as? String == "dead" }
            let caught = t1.flatMap { t in msUntil(id, after: t) { $0["event"] as? String == "catchup" && $0["result"] as? String == "done" } }
            let done = catchUps(id).last
            return "measured: \(id) suspect after \(suspect.map { "\($0) ms" } ?? "-"), dead after \(dead.map { "\($0) ms" } ?? "-"); "
                + "caught up \(caught.map { "\($0) ms after restart" } ?? "-") by \(done?["mode"] ?? "-") at step \(done?["step"] ?? "-"); "
                + "longest survivor wait \(longestWait(excluding: id)) ms"
        }

        /// Longest wait of any survivor's round (ms).
        func longestWait(excluding: String) -> Int {
            peers.filter { $0 != excluding }.flatMap { rounds($0).compactMap { $0["waited_ms"] as? Int } }.max() ?? 0
        }
    }

    /// Below Linux's ephemeral range (see LoopbackTrainingTests.basePort): 21000–26340.
    static func basePort() -> Int { 21000 + Int(getpid() % 250) * 20 }

    @Test func killNineAndQuickRestartCatchesUpByReplay() throws {
        guard let binary = Self.binary else { print("SKIPPED: .build/debug/murmur not built"); return }
        let c = try Cluster(binary: binary, steps: 260, basePort: Self.basePort())
        for p in c.peers { try c.start(p) }
        #expect(c.wait(60) { c.lastStep("p3") >= 40 }, "cluster did not reach step 40")
        let t0 = Int(Date().timeIntervalSince1970 * 1000)
        c.signal("p3", SIGKILL)
        Thread.sleep(forTimeInterval: 0.3)
        let t1 = Int(Date().timeIntervalSince1970 * 1000)
        try c.start("p3")
        #expect(c.wait(120) { c.allExited() }, "run did not finish")
        let digests = c.finalDigests()
        #expect(Set(digests.values).count == 1 && digests.count == 4, "\(digests)")
        let done = c.catchUps("p3")
        #expect(done.contains { $0["mode"] as? String == "replay" }, "p3 catch-ups: \(done)")
        // Survivors never stall longer than the dead timeout plus a step.
        #expect(c.longestWait(excluding: "p3") <= 1500 + 1000)
        print(c.report("p3", faultAt: t0, restartAt: t1))
    }

    @Test func restartAfterMoreThanRStepsCatchesUpBySnapshot() throws {
        guard let binary = Self.binary else { print("SKIPPED: .build/debug/murmur not built"); return }
        let c = try Cluster(binary: binary, steps: 400, basePort: Self.basePort() + 100)
        for p in c.peers { try c.start(p) }
        #expect(c.wait(60) { c.lastStep("p3") >= 30 })
        let t0 = Int(Date().timeIntervalSince1970 * 1000)
        c.signal("p3", SIGKILL)
        let killedAt = c.lastStep("p3")
        // Replay covers 64 steps; wait until the others are well past that from p3's checkpoint.
        #expect(c.wait(60) { c.lastStep("p0") >= killedAt + 90 })
        let t1 = Int(Date().timeIntervalSince1970 * 1000)
        try c.start("p3")
        #expect(c.wait(120) { c.allExited() }, "run did not finish")
        let digests = c.finalDigests()
        #expect(Set(digests.values).count == 1 && digests.count == 4, "\(digests)")
        #expect(c.catchUps("p3").contains { $0["mode"] as? String == "snapshot" }, "p3 catch-ups: \(c.catchUps("p3"))")
        // The others saw p3 die and come back with a new incarnation.
        #expect(c.events("p0").contains { $0["from"] as? String == "p3" && $0["status"] as? String == "dead" })
        #expect(c.events("p0").contains { $0["from"] as? String == "p3" && $0["status"] as? String == "rejoined" })
        print(c.report("p3", faultAt: t0, restartAt: t1))
    }

    @Test func stoppedLongerThanTheDeadTimeoutIsDeclaredDeadThenRepairs() throws {
        guard let binary = Self.binary else { print("SKIPPED: .build/debug/murmur not built"); return }
        let c = try Cluster(binary: binary, steps: 300, basePort: Self.basePort() + 200)
        for p in c.peers { try c.start(p) }
        #expect(c.wait(60) { c.lastStep("p3") >= 30 })
        let t0 = Int(Date().timeIntervalSince1970 * 1000)
        c.signal("p3", SIGSTOP)
        #expect(c.wait(20) { c.events("p0").contains { $0["from"] as? String == "p3" && $0["status"] as? String == "dead" } },
                "p3 was not declared dead")
        Thread.sleep(forTimeInterval: 0.5)
        let t1 = Int(Date().timeIntervalSince1970 * 1000)
        c.signal("p3", SIGCONT)
        #expect(c.wait(120) { c.allExited() }, "run did not finish")
        let digests = c.finalDigests()
        #expect(Set(digests.values).count == 1 && digests.count == 4, "\(digests)")
        #expect(!c.catchUps("p3").isEmpty, "p3 never caught up")
        print(c.report("p3", faultAt: t0, restartAt: t1))
    }

    @Test func sigtermCheckpointsSaysByeAndExitsZero() throws {
        guard let binary = Self.binary else { print("SKIPPED: .build/debug/murmur not built"); return }
        let c = try Cluster(binary: binary, steps: 300, basePort: Self.basePort() + 300)
        for p in c.peers { try c.start(p) }
        #expect(c.wait(60) { c.lastStep("p1") >= 25 })
        c.signal("p1", SIGTERM)
        #expect(c.wait(20) { !(c.processes["p1"]?.isRunning ?? true) }, "p1 did not stop")
        #expect(c.processes["p1"]?.terminationStatus == 0)
        #expect(c.events("p1").contains { $0["event"] as? String == "checkpoint" && $0["reason"] as? String == "stopped by signal" })
        // The others saw it leave (BYE), not die.
        #expect(c.wait(10) { c.events("p0").contains { $0["from"] as? String == "p1" && $0["status"] as? String == "left" } })
        #expect(c.wait(120) { c.allExited() }, "run did not finish")
        let others = ["p0", "p2", "p3"].compactMap { c.finalDigests()[$0] }
        #expect(Set(others).count == 1 && others.count == 3, "\(others)")
    }

    @Test func killingUpWithSigkillLeavesNoOrphanPeer() throws {
        guard let binary = Self.binary else { print("SKIPPED: .build/debug/murmur not built"); return }
        let c = try Cluster(binary: binary, steps: 5000, basePort: Self.basePort() + 400)
        let up = Process()
        up.executableURL = URL(fileURLWithPath: binary)
        up.arguments = ["up", c.topology.path, "--plain"]
        up.currentDirectoryURL = c.dir
        up.standardOutput = FileHandle.nullDevice
        up.standardError = FileHandle.nullDevice
        try up.run()
        defer { if up.isRunning { kill(up.processIdentifier, SIGKILL) } }
        let pidsURL = c.dir.appendingPathComponent("run/pids.json")
        func pids() -> [Int32] {
            guard let d = FileManager.default.contents(atPath: pidsURL.path),
                  let o = try? JSONSerialization.jsonObject(with: d) as? [String: [String: Any]] else { return [] }
            // {"p0": {"pid": N, "start_ticks": T}}: every entry carries the process start time.
            return o.values.compactMap { e in e["start_ticks"] is NSNumber ? (e["pid"] as? Int).map(Int32.init) : nil }
        }
        #expect(c.wait(60) { pids().count == 4 && c.lastStep("p0") >= 5 }, "cluster did not start")
        let children = pids()
        defer { for p in children where kill(p, 0) == 0 { kill(p, SIGKILL) } }
        kill(up.processIdentifier, SIGKILL)
        // Peers watch their parent: they stop gracefully (checkpoint, BYE) within a couple of seconds.
        #expect(c.wait(15) { children.allSatisfy { kill($0, 0) != 0 } }, "orphans: \(children.filter { kill($0, 0) == 0 })")
        #expect(c.peers.allSatisfy { id in c.events(id).contains { $0["event"] as? String == "checkpoint" && $0["reason"] as? String == "stopped by signal" } })
    }
}
