import Foundation

/// Escaping for text placed in HTML or SVG (element content and attribute values).
enum Markup {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A coordinate with at most one decimal, to keep the SVG small.
    static func n(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }
}

/// A mapping from data values to pixels, linear or base-10 logarithmic, with "nice" ticks.
struct AxisScale: Sendable {
    var lo: Double
    var hi: Double
    var pixelLo: Double
    var pixelHi: Double
    var log: Bool

    init(lo: Double, hi: Double, pixelLo: Double, pixelHi: Double, log: Bool = false) {
        var a = lo, b = hi
        if log { a = Swift.max(a, 1e-9); b = Swift.max(b, a * 10) }
        if b <= a { b = a + 1 }
        self.lo = a
        self.hi = b
        self.pixelLo = pixelLo
        self.pixelHi = pixelHi
        self.log = log
    }

    /// The pixel position of `v` (clamped to the axis for log scales at or below zero).
    func callAsFunction(_ v: Double) -> Double {
        let t: Double
        if log {
            t = (Foundation.log10(Swift.max(v, lo)) - Foundation.log10(lo)) / (Foundation.log10(hi) - Foundation.log10(lo))
        } else {
            t = (v - lo) / (hi - lo)
        }
        return pixelLo + t * (pixelHi - pixelLo)
    }

    /// Tick values inside the domain: decades (plus 2× and 5× when the range is short) for log
    /// scales, multiples of 1, 2 or 5 × 10ⁿ for linear ones.
    func ticks(target: Int = 6) -> [Double] {
        if log {
            let first = Int(Foundation.log10(lo).rounded(.down)), last = Int(Foundation.log10(hi).rounded(.up))
            let decades = Foundation.log10(hi) - Foundation.log10(lo)
            let multipliers: [Double] = decades <= 3 ? [1, 2, 5] : [1]
            var out: [Double] = []
            for e in first...last {
                for m in multipliers {
                    let v = m * Foundation.pow(10, Double(e))
                    if v >= lo * 0.999 && v <= hi * 1.001 { out.append(v) }
                }
            }
            return out
        }
        let raw = (hi - lo) / Double(Swift.max(target, 1))
        let mag = Foundation.pow(10, Foundation.log10(raw).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var v = (lo / step).rounded(.up) * step
        var out: [Double] = []
        while v <= hi + step * 1e-9 {
            out.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return out
    }
}

/// The box a chart is drawn in: overall size and the inner plot area.
struct ChartFrame: Sendable {
    var width: Double
    var height: Double
    var left = 78.0
    var right = 170.0
    var top = 20.0
    var bottom = 48.0

    var plotLeft: Double { left }
    var plotRight: Double { width - right }
    var plotTop: Double { top }
    var plotBottom: Double { height - bottom }
}

/// A small builder of SVG markup. Every text it receives is escaped.
struct SVGCanvas {
    let frame: ChartFrame
    private(set) var body: [String] = []

    init(frame: ChartFrame) { self.frame = frame }

    mutating func raw(_ s: String) { body.append(s) }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String,
                       width: Double = 1, dash: String? = nil) {
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        raw("<line x1=\"\(Markup.n(x1))\" y1=\"\(Markup.n(y1))\" x2=\"\(Markup.n(x2))\" y2=\"\(Markup.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Markup.n(width))\"\(d)/>")
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, title: String? = nil) {
        let t = title.map { "<title>\(Markup.escape($0))</title>" } ?? ""
        raw("<rect x=\"\(Markup.n(x))\" y=\"\(Markup.n(y))\" width=\"\(Markup.n(Swift.max(w, 0.5)))\" height=\"\(Markup.n(h))\" fill=\"\(fill)\">\(t)</rect>")
    }

    mutating func text(_ s: String, x: Double, y: Double, anchor: String = "start", size: Double = 12,
                       fill: String = "#222", weight: String? = nil, rotate: Bool = false) {
        let w = weight.map { " font-weight=\"\($0)\"" } ?? ""
        let r = rotate ? " transform=\"rotate(-90 \(Markup.n(x)) \(Markup.n(y)))\"" : ""
        raw("<text x=\"\(Markup.n(x))\" y=\"\(Markup.n(y))\" text-anchor=\"\(anchor)\" font-size=\"\(Markup.n(size))\" fill=\"\(fill)\"\(w)\(r)>\(Markup.escape(s))</text>")
    }

    /// A polyline through `points`; a `data-peer` attribute names the series it belongs to.
    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 1.6, dash: String? = nil,
                           series: String, title: String) {
        guard !points.isEmpty else { return }
        let pts = points.map { "\(Markup.n($0.0)),\(Markup.n($0.1))" }.joined(separator: " ")
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        raw("<polyline class=\"series\" data-peer=\"\(Markup.escape(series))\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Markup.n(width))\" stroke-linejoin=\"round\"\(d) points=\"\(pts)\"><title>\(Markup.escape(title))</title></polyline>")
    }

    /// Axes with ticks, tick labels, light grid lines and axis titles.
    mutating func axes(x: AxisScale, y: AxisScale, xLabel: (Double) -> String, yLabel: (Double) -> String,
                       xTitle: String, yTitle: String) {
        let f = frame
        for t in y.ticks(target: 8) {
            let py = y(t)
            line(f.plotLeft, py, f.plotRight, py, stroke: "#e6e6e6")
            line(f.plotLeft - 5, py, f.plotLeft, py, stroke: "#444")
            text(yLabel(t), x: f.plotLeft - 8, y: py + 4, anchor: "end", size: 11, fill: "#444")
        }
        for t in x.ticks(target: 8) {
            let px = x(t)
            line(px, f.plotTop, px, f.plotBottom, stroke: "#f0f0f0")
            line(px, f.plotBottom, px, f.plotBottom + 5, stroke: "#444")
            text(xLabel(t), x: px, y: f.plotBottom + 18, anchor: "middle", size: 11, fill: "#444")
        }
        line(f.plotLeft, f.plotBottom, f.plotRight, f.plotBottom, stroke: "#444")
        line(f.plotLeft, f.plotTop, f.plotLeft, f.plotBottom, stroke: "#444")
        text(xTitle, x: (f.plotLeft + f.plotRight) / 2, y: f.height - 8, anchor: "middle", size: 12)
        text(yTitle, x: 16, y: (f.plotTop + f.plotBottom) / 2, anchor: "middle", size: 12, rotate: true)
    }

    /// A legend to the right of the plot: one swatch (line or box) and label per entry.
    mutating func legend(_ entries: [LegendEntry]) {
        var y = frame.plotTop + 8
        let x = frame.plotRight + 16
        for e in entries {
            if e.box {
                rect(x, y - 8, 22, 12, fill: e.color)
            } else {
                line(x, y - 2, x + 22, y - 2, stroke: e.color, width: 2.5, dash: e.dash)
            }
            text(e.label, x: x + 28, y: y + 2, size: 12)
            y += 20
        }
    }

    /// The finished `<svg>` element.
    func render(label: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"\(Markup.escape(label))\" width=\"\(Markup.n(frame.width))\" height=\"\(Markup.n(frame.height))\" viewBox=\"0 0 \(Markup.n(frame.width)) \(Markup.n(frame.height))\" font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\">\n"
            + body.joined(separator: "\n") + "\n</svg>"
    }
}

/// One legend row.
struct LegendEntry {
    var label: String
    var color: String
    var dash: String? = nil
    var box = false
}

/// Distinct colours for peers (Tableau 10), cycling for larger runs.
enum PeerPalette {
    static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                         "#d62728", "#7f7f7f"]
    static func color(_ index: Int) -> String { colors[index % colors.count] }
}
