import Foundation

/// A rendered figure of the report: its SVG, or a note saying why there is none.
struct ReportFigure {
    var title: String
    var caption: String
    /// The `<svg>` element; nil when the run has no data for this figure.
    var svg: String?
    var note: String?
}

/// The loss and bytes figures of the report (the status swimlane is in ReportSwimlane.swift).
struct ReportFigures {
    let run: RunData
    var width = 1240.0

    func color(_ peer: String) -> String { PeerPalette.color(run.peerIDs.firstIndex(of: peer) ?? 0) }

    /// A peer's rounds split wherever the step does not increase (a restarted peer re-logs steps),
    /// so each piece can be drawn as one polyline.
    static func monotonePieces(_ rounds: [RoundRecord]) -> [[RoundRecord]] {
        var pieces: [[RoundRecord]] = []
        for r in rounds {
            if let last = pieces.last?.last, r.step > last.step { pieces[pieces.count - 1].append(r) } else { pieces.append([r]) }
        }
        return pieces
    }

    /// Train loss per step for every peer, with rejoin (and death) events marked.
    func loss() -> ReportFigure {
        let title = "Train loss per step"
        let caption = "Each peer's train loss (nats/byte) after every applied step; diamonds: validation loss, when the topology asks for it. Dashed verticals: a peer was declared dead (red) or rejoined with a new incarnation (green), at the observer's step."
        let validation = validationPoints()
        let points = run.peers.flatMap { p in p.rounds.compactMap { r in r.loss.map { (r.step, $0) } } } + validation.map { ($0.step, $0.loss) }
        guard let maxStep = points.map(\.0).max(), let lo = points.map(\.1).min(), let hi = points.map(\.1).max() else {
            return ReportFigure(title: title, caption: caption, svg: nil, note: "No losses in any rounds.jsonl yet.")
        }
        let frame = ChartFrame(width: width, height: 420)
        var c = SVGCanvas(frame: frame)
        let pad = Swift.max((hi - lo) * 0.06, 0.01)
        let x = AxisScale(lo: 0, hi: Double(Swift.max(maxStep, 1)), pixelLo: frame.plotLeft, pixelHi: frame.plotRight)
        let y = AxisScale(lo: lo - pad, hi: hi + pad, pixelLo: frame.plotBottom, pixelHi: frame.plotTop)
        c.axes(x: x, y: y, xLabel: { String(Int($0)) }, yLabel: { String(format: "%.2f", $0) },
               xTitle: "step", yTitle: "train loss (nats/byte)")
        let marks = markers()
        for m in marks {
            let px = x(Double(m.step))
            c.line(px, frame.plotTop, px, frame.plotBottom, stroke: m.color, width: 1.2, dash: "5 4")
            c.text(m.label, x: px + 4, y: frame.plotTop + 12 + Double(m.row) * 14, size: 11, fill: m.color)
        }
        for p in run.peers {
            for piece in Self.monotonePieces(p.rounds.filter { $0.loss != nil }) {
                c.polyline(piece.map { (x(Double($0.step)), y($0.loss!)) }, stroke: color(p.id), series: p.id,
                           title: "\(p.id): loss per step")
            }
        }
        for v in validation {
            let (px, py) = (x(Double(v.step)), y(v.loss))
            c.raw("<path class=\"validation-point\" d=\"M\(Markup.n(px)) \(Markup.n(py - 5))l5 5l-5 5l-5 -5z\" fill=\"white\" stroke=\"\(color(v.peer))\" stroke-width=\"1.6\"><title>\(Markup.escape("\(v.peer): validation loss \(String(format: "%.4f", v.loss)) after \(v.step) steps"))</title></path>")
        }
        // A ring on the rejoined peer's own curve: its first loss at or after the marked step.
        for m in marks where m.kind == "rejoined" {
            guard let r = run.peer(m.subject)?.rounds.first(where: { $0.step >= m.step && $0.loss != nil }) else { continue }
            c.raw("<circle class=\"rejoin-point\" cx=\"\(Markup.n(x(Double(r.step))))\" cy=\"\(Markup.n(y(r.loss!)))\" r=\"6\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"3\"><title>\(Markup.escape("\(m.subject) rejoined: step \(r.step), loss \(String(format: "%.4f", r.loss!))"))</title></circle>")
        }
        var legend = run.peers.filter { $0.rounds.contains { $0.loss != nil } }.map { LegendEntry(label: ReportSwimlane.short($0.id), color: color($0.id)) }
        if !validation.isEmpty { legend.append(LegendEntry(label: "validation", color: "#444")) }
        if FaultCounts(run.peers).dead > 0 { legend.append(LegendEntry(label: "declared dead", color: "#d62728", dash: "5 4")) }
        if FaultCounts(run.peers).rejoined > 0 { legend.append(LegendEntry(label: "rejoined", color: "#2ca02c", dash: "5 4")) }
        c.legend(legend)
        return ReportFigure(title: title, caption: caption, svg: c.render(label: title), note: nil)
    }

    /// `validation` events (topology `validation.every`): the validation loss after a step.
    func validationPoints() -> [(peer: String, step: Int, loss: Double)] {
        run.peers.flatMap { p in
            p.events.compactMap { e -> (peer: String, step: Int, loss: Double)? in
                guard case .other("validation", _, let f) = e.event, let step = f["step"].flatMap({ Int($0) }),
                      let loss = f["val_loss"].flatMap({ Double($0) }), loss.isFinite else { return nil }
                return (p.id, step, loss)
            }
        }
    }

    /// A vertical marker on the loss chart.
    struct Marker {
        var subject: String
        var kind: String
        var step: Int
        var label: String
        var color: String
        var row: Int
    }

    /// One marker per (subject, kind) episode: events about the same subject within 3 s of each
    /// other (seen by several observers) are merged. Placed at the observer's step at that time.
    func markers() -> [Marker] {
        var raw: [(t: Int64, step: Int, subject: String, kind: String)] = []
        for observer in run.peers {
            for e in observer.events {
                guard let t = e.timeMs else { continue }
                let kind: String, subject: String
                switch e.event {
                case .status(let p, _, "dead"): (kind, subject) = ("dead", p)
                case .rejoined(let p, _): (kind, subject) = ("rejoined", p)
                default: continue
                }
                let step = observer.rounds.last { ($0.timeMs ?? .max) <= t }?.step ?? observer.rounds.first?.step ?? 0
                raw.append((t, step, subject, kind))
            }
        }
        var out: [Marker] = []
        var lastTime: [String: Int64] = [:]
        for m in raw.sorted(by: { $0.t < $1.t }) {
            let key = m.subject + "\u{0}" + m.kind
            if let prev = lastTime[key], m.t - prev < 3000 { continue }
            lastTime[key] = m.t
            out.append(Marker(subject: m.subject, kind: m.kind, step: m.step, label: "\(ReportSwimlane.short(m.subject)) \(m.kind)", color: m.kind == "dead" ? "#d62728" : "#2ca02c",
                              row: out.count % 4))
        }
        return out
    }

    /// Bytes per step on a log scale: each peer's real bytes sent, the reference DeMo accounting
    /// and dense fp32 AdamW.
    func bytes() -> ReportFigure {
        let title = "Bytes per step (log scale)"
        let caption = "Bytes each peer really sent for its contribution to a step, against the reference DeMo accounting (12 B per coefficient) and what dense fp32 AdamW would send."
        var maxStep = 0
        var values: [Double] = []
        var reference: [Int: [Int]] = [:], dense: [Int: [Int]] = [:]
        for p in run.peers {
            for r in p.rounds {
                maxStep = Swift.max(maxStep, r.step)
                for v in [r.bytesOut, r.bytesReference, r.bytesDense] where v > 0 { values.append(Double(v)) }
                if r.bytesReference > 0 { reference[r.step, default: []].append(r.bytesReference) }
                if r.bytesDense > 0 { dense[r.step, default: []].append(r.bytesDense) }
            }
        }
        guard let lo = values.min(), let hi = values.max() else {
            return ReportFigure(title: title, caption: caption, svg: nil, note: "No byte counts in any rounds.jsonl yet.")
        }
        let frame = ChartFrame(width: width, height: 380)
        var c = SVGCanvas(frame: frame)
        let x = AxisScale(lo: 0, hi: Double(Swift.max(maxStep, 1)), pixelLo: frame.plotLeft, pixelHi: frame.plotRight)
        let y = AxisScale(lo: lo / 1.6, hi: hi * 1.6, pixelLo: frame.plotBottom, pixelHi: frame.plotTop, log: true)
        c.axes(x: x, y: y, xLabel: { String(Int($0)) }, yLabel: Self.byteLabel, xTitle: "step", yTitle: "bytes per step (log)")
        func mean(_ d: [Int: [Int]]) -> [(Double, Double)] {
            d.keys.sorted().map { s in (x(Double(s)), y(Double(d[s]!.reduce(0, +)) / Double(d[s]!.count))) }
        }
        c.polyline(mean(dense), stroke: "#555", width: 2, dash: "9 4 2 4", series: "dense AdamW", title: "dense fp32 AdamW bytes per step")
        c.polyline(mean(reference), stroke: "#111", width: 2, dash: "6 4", series: "reference", title: "reference DeMo accounting (12 B per coefficient)")
        var legend: [LegendEntry] = []
        let senders = run.peers.filter { $0.rounds.contains(where: { $0.bytesOut > 0 }) }
        // Peers often send exactly the same bytes: earlier peers are drawn wider underneath, so
        // coinciding lines show as nested colours instead of hiding each other.
        for (i, p) in senders.enumerated() {
            let width = 1.8 + 2.2 * Double(senders.count - 1 - i)
            for piece in Self.monotonePieces(p.rounds.filter { $0.bytesOut > 0 }) {
                c.polyline(piece.map { (x(Double($0.step)), y(Double($0.bytesOut))) }, stroke: color(p.id), width: width,
                           series: p.id, title: "\(p.id): bytes sent per step")
            }
            legend.append(LegendEntry(label: "\(ReportSwimlane.short(p.id)) sent", color: color(p.id)))
        }
        let stats = BytesPerStep(run.peers)
        let labels: [(Double, String)] = [
            (stats.dense, "dense AdamW \(Self.byteLabel(stats.dense.rounded()))/step (\(ReportHTML.ratio(stats.denseRatio)) what was sent)"),
            (stats.reference, "reference DeMo \(Self.byteLabel(stats.reference.rounded()))/step (\(ReportHTML.ratio(stats.referenceRatio)) what was sent)"),
            (stats.real, "sent \(Self.byteLabel(stats.real.rounded()))/step (mean over peers)"),
        ]
        for (v, text) in labels where v > 0 {
            c.text(text, x: frame.plotRight - 6, y: y(v) - 7, anchor: "end", size: 11, fill: "#333")
        }
        if !dense.isEmpty { legend.append(LegendEntry(label: "dense AdamW", color: "#555", dash: "9 4 2 4")) }
        if !reference.isEmpty { legend.append(LegendEntry(label: "reference DeMo", color: "#111", dash: "6 4")) }
        c.legend(legend)
        return ReportFigure(title: title, caption: caption, svg: c.render(label: title), note: nil)
    }

    /// "512 B", "10 kB", "1.5 MB" (decimal units).
    static func byteLabel(_ v: Double) -> String {
        func trim(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%.1f", x) }
        switch v {
        case ..<1000: return "\(trim(v)) B"
        case ..<1_000_000: return "\(trim(v / 1000)) kB"
        case ..<1_000_000_000: return "\(trim(v / 1_000_000)) MB"
        default: return "\(trim(v / 1_000_000_000)) GB"
        }
    }
}
