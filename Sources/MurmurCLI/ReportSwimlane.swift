import Foundation

/// The swimlane figure: for every peer, one stripe per other peer showing how that observer saw it
/// over time (alive, suspect, dead, left), with rejoin events marked.
struct ReportSwimlane {
    let run: RunData
    var width = 1240.0

    static let stateColors: [(state: String, color: String)] = [
        ("alive", "#59a14f"), ("suspect", "#f1b62b"), ("dead", "#d62728"), ("left", "#b5b5b5"), ("unknown", "#e8e8e8"),
    ]

    static func color(_ state: String) -> String { stateColors.first { $0.state == state }?.color ?? "#76b7b2" }

    func figure() -> ReportFigure {
        let title = "Peer status over time"
        let caption = "One band per peer; inside it, one stripe per observer: how that peer looked to each other peer (from the observers' heartbeats.jsonl). Black diamonds: the observer saw the peer rejoin with a new incarnation."
        let lanes = StatusLane.lanes(run.peers)
        let times = run.peers.flatMap { $0.events.compactMap(\.timeMs) + $0.rounds.compactMap(\.timeMs) }
        guard !lanes.isEmpty, let t0 = times.min(), let t1 = times.max() else {
            return ReportFigure(title: title, caption: caption, svg: nil,
                                note: "No status events in any heartbeats.jsonl: nothing to draw.")
        }
        let stripe = 15.0, stripeGap = 2.0, groupGap = 12.0
        let subjects = run.peerIDs.filter { id in lanes.contains { $0.subject == id } }
        var height = 0.0
        for s in subjects { height += Double(lanes.filter { $0.subject == s }.count) * (stripe + stripeGap) + groupGap }
        var frame = ChartFrame(width: width, height: height + 76)
        // Room for the peer names (14 px bold) and the "seen by …" labels (10 px), estimated from
        // character counts since SVG text cannot be measured here.
        let nameWidth = Double(run.peerIDs.map { Self.short($0).count }.max() ?? 2) * 9
        let seenWidth = Double(("seen by " + (run.peerIDs.map(Self.short).max { $0.count < $1.count } ?? "")).count) * 5.8
        frame.left = Swift.max(128, 16 + nameWidth + 12 + seenWidth + 6)
        frame.top = 16
        var c = SVGCanvas(frame: frame)
        let x = AxisScale(lo: 0, hi: Swift.max(Double(t1 - t0) / 1000, 0.001), pixelLo: frame.plotLeft, pixelHi: frame.plotRight)
        for t in x.ticks(target: 10) {
            let px = x(t)
            c.line(px, frame.plotTop, px, frame.plotBottom, stroke: "#eeeeee")
            c.line(px, frame.plotBottom, px, frame.plotBottom + 5, stroke: "#444")
            c.text(Self.secondsLabel(t), x: px, y: frame.plotBottom + 18, anchor: "middle", size: 11, fill: "#444")
        }
        c.line(frame.plotLeft, frame.plotBottom, frame.plotRight, frame.plotBottom, stroke: "#444")
        c.text("seconds since the first logged event (\(Self.clock(t0)) local time)",
               x: (frame.plotLeft + frame.plotRight) / 2, y: frame.height - 8, anchor: "middle", size: 12)
        var y = frame.plotTop
        for s in subjects {
            let mine = lanes.filter { $0.subject == s }
            let groupHeight = Double(mine.count) * (stripe + stripeGap) - stripeGap
            let peerColor = PeerPalette.color(run.peerIDs.firstIndex(of: s) ?? 0)
            c.rect(6, y, 5, groupHeight, fill: peerColor)
            c.text(Self.short(s), x: 16, y: y + groupHeight / 2 + 5, size: 14, fill: "#111", weight: "bold")
            for lane in mine {
                c.text("seen by \(Self.short(lane.observer))", x: frame.plotLeft - 6, y: y + stripe - 4, anchor: "end", size: 10, fill: "#555")
                c.rect(frame.plotLeft, y, frame.plotRight - frame.plotLeft, stripe, fill: "#f7f7f7")
                for seg in lane.segments {
                    let a = x(Double(seg.startMs - t0) / 1000), b = x(Double(seg.endMs - t0) / 1000)
                    c.rect(a, y, b - a, stripe, fill: Self.color(seg.state),
                           title: "\(s) \(seg.state) as seen by \(lane.observer), \(Self.secondsLabel(Double(seg.startMs - t0) / 1000))–\(Self.secondsLabel(Double(seg.endMs - t0) / 1000))")
                }
                for r in lane.rejoinsMs {
                    let px = x(Double(r - t0) / 1000), cy = y + stripe / 2
                    c.raw("<path class=\"rejoin\" d=\"M\(Markup.n(px)) \(Markup.n(cy - 7)) l6 7 l-6 7 l-6 -7 z\" fill=\"#111\" stroke=\"#fff\"><title>\(Markup.escape("\(s) rejoined (seen by \(lane.observer))"))</title></path>")
                }
                y += stripe + stripeGap
            }
            y += groupGap
        }
        var legend = Self.stateColors.filter { st in lanes.contains { $0.segments.contains { $0.state == st.state } } }
            .map { LegendEntry(label: $0.state, color: $0.color, box: true) }
        let others = Set(lanes.flatMap { $0.segments.map(\.state) }).subtracting(Self.stateColors.map(\.state)).sorted()
        legend += others.map { LegendEntry(label: $0, color: Self.color($0), box: true) }
        c.legend(legend)
        if lanes.contains(where: { !$0.rejoinsMs.isEmpty }) {
            let ly = frame.plotTop + 8 + Double(legend.count) * 20
            let lx = frame.plotRight + 16 + 11
            c.raw("<path d=\"M\(Markup.n(lx)) \(Markup.n(ly - 9)) l6 7 l-6 7 l-6 -7 z\" fill=\"#111\"/>")
            c.text("rejoined", x: lx + 17, y: ly + 2, size: 12)
        }
        return ReportFigure(title: title, caption: caption, svg: c.render(label: title), note: nil)
    }

    /// Peer ids longer than 18 characters, cut with an ellipsis (full ids are in the tooltips).
    static func short(_ id: String) -> String { id.count > 18 ? String(id.prefix(17)) + "…" : id }

    /// "12 s", "2.5 s".
    static func secondsLabel(_ v: Double) -> String {
        v == v.rounded() ? "\(Int(v)) s" : String(format: "%.1f s", v)
    }

    /// Local wall-clock time of a millisecond timestamp, "HH:mm:ss".
    static func clock(_ ms: Int64) -> String {
        String(EventFormatter(timeZone: .current).time(ms).prefix(8))
    }
}
