import Foundation

/// The self-contained HTML report of a run: a header of key facts, a per-peer table, notes about
/// missing or partial files, and three inline SVG figures. No scripts, no external resources.
struct ReportHTML {
    let run: RunData
    /// When the report was generated (shown in the header).
    var generated = Date()

    /// Final digests: from summary.json when every peer has one, otherwise each peer's last round.
    struct FinalDigests {
        var byPeer: [String: (step: Int, digest: String)]
        var agree: Bool { Set(byPeer.values.map(\.digest)).count == 1 && Set(byPeer.values.map(\.step)).count == 1 }

        init(_ run: RunData) {
            byPeer = [:]
            for p in run.peers {
                if let s = p.summary, let d = s.digest, let n = s.steps {
                    byPeer[p.id] = (n, d)
                } else if let r = p.lastRound {
                    byPeer[p.id] = (r.step + 1, r.digest)
                }
            }
        }
    }

    /// "31.2×", or "n/a".
    static func ratio(_ v: Double?) -> String { v.map { String(format: "%.1f×", $0) } ?? "n/a" }

    func render() -> String {
        let figures = ReportFigures(run: run)
        let all = [figures.loss(), figures.bytes(), ReportSwimlane(run: run).figure()]
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>Murmur report: \(Markup.escape(run.name))</title>
        <style>\(Self.css)</style></head><body>
        <h1>Murmur run <code>\(Markup.escape(run.name))</code></h1>
        <p class="meta">\(Markup.escape(run.directory.path)) · generated \(Markup.escape(ISO8601DateFormatter().string(from: generated)))\(Markup.escape(span()))</p>

        """
        html += header()
        html += peerTable()
        html += notes()
        for f in all {
            html += "<section><h2>\(Markup.escape(f.title))</h2><p class=\"caption\">\(Markup.escape(f.caption))</p>\n"
            if let svg = f.svg { html += svg + "\n" }
            if let note = f.note { html += "<p class=\"note\">\(Markup.escape(note))</p>\n" }
            html += "</section>\n"
        }
        html += membershipEvents()
        return html + "</body></html>\n"
    }

    /// " · 12:00:01 – 12:03:10 (189 s)" from the first and last logged time.
    func span() -> String {
        let times = run.peers.flatMap { $0.events.compactMap(\.timeMs) + $0.rounds.compactMap(\.timeMs) }
        guard let a = times.min(), let b = times.max() else { return "" }
        let f = EventFormatter(timeZone: .current)
        return " · logged \(f.time(a).prefix(8)) – \(f.time(b).prefix(8)) local (\(String(format: "%.0f", Double(b - a) / 1000)) s)"
    }

    func header() -> String {
        let bytes = BytesPerStep(run.peers)
        let finals = FinalDigests(run)
        let faults = FaultCounts(run.peers)
        let steps = finals.byPeer.values.map(\.step)
        let stepsText = steps.isEmpty ? "none logged" : (Set(steps).count == 1 ? "\(steps[0])" : "\(steps.min()!)–\(steps.max()!) (peers differ)")
        let digestText: String
        if finals.byPeer.isEmpty {
            digestText = "<span class=\"warn\">no digests logged</span>"
        } else if finals.agree, let d = finals.byPeer.values.first {
            digestText = "<span class=\"ok\">yes</span>: <code>\(Markup.escape(d.digest))</code> after step \(d.step) on all \(finals.byPeer.count) peers"
        } else {
            digestText = "<span class=\"bad\">NO</span>: " + run.peerIDs.compactMap { id in
                finals.byPeer[id].map { "\(Markup.escape(id)) <code>\(Markup.escape($0.digest))</code>@\($0.step)" }
            }.joined(separator: ", ")
        }
        let vals = run.peers.compactMap { p in p.summary?.valLoss.map { (p.id, $0) } }
        let valText = vals.isEmpty ? "not yet (no summary.json)" : vals.map { "\(Markup.escape($0.0)) \(String(format: "%.4f", $0.1))" }.joined(separator: " · ")
        let rows: [(String, String)] = [
            ("Peers", "\(run.peers.count): " + run.peerIDs.map { "<span class=\"peer\" style=\"border-color:\(color($0))\">\(Markup.escape($0))</span>" }.joined(separator: " ")),
            ("Steps", stepsText),
            ("Final validation loss", valText + (vals.isEmpty ? "" : " nats/byte")),
            ("Bytes per step", "\(ReportFigures.byteLabel(bytes.real.rounded())) sent · \(ReportFigures.byteLabel(bytes.reference.rounded())) reference DeMo accounting · \(ReportFigures.byteLabel(bytes.dense.rounded())) dense AdamW (mean per peer and step)"),
            ("Bytes ratio", "dense AdamW / sent = <b>\(Self.ratio(bytes.denseRatio))</b> · reference / sent = \(Self.ratio(bytes.referenceRatio))"),
            ("Final digests agree", digestText),
            ("Faults", Markup.escape(faults.text)),
            ("Content suspects", { () -> String in
                let lines = ContentSuspects(run.peers).lines
                return lines.isEmpty ? "none (no peer marked suspect-content)"
                    : lines.map { "<span class=\"bad\">\(Markup.escape($0))</span>" }.joined(separator: "<br>")
            }()),
        ]
        return "<table class=\"facts\">\n" + rows.map { "<tr><th>\($0.0)</th><td>\($0.1)</td></tr>" }.joined(separator: "\n") + "\n</table>\n"
    }

    func color(_ peer: String) -> String { ReportFigures(run: run).color(peer) }

    func peerTable() -> String {
        let agreement = DigestAgreement(run.peers)
        let at = agreement.step.map { " @\($0)" } ?? ""
        var out = "<table class=\"peers\"><tr><th>peer</th><th>steps</th><th>last train loss</th><th>val loss</th><th>digest</th><th>agrees\(at)</th><th>sent B/step</th><th>stopped early</th></tr>\n"
        for p in run.peers {
            let last = p.lastRound
            let sent = p.rounds.isEmpty ? "-" : String(p.rounds.reduce(0) { $0 + $1.bytesOut } / p.rounds.count)
            let agrees = agreement.agrees[p.id].map { $0 ? "<span class=\"ok\">yes</span>" : "<span class=\"bad\">NO</span>" } ?? "-"
            let steps: Int? = p.summary?.steps ?? last.map { $0.step + 1 }
            let trainLoss: String = last?.loss.map { String(format: "%.4f", $0) } ?? "-"
            let valLoss: String = p.summary?.valLoss.map { String(format: "%.4f", $0) } ?? "-"
            let digest: String = p.summary?.digest ?? last?.digest ?? "-"
            let early: String = p.summary.map { $0.stoppedEarly ? "yes" : "no" } ?? "-"
            let swatch = "<span class=\"peer\" style=\"border-color:\(color(p.id))\">\(Markup.escape(p.id))</span>"
            let cells: [String] = [swatch, steps.map(String.init) ?? "-", trainLoss, valLoss,
                                   "<code>\(Markup.escape(digest))</code>", agrees, sent, early]
            out += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        return out + "</table>\n"
    }

    /// Notes about missing or partly unreadable files, so a partial report is never silent.
    func notes() -> String {
        var items: [String] = []
        for p in run.peers {
            if !p.missingFiles.isEmpty {
                let why = p.missingFiles == ["summary.json"] ? " (the peer has not finished, or stopped without a summary)" : ""
                items.append("\(p.id): no \(p.missingFiles.joined(separator: ", "))\(why)")
            }
            if p.unreadableLines > 0 {
                items.append("\(p.id): \(p.unreadableLines) unreadable line(s) skipped (a peer still writing leaves a half-written last line)")
            }
        }
        if !run.pids.isEmpty && run.pids.values.contains(where: \.isAlive) {
            items.append("the run is still in progress (pids.json lists live peers); re-run `murmur report` when it has finished")
        }
        guard !items.isEmpty else { return "" }
        return "<div class=\"notes\"><b>Notes</b><ul>" + items.map { "<li>\(Markup.escape($0))</li>" }.joined() + "</ul></div>\n"
    }

    /// Every membership or recovery event (status, rejoined, checkpoint, catchup) of every peer's
    /// log in time order, at most `limit` rows.
    func membershipEvents(limit: Int = 300) -> String {
        let formatter = EventFormatter()
        var all: [(peer: String, event: TimedEvent)] = []
        for p in run.peers { all += p.events.filter(\.event.isMembership).map { (p.id, $0) } }
        all.sort { ($0.event.timeMs ?? 0) < ($1.event.timeMs ?? 0) }
        var out = "<section><h2>Membership events</h2><p class=\"caption\">Status changes, rejoins, checkpoints and catch-ups in every peer's heartbeats.jsonl, by time (local). The same per peer: <code>murmur logs ID --events status</code>.</p>\n"
        guard !all.isEmpty else { return out + "<p class=\"note\">No membership events logged.</p></section>\n" }
        out += "<table class=\"events\"><tr><th>time</th><th>logged by</th><th>event</th></tr>\n"
        for (peer, e) in all.prefix(limit) {
            let time = e.timeMs.map(formatter.time) ?? "-"
            out += "<tr><td><code>\(time)</code></td><td>\(Markup.escape(peer))</td><td>\(Markup.escape(formatter.describe(e.event)))</td></tr>\n"
        }
        out += "</table>\n"
        if all.count > limit { out += "<p class=\"note\">… and \(all.count - limit) more events.</p>\n" }
        return out + "</section>\n"
    }

    static let css = """
    body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px 32px;color:#222;max-width:1300px}
    h1{font-size:24px;margin:0 0 4px}h1 code{font-size:inherit}h2{font-size:18px;margin:28px 0 2px}
    .meta,.caption{color:#666;font-size:13px;margin:2px 0 10px}
    table{border-collapse:collapse;font-size:14px;margin:10px 0}
    th,td{padding:4px 12px 4px 0;text-align:left;vertical-align:top}
    table.facts th{color:#555;font-weight:600;white-space:nowrap;padding-right:20px}
    table.peers th,table.events th{border-bottom:1px solid #bbb}table.peers td,table.events td{border-bottom:1px solid #eee}
    table.events{font-size:13px}
    .peer{border-left:6px solid;padding-left:5px;margin-right:8px;font-weight:600}
    .ok{color:#2a7a2a;font-weight:700}.bad{color:#c62828;font-weight:700}.warn{color:#b26a00}
    .notes{background:#fff8e1;border:1px solid #f1d38a;padding:6px 14px;font-size:14px;margin:12px 0}
    .note{background:#f4f4f4;padding:10px;color:#555}
    code{font-family:ui-monospace,Menlo,monospace;font-size:13px}
    svg{display:block;background:#fff;border:1px solid #eee}
    """
}
