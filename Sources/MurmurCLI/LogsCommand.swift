import ArgumentParser
import Foundation

/// `murmur logs ID`: one peer's heartbeat log, one readable line per event.
struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print one peer's heartbeat log readably (local times), optionally following it.",
        discussion: """
        Reads RUN/<ID>/heartbeats.jsonl and prints one line per event, with local times:
          12:00:01.250  p1 → suspect (was alive)
          12:00:01.502  recv p2 step 41 digest 65c5af963e9b038d  lag 0  (…)

        --events status keeps membership events only (status, rejoined, checkpoint, catchup). --follow keeps printing new events as they are logged until Ctrl-C. RUN is --run, or the checkpoint dir of --topology (runs/shakespeare-local4 for the default topologies/local4.yaml).

        Examples:
          murmur logs p1 --events status
          murmur logs p0 --run runs/t3 --follow
        """)

    @Argument(help: "The peer id (a sub-folder of the run folder).")
    var id: String

    @Option(name: .customLong("run"), help: ArgumentHelp("The run folder (default: the checkpoint dir of --topology).", valueName: "run-dir"))
    var runDir: String?

    @Option(help: "Topology whose `checkpoint.dir` is the run folder, when --run is not given.")
    var topology = "topologies/local4.yaml"

    @Option(help: "Which events to show: \(EventFilter.allCases.map(\.rawValue).joined(separator: ", ")).")
    var events: EventFilter = .all

    @Flag(name: .shortAndLong, help: "Keep printing new events as they are logged, until Ctrl-C.")
    var follow = false

    func run() throws {
        let dir = try runDir.map { URL(fileURLWithPath: $0) } ?? RunData.directory(topology: topology)
        let url = try LogsCommand.heartbeatFile(run: dir, id: id)
        if !follow && !FileManager.default.fileExists(atPath: url.path) {
            throw RunFolderError.noHeartbeats(id: id, path: url.path)
        }
        let printer = LogPrinter(filter: events, formatter: EventFormatter())
        var tail = JSONLTail(url: url)
        for line in printer.lines(tail.readNew()) { print(line) }
        guard follow else { return }
        fflush(nil)
        let interrupt = InterruptFlag()
        while !interrupt.isSet {
            let new = printer.lines(tail.readNew())
            if !new.isEmpty {
                print(new.joined(separator: "\n"))
                fflush(nil)
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    /// The heartbeat log of peer `id` in `run`. Throws when the folder is missing or `id` is not
    /// one of its peers (the error lists the peers there).
    static func heartbeatFile(run: URL, id: String) throws(RunFolderError) -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: run.path, isDirectory: &isDir), isDir.boolValue else {
            throw .missing(path: run.path)
        }
        let peers = RunData.peerFolders(run)
        guard peers.contains(id) else { throw .unknownPeer(id: id, path: run.path, known: peers) }
        return run.appendingPathComponent(id).appendingPathComponent("heartbeats.jsonl")
    }
}

/// Turns parsed heartbeat events into the filtered, formatted lines of `murmur logs`.
struct LogPrinter: Sendable {
    var filter: EventFilter
    var formatter: EventFormatter

    func lines(_ objects: [[String: Any]]) -> [String] {
        objects.compactMap(TimedEvent.init(json:)).filter { filter.keeps($0.event) }.map(formatter.line)
    }
}

/// Incremental reader of a JSONL file that another process appends to: each call returns the
/// complete lines added since the previous one (a half-written last line waits for the next call).
/// Starts over when the file shrinks (it was replaced).
struct JSONLTail {
    let url: URL
    private(set) var offset: UInt64 = 0

    init(url: URL) { self.url = url }

    mutating func readNew() -> [[String: Any]] {
        guard let h = try? FileHandle(forReadingFrom: url) else { return [] }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        if size < offset { offset = 0 }
        try? h.seek(toOffset: offset)
        guard let data = try? h.readToEnd(), let lastNewline = data.lastIndex(of: 0x0A) else { return [] }
        offset += UInt64(lastNewline - data.startIndex + 1)
        return data[data.startIndex...lastNewline].split(separator: 0x0A).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }
}

/// Set once SIGINT or SIGTERM arrives, so `--follow` can end its loop and exit cleanly.
final class InterruptFlag: @unchecked Sendable {
    // `flag` is guarded by `lock`; `sources` is only touched in init.
    private let lock = NSLock()
    private var flag = false
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.set() }
            source.resume()
            sources.append(source)
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    private func set() { lock.lock(); flag = true; lock.unlock() }
}
