import Foundation

/// Reading a run folder (`runs/<run>/<peer>/rounds.jsonl`, `heartbeats.jsonl`, `summary.json`,
/// `runs/<run>/pids.json`) for `up`, `status` and `report`. Read-only; tolerant of half-written
/// last lines (a peer may be writing while we read).
struct RunFiles {
    let directory: URL

    func peerDirectory(_ id: String) -> URL { directory.appendingPathComponent(id) }

    /// The last complete JSON line of a file, read from its tail only.
    static func lastLine(_ url: URL, tailBytes: Int = 8192) -> [String: Any]? {
        guard let h = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        let start = size > UInt64(tailBytes) ? size - UInt64(tailBytes) : 0
        try? h.seek(toOffset: start)
        guard let data = try? h.readToEnd() else { return nil }
        for line in data.split(separator: 0x0A).reversed() {
            if let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] { return obj }
        }
        return nil
    }

    /// Every JSON line of a file.
    static func lines(_ url: URL) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    func lastRound(_ id: String) -> [String: Any]? { Self.lastLine(peerDirectory(id).appendingPathComponent("rounds.jsonl")) }
    func rounds(_ id: String) -> [[String: Any]] { Self.lines(peerDirectory(id).appendingPathComponent("rounds.jsonl")) }
    func heartbeats(_ id: String) -> [[String: Any]] { Self.lines(peerDirectory(id).appendingPathComponent("heartbeats.jsonl")) }

    func summary(_ id: String) -> [String: Any]? {
        guard let d = FileManager.default.contents(atPath: peerDirectory(id).appendingPathComponent("summary.json").path) else { return nil }
        return try? JSONSerialization.jsonObject(with: d) as? [String: Any]
    }

    /// Seconds since the peer's heartbeat log last changed.
    func heartbeatAge(_ id: String) -> Double? {
        let path = peerDirectory(id).appendingPathComponent("heartbeats.jsonl").path
        guard let m = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return nil }
        return Date().timeIntervalSince(m)
    }

    var pidsURL: URL { directory.appendingPathComponent("pids.json") }

    /// `pids.json`: `{peer id: {"pid": N, "start_ticks": T}}`. An entry of the older form
    /// `{peer id: N}` reads with no start time (and is then never signalled, see `PeerPID`).
    func readPIDs() -> [String: PeerPID] {
        guard let d = FileManager.default.contents(atPath: pidsURL.path),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return [:] }
        return o.compactMapValues { value -> PeerPID? in
            if let n = value as? Int { return Int32(exactly: n).map { PeerPID(pid: $0, startTime: nil) } }
            guard let e = value as? [String: Any], let n = e["pid"] as? Int, let pid = Int32(exactly: n) else { return nil }
            let start = (e["start_ticks"] as? NSNumber).flatMap { UInt64(exactly: $0.int64Value) }
            return PeerPID(pid: pid, startTime: start)
        }
    }

    func writePIDs(_ pids: [String: PeerPID]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let object = pids.mapValues { p -> [String: Any] in
            var e: [String: Any] = ["pid": Int(p.pid)]
            if let s = p.startTime { e["start_ticks"] = NSNumber(value: s) }
            return e
        }
        let d = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        try d.write(to: pidsURL, options: .atomic)
    }
}

/// A process as `pids.json` records it: its pid and its start time, so a pid that the kernel has
/// since given to another process (after the peer died) is told apart from the peer itself.
///
/// The start time is field 22 of `/proc/<pid>/stat` (clock ticks after boot): it never changes
/// for the life of a process, and a new process with the same pid has a later one. Every signal
/// murmur sends to a recorded peer goes through `signal(_:peer:)`, which checks it first. Where
/// the C library has them (glibc 2.36+, Linux 5.3+), it opens a pidfd first and signals through
/// it, so the process checked is the process signalled even if the pid were reused in between.
struct PeerPID: Equatable, Sendable {
    var pid: Int32
    /// nil when the entry was written without one (older murmur, or the process had already gone).
    var startTime: UInt64?

    /// Records a process started just now (reads its start time).
    init(recording pid: Int32) {
        self.pid = pid
        self.startTime = ProcessStat.read(pid)?.startTime
    }

    init(pid: Int32, startTime: UInt64?) {
        self.pid = pid
        self.startTime = startTime
    }

    /// What the recorded pid is now.
    enum State: Equatable, Sendable {
        /// The recorded process, still there.
        case running
        /// No such process (or a zombie waiting to be reaped).
        case gone
        /// Another process has the pid now (its start time differs).
        case reused(found: UInt64)
        /// A live process has the pid, but the entry has no start time to compare.
        case unverified
    }

    var state: State {
        guard pid > 0 else { return .gone }
        #if os(Linux)
        guard let now = ProcessStat.read(pid), now.state != "Z", now.state != "X" else { return .gone }
        guard let recorded = startTime else { return .unverified }
        return now.startTime == recorded ? .running : .reused(found: now.startTime)
        #else
        guard kill(pid, 0) == 0 else { return .gone }
        return .unverified
        #endif
    }

    /// Whether the recorded peer is (probably) still running: a reused pid is not; an entry
    /// without a start time counts as running when some process has the pid.
    var isAlive: Bool {
        switch state {
        case .running, .unverified: return true
        case .gone, .reused: return false
        }
    }

    /// Sends `sig` only after checking the pid still belongs to the recorded process; otherwise
    /// sends nothing and throws a `LaunchError` that says why.
    func signal(_ sig: Int32, peer: String) throws {
        // A pidfd taken before the check names one process for good: what is checked is what is
        // signalled. Without pidfds, the check and kill() are microseconds apart.
        let pidfd = PIDFD.open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        switch state {
        case .running:
            let ok = pidfd >= 0 ? PIDFD.sendSignal(pidfd, sig) : kill(pid, sig) == 0
            guard ok else {
                if errno == ESRCH { throw LaunchError("peer \(peer) (pid \(pid)) exited just now; nothing was signalled") }
                throw LaunchError("kill(\(pid), \(sig)) for peer \(peer) failed: \(String(cString: strerror(errno)))")
            }
        case .gone:
            throw LaunchError("peer \(peer) (pid \(pid)) is not running; nothing was signalled")
        case .reused(let found):
            throw LaunchError("pid \(pid) no longer belongs to peer \(peer): pids.json recorded a process started at tick \(startTime ?? 0) after boot, the process with that pid now started at tick \(found). The entry is stale (the peer died and the pid was reused); refusing to signal it")
        case .unverified:
            throw LaunchError("pids.json has no start time for peer \(peer) (pid \(pid)); murmur cannot tell the peer from another process that reused its pid, so it does not signal it. Check `ps -p \(pid) -o pid,lstart,args` and signal it by hand, or restart the run (`murmur up` records start times)")
        }
    }
}

/// `pidfd_open(2)` and `pidfd_send_signal(2)` from the C library when it has them (glibc 2.36+),
/// looked up at run time so that murmur still runs (with plain `kill`) on an older one.
enum PIDFD {
    private typealias OpenFn = @convention(c) (pid_t, UInt32) -> Int32
    private typealias SendFn = @convention(c) (Int32, Int32, UnsafeMutableRawPointer?, UInt32) -> Int32
    private static let openFn: OpenFn? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pidfd_open").map { unsafeBitCast($0, to: OpenFn.self) }
    private static let sendFn: SendFn? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pidfd_send_signal").map { unsafeBitCast($0, to: SendFn.self) }

    /// Whether signals go through pidfds on this system.
    static var available: Bool { openFn != nil && sendFn != nil }

    /// A pidfd for `pid`, or -1 (no such process, or no pidfd support).
    static func open(_ pid: Int32) -> Int32 {
        guard pid > 0, let openFn, sendFn != nil else { return -1 }
        return openFn(pid, 0)
    }

    /// Sends `sig` to the process of `fd`; false with errno set on failure.
    static func sendSignal(_ fd: Int32, _ sig: Int32) -> Bool {
        guard let sendFn else { errno = ENOSYS; return false }
        return sendFn(fd, sig, nil, 0) == 0
    }
}

/// The fields of `/proc/<pid>/stat` murmur uses.
struct ProcessStat: Equatable, Sendable {
    /// Field 3: R, S, D, T, t, Z, X, …
    var state: Character
    /// Field 22: start time in clock ticks after boot.
    var startTime: UInt64

    /// Reads `/proc/<pid>/stat`; nil when the process does not exist (or on a system without /proc).
    static func read(_ pid: Int32) -> ProcessStat? {
        guard pid > 0, let d = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        return parse(String(decoding: d, as: UTF8.self))
    }

    /// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
    /// spaces and parentheses, so fields are counted from the last ')'.
    static func parse(_ line: String) -> ProcessStat? {
        guard let close = line.lastIndex(of: ")") else { return nil }
        let rest = line[line.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // rest[0] is field 3 (state), so field 22 is rest[19].
        guard rest.count > 19, let state = rest[0].first, let start = UInt64(rest[19]) else { return nil }
        return ProcessStat(state: state, startTime: start)
    }
}
