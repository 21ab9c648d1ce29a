import Foundation
import Testing
@testable import MurmurCLI

/// Issue 16, item 5: pids.json records each process's start time, and nothing is signalled when the
/// pid now belongs to another process.
@Suite struct PIDFileTests {
    static func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-pids-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// A child that does nothing for a minute unless signalled.
    static func sleeper() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["60"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits at most `seconds` for `p` to exit.
    static func waitExit(_ p: Process, _ seconds: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(10_000) }
        return !p.isRunning
    }

    @Test func statLineParsesFromTheLastParenthesis() {
        // A command name with spaces and parentheses must not shift the fields.
        let line = "4242 (evil) 1 2 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n"
        #expect(ProcessStat.parse(line) == ProcessStat(state: "S", startTime: 987654))
        #expect(ProcessStat.parse("1 (init) S 0 1") == nil)
        #expect(ProcessStat.parse("garbage") == nil)
        let me = ProcessStat.read(getpid())
        #expect(me != nil && me!.startTime > 0)
        #expect(me?.state == "R" || me?.state == "S")
    }

    @Test func aPidWhoseStartTimeDoesNotMatchIsRefusedAndNotSignalled() throws {
        let p = try Self.sleeper()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let recorded = PeerPID(recording: p.processIdentifier)
        let start = try #require(recorded.startTime)
        #expect(recorded.state == .running)
        // As if the peer had died and the kernel had given its pid to this sleep: another start time.
        let stale = PeerPID(pid: p.processIdentifier, startTime: start - 1)
        #expect(stale.state == .reused(found: start))
        #expect(!stale.isAlive)
        let refusal = #expect(throws: LaunchError.self) { try stale.signal(SIGTERM, peer: "p2") }
        #expect(refusal?.description.contains("no longer belongs to peer p2") == true)
        #expect(refusal?.description.contains("refusing to signal") == true)
        #expect(p.isRunning, "the refused SIGTERM reached the process")
        // The right entry is signalled; it dies of SIGKILL, so the SIGTERM above was never sent.
        try recorded.signal(SIGKILL, peer: "p2")
        #expect(Self.waitExit(p))
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL)
        #expect(recorded.state == .gone)
        #expect(throws: LaunchError.self) { try recorded.signal(SIGKILL, peer: "p2") }
    }

    @Test func aPidfdKeepsNamingTheProcessItWasOpenedFor() throws {
        #if os(Linux)
        // glibc 2.36 (Debian 12) has pidfd_open; without it murmur falls back to kill().
        guard PIDFD.available else { print("NOTE: no pidfd_open in this C library; kill() fallback in use"); return }
        let p = try Self.sleeper()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let fd = PIDFD.open(p.processIdentifier)
        #expect(fd >= 0)
        defer { if fd >= 0 { close(fd) } }
        kill(p.processIdentifier, SIGKILL)
        #expect(Self.waitExit(p))
        // The process is gone (and reaped): the pidfd can no longer reach anything, even if the
        // kernel hands the pid to a new process meanwhile.
        #expect(!PIDFD.sendSignal(fd, 0))
        #expect(errno == ESRCH)
        #endif
    }

    @Test func anEntryWithoutAStartTimeIsNeverSignalled() throws {
        let p = try Self.sleeper()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let legacy = PeerPID(pid: p.processIdentifier, startTime: nil)
        #expect(legacy.state == .unverified)
        let refusal = #expect(throws: LaunchError.self) { try legacy.signal(SIGKILL, peer: "p1") }
        #expect(refusal?.description.contains("no start time") == true)
        #expect(p.isRunning)
    }

    @Test func pidsJSONCarriesStartTimesAndReadsTheOldFormat() throws {
        let dir = try Self.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let files = RunFiles(directory: dir)
        let written = ["p0": PeerPID(pid: 123, startTime: 4_567_890_123), "p1": PeerPID(pid: 77, startTime: nil)]
        try files.writePIDs(written)
        #expect(files.readPIDs() == written)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: files.pidsURL)) as? [String: [String: Any]])
        #expect(json["p0"]?["pid"] as? Int == 123)
        #expect((json["p0"]?["start_ticks"] as? NSNumber)?.uint64Value == 4_567_890_123)
        // Written by an older murmur: {"p0": 123}.
        try Data(#"{"p0": 123, "p1": "junk"}"#.utf8).write(to: files.pidsURL)
        #expect(files.readPIDs() == ["p0": PeerPID(pid: 123, startTime: nil)])
    }

    @Test func killCommandRefusesAStalePidFile() throws {
        let dir = try Self.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let p = try Self.sleeper()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let topology = dir.appendingPathComponent("t.yaml")
        try """
        run: pidtest
        seed: 3
        model: { preset: nano }
        data: { corpus: shakespeare, batch_size: 4 }
        optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }
        steps: 10
        round: { deadline: adaptive, max_deadline: 5s }
        heartbeat: { interval: 100ms, suspect_after: 500ms, dead_after: 1500ms }
        checkpoint: { every: 5, keep: 1, dir: \(dir.appendingPathComponent("run").path) }
        peers:
          - { id: p0, pub: "tcp://127.0.0.1:7900", sync: "tcp://127.0.0.1:7901" }
          - { id: p1, pub: "tcp://127.0.0.1:7910", sync: "tcp://127.0.0.1:7911" }
        """.write(to: topology, atomically: true, encoding: .utf8)
        let files = RunFiles(directory: dir.appendingPathComponent("run"))
        let start = try #require(PeerPID(recording: p.processIdentifier).startTime)
        try files.writePIDs(["p0": PeerPID(pid: p.processIdentifier, startTime: start + 100)])
        var cmd = try KillCommand.parse(["p0", "--topology", topology.path])
        do { try cmd.run(); Issue.record("kill signalled a reused pid") } catch {
            #expect("\(error)".contains("no longer belongs to peer p0"), "\(error)")
        }
        #expect(p.isRunning)
        // With the right start time the same command works.
        try files.writePIDs(["p0": PeerPID(pid: p.processIdentifier, startTime: start)])
        cmd = try KillCommand.parse(["p0", "--topology", topology.path])
        try cmd.run()
        #expect(Self.waitExit(p))
        #expect(p.terminationStatus == SIGKILL)
    }
}
