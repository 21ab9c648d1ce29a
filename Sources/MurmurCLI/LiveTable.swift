import Foundation

/// The live per-peer table of `murmur up`: refreshed in place on a terminal, a block of plain
/// lines every few seconds otherwise. Reads the peers' rounds.jsonl incrementally.
final class LiveTable {
    let files: RunFiles
    let peers: [String]
    let totalSteps: Int
    let tty: Bool
    private var offsets: [String: UInt64] = [:]
    private var digests: [String: [Int: String]] = [:]
    private var last: [String: [String: Any]] = [:]
    private var printedLines = 0
    private var lastPlain = Date.distantPast

    init(files: RunFiles, peers: [String], totalSteps: Int, tty: Bool) {
        self.files = files
        self.peers = peers
        self.totalSteps = totalSteps
        self.tty = tty
    }

    /// Reads what the peers appended since the last call.
    private func ingest() {
        for id in peers {
            let url = files.peerDirectory(id).appendingPathComponent("rounds.jsonl")
            guard let h = try? FileHandle(forReadingFrom: url) else { continue }
            defer { try? h.close() }
            let start = offsets[id] ?? 0
            try? h.seek(toOffset: start)
            guard let data = try? h.readToEnd(), !data.isEmpty else { continue }
            // Only consume complete lines; a half-written one is read next time.
            guard let lastNewline = data.lastIndex(of: 0x0A) else { continue }
            offsets[id] = start + UInt64(lastNewline - data.startIndex + 1)
            for line in data[data.startIndex...lastNewline].split(separator: 0x0A) {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { continue }
                last[id] = o
                if let s = o["step"] as? Int, let d = o["digest"] as? String {
                    digests[id, default: [:]][s] = d
                    if s % 50 == 0 { digests[id] = digests[id]!.filter { $0.key > s - 400 } }
                }
            }
        }
    }

    /// Whether every peer that reached the newest common step has the same digest there.
    func agreement() -> String {
        let reached = peers.compactMap { digests[$0]?.keys.max() }
        guard reached.count == peers.count, let common = reached.min() else { return "-" }
        let ds = Set(peers.compactMap { digests[$0]?[common] })
        return ds.count == 1 ? "yes @\(common)" : "NO @\(common)"
    }

    /// Column widths; negative = left-aligned.
    static let widths = [-6, -9, 10, 8, -16, -10, 11, 7]

    static func row(_ cells: [String]) -> String {
        zip(cells, widths).map { cell, w in
            let pad = String(repeating: " ", count: max(0, abs(w) - cell.count))
            return w < 0 ? cell + pad : pad + cell
        }.joined(separator: " ")
    }

    func render(exitCodes: [String: Int32], final: Bool = false) {
        ingest()
        if !tty && !final && Date().timeIntervalSince(lastPlain) < 5 { return }
        lastPlain = Date()
        let agree = agreement()
        var rows = [Self.row(["peer", "status", "step", "loss", "digest", "agrees", "bytes/step", "hb age"])]
        for id in peers {
            let r = last[id]
            let status: String
            if let code = exitCodes[id] { status = code == 0 ? "finished" : "exit \(code)" } else { status = r == nil ? "starting" : "training" }
            let step = (r?["step"] as? Int).map { "\($0 + 1)/\(totalSteps)" } ?? "-"
            let loss = (r?["loss"] as? Double).map { String(format: "%.4f", $0) } ?? "-"
            let digest = (r?["digest"] as? String) ?? "-"
            let bytes = (r?["bytes_out"] as? Int).map(String.init) ?? "-"
            let age = files.heartbeatAge(id).map { String(format: "%.1fs", $0) } ?? "-"
            rows.append(Self.row([id, status, step, loss, digest, agree, bytes, age]))
        }
        if tty {
            var out = ""
            if printedLines > 0 { out += "\u{1B}[\(printedLines)A" }
            for r in rows { out += "\u{1B}[2K" + r + "\n" }
            FileHandle.standardOutput.write(Data(out.utf8))
            printedLines = rows.count
        } else {
            print(rows.joined(separator: "\n"))
            fflush(nil)
        }
    }
}

/// The end-of-run summary of `murmur up`, from the same analysis as `murmur report`.
struct RunSummary {
    let files: RunFiles
    let peers: [String]

    func text(exitCodes: [String: Int32]) -> String {
        let data = peers.map { RunData.loadPeer($0, files: files) }
        var lines = ["", "summary"]
        let vals = data.compactMap { $0.summary?.valLoss }
        if !vals.isEmpty {
            lines.append(String(format: "  validation loss: %.4f nats/byte (mean of %d peers; min %.4f, max %.4f)",
                                vals.reduce(0, +) / Double(vals.count), vals.count, vals.min()!, vals.max()!))
        }
        let bytes = BytesPerStep(data)
        if let ratio = bytes.denseRatio {
            lines.append(String(format: "  bytes per step per peer: %.0f sent (reference DeMo accounting %.0f, dense AdamW %.0f): %.1f× less than dense",
                                bytes.real, bytes.reference, bytes.dense, ratio))
        }
        lines.append("  faults seen: " + FaultCounts(data).text)
        let agreement = DigestAgreement(data)
        if let step = agreement.step, agreement.all, agreement.agrees.count == peers.count {
            let digest = data.first?.digest(at: step) ?? "-"
            lines.append("  digests agree: yes (\(digest) at step \(step + 1) on all \(peers.count) peers)")
        } else {
            let detail = agreement.step.map { s in data.map { "\($0.id)=\($0.digest(at: s) ?? "-")" }.joined(separator: " ") + " at step \(s + 1)" } ?? "no rounds"
            lines.append("  digests agree: NO (\(detail))")
        }
        let alone = data.compactMap { p in p.summary.flatMap { $0.stepsAlone > 0 ? "\(p.id) \($0.stepsAlone)" : nil } }
        if !alone.isEmpty {
            lines.append("  trained alone (cut off from every other peer, the partition failsafe): " + alone.joined(separator: ", ") + " step(s)")
        }
        for p in data {
            if let s = p.summary, s.success == false, let why = s.outcome { lines.append("  \(p.id): \(why)") }
        }
        for suspect in ContentSuspects(data).lines { lines.append("  updates out of line: " + suspect) }
        let failed = exitCodes.filter { $0.value != 0 }
        if !failed.isEmpty {
            lines.append("  failed peers: " + failed.map { "\($0.key) (exit \($0.value), see \(files.peerDirectory($0.key).path)/peer.log)" }.joined(separator: ", "))
        }
        lines.append("  logs: \(files.directory.path)/<peer>/{rounds.jsonl,heartbeats.jsonl,peer.log,summary.json}")
        return lines.joined(separator: "\n")
    }
}
