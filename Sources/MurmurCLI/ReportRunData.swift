import Foundation
import Mesh

/// Problems with a run folder or a peer id, each saying what to do about it.
enum RunFolderError: Error, CustomStringConvertible, Equatable {
    /// The folder does not exist.
    case missing(path: String)
    /// The folder exists but holds no peer sub-folders with logs.
    case empty(path: String)
    /// No peer with this id in the folder.
    case unknownPeer(id: String, path: String, known: [String])
    /// The peer folder exists but its heartbeat log does not (yet).
    case noHeartbeats(id: String, path: String)
    /// The topology file could not be read.
    case topology(path: String, reason: String)

    var description: String {
        switch self {
        case .missing(let path):
            "run folder \(path) does not exist; pass the folder of a run (runs/<run>, the `checkpoint.dir` of its topology), e.g. `murmur report runs/shakespeare-local4`, or start one with `murmur up`"
        case .empty(let path):
            "\(path) holds no peer logs (expected <peer>/rounds.jsonl or <peer>/heartbeats.jsonl); is it the run folder (runs/<run>) and has `murmur up` started its peers?"
        case .unknownPeer(let id, let path, let known):
            "no peer \"\(id)\" in \(path); peers there: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        case .noHeartbeats(let id, let path):
            "peer \(id) has no heartbeat log yet (\(path)); it may not have started: see its peer.log, or add --follow to wait for it"
        case .topology(let path, let reason):
            "cannot read topology \(path): \(reason); pass the run folder directly or a valid --topology file"
        }
    }
}

/// Everything a run folder says about one peer, parsed into typed records.
struct PeerRunData: Sendable {
    var id: String
    var rounds: [RoundRecord]
    var events: [TimedEvent]
    var summary: PeerSummary?
    /// Lines that could not be parsed (usually a half-written last line of a running peer).
    var unreadableLines: Int
    /// Which of the expected files were absent.
    var missingFiles: [String]
    /// Modification time of heartbeats.jsonl, when present.
    var heartbeatsModified: Date?

    /// The newest applied round.
    var lastRound: RoundRecord? { rounds.max { $0.step < $1.step } }

    /// The digest this peer had after `step`, if it logged that step.
    func digest(at step: Int) -> String? { rounds.last { $0.step == step }?.digest }
}

/// A whole run folder: `runs/<run>/<peer>/…` plus `pids.json`.
struct RunData: Sendable {
    var directory: URL
    var peers: [PeerRunData]
    /// Process ids and start times from `pids.json` (present while `murmur up` is running).
    var pids: [String: PeerPID]

    /// The run's name: the folder's last path component.
    var name: String { directory.lastPathComponent }
    var peerIDs: [String] { peers.map(\.id) }

    func peer(_ id: String) -> PeerRunData? { peers.first { $0.id == id } }

    /// Loads every peer sub-folder of `directory`. Throws when the folder is missing or holds no
    /// peer logs; missing or partial files inside a peer folder are recorded, not fatal.
    static func load(_ directory: URL) throws(RunFolderError) -> RunData {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw .missing(path: directory.path)
        }
        let ids = peerFolders(directory)
        guard !ids.isEmpty else { throw .empty(path: directory.path) }
        let files = RunFiles(directory: directory)
        return RunData(directory: directory, peers: ids.map { loadPeer($0, files: files) }, pids: files.readPIDs())
    }

    /// Sub-folders that hold at least one peer file, in natural order (p2 before p10).
    static func peerFolders(_ directory: URL) -> [String] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        let known = ["rounds.jsonl", "heartbeats.jsonl", "summary.json", "peer.log"]
        return names.filter { name in
            known.contains { fm.fileExists(atPath: directory.appendingPathComponent(name).appendingPathComponent($0).path) }
        }.sorted { $0.localizedStandardCompare($1) == .orderedAscending }
    }

    static func loadPeer(_ id: String, files: RunFiles) -> PeerRunData {
        let dir = files.peerDirectory(id)
        var missing: [String] = []
        var bad = 0
        let roundURL = dir.appendingPathComponent("rounds.jsonl")
        let hbURL = dir.appendingPathComponent("heartbeats.jsonl")
        let (roundLines, badRounds) = jsonLines(roundURL)
        let (hbLines, badHB) = jsonLines(hbURL)
        bad = badRounds + badHB
        if roundLines == nil { missing.append("rounds.jsonl") }
        if hbLines == nil { missing.append("heartbeats.jsonl") }
        let summary = files.summary(id).map(PeerSummary.init(json:))
        if summary == nil { missing.append("summary.json") }
        let modified = (try? FileManager.default.attributesOfItem(atPath: hbURL.path))?[.modificationDate] as? Date
        return PeerRunData(id: id, rounds: (roundLines ?? []).compactMap(RoundRecord.init(json:)),
                           events: (hbLines ?? []).compactMap(TimedEvent.init(json:)), summary: summary,
                           unreadableLines: bad, missingFiles: missing, heartbeatsModified: modified)
    }

    /// The JSON objects of a JSONL file and the number of lines that did not parse; nil when the
    /// file is absent.
    static func jsonLines(_ url: URL) -> ([[String: Any]]?, Int) {
        guard let data = FileManager.default.contents(atPath: url.path) else { return (nil, 0) }
        var out: [[String: Any]] = []
        var bad = 0
        for line in data.split(separator: 0x0A) where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            if let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] { out.append(o) } else { bad += 1 }
        }
        return (out, bad)
    }

    /// The run folder of a topology file (its `checkpoint.dir`).
    static func directory(topology path: String) throws(RunFolderError) -> URL {
        do {
            return URL(fileURLWithPath: try TopologyParser.load(path: path).checkpoint.dir)
        } catch {
            throw .topology(path: path, reason: "\(error)")
        }
    }
}
