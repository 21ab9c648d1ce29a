import Foundation

/// Whether the peers' parameter digests agree at the newest step every peer has logged.
struct DigestAgreement: Sendable, Equatable {
    /// The newest step logged by every peer that has rounds; nil when there is none.
    var step: Int?
    /// Per peer: true when its digest at `step` is the majority digest (and the majority is
    /// unique), false when it differs, absent when the peer has no rounds.
    var agrees: [String: Bool]

    /// Every peer with rounds agrees.
    var all: Bool { step != nil && !agrees.isEmpty && agrees.values.allSatisfy { $0 } }

    init(_ peers: [PeerRunData]) {
        let withRounds = peers.filter { !$0.rounds.isEmpty }
        var common: Set<Int>?
        for p in withRounds {
            let steps = Set(p.rounds.map(\.step))
            common = common.map { $0.intersection(steps) } ?? steps
        }
        guard let s = common?.max() else { step = nil; agrees = [:]; return }
        step = s
        let digests = withRounds.map { ($0.id, $0.digest(at: s) ?? "-") }
        var votes: [String: Int] = [:]
        for (_, d) in digests { votes[d, default: 0] += 1 }
        let top = votes.values.max() ?? 0
        let leaders = votes.filter { $0.value == top }.map(\.key)
        // A tie (e.g. two peers, two digests) means nobody can be said to agree.
        let majority = leaders.count == 1 && (top > 1 || digests.count == 1) ? leaders[0] : nil
        agrees = Dictionary(uniqueKeysWithValues: digests.map { ($0.0, $0.1 == majority) })
    }
}

/// Counts of the things that went wrong during a run.
struct FaultCounts: Sendable, Equatable {
    /// `status` events with `to: suspect`, over every observer.
    var suspect = 0
    /// `status` events with `to: dead`, over every observer.
    var dead = 0
    /// `rejoined` events, over every observer.
    var rejoined = 0
    var timedOutRounds = 0
    var missingContributions = 0
    var lateDropped = 0
    var invalidBodies = 0

    init(_ peers: [PeerRunData]) {
        for p in peers {
            for e in p.events {
                switch e.event {
                case .status(_, _, "suspect"): suspect += 1
                case .status(_, _, "dead"): dead += 1
                case .rejoined: rejoined += 1
                default: break
                }
            }
            for r in p.rounds {
                if r.timedOut { timedOutRounds += 1 }
                missingContributions += r.missing.count
            }
            // These two are running totals per peer process: the newest value counts.
            lateDropped += p.rounds.map(\.lateDropped).max() ?? 0
            invalidBodies += p.rounds.map(\.invalidBodies).max() ?? 0
        }
    }

    /// One line, e.g. "2 suspect, 1 dead, 1 rejoined; 3 rounds timed out; 4 contributions missing".
    var text: String {
        var parts = ["\(suspect) suspect, \(dead) dead, \(rejoined) rejoined (status events)",
                     "\(timedOutRounds) rounds timed out", "\(missingContributions) contributions missing"]
        if lateDropped > 0 { parts.append("\(lateDropped) late contributions dropped") }
        if invalidBodies > 0 { parts.append("\(invalidBodies) invalid bodies") }
        return parts.joined(separator: "; ")
    }
}

/// Mean bytes per applied step over every peer's rounds.
struct BytesPerStep: Sendable, Equatable {
    var real: Double
    var reference: Double
    var dense: Double

    init(_ peers: [PeerRunData]) {
        let rounds = peers.flatMap(\.rounds)
        let n = Double(max(rounds.count, 1))
        real = Double(rounds.reduce(0) { $0 + $1.bytesOut }) / n
        reference = Double(rounds.reduce(0) { $0 + $1.bytesReference }) / n
        dense = Double(rounds.reduce(0) { $0 + $1.bytesDense }) / n
    }

    /// Dense AdamW bytes over the bytes really sent; nil without data.
    var denseRatio: Double? { real > 0 && dense > 0 ? dense / real : nil }
    /// Reference DeMo accounting over the bytes really sent; nil without data.
    var referenceRatio: Double? { real > 0 && reference > 0 ? reference / real : nil }
}

/// How one peer (the observer) saw another (the subject) over time.
struct StatusLane: Sendable, Equatable {
    struct Segment: Sendable, Equatable {
        var startMs: Int64
        var endMs: Int64
        var state: String
    }

    var subject: String
    var observer: String
    var segments: [Segment]
    /// Times at which the observer saw the subject rejoin.
    var rejoinsMs: [Int64]

    /// Every (subject, observer) lane of a run, in peer order. A segment lasts until the
    /// observer's next status event about the subject, or the observer's last logged event.
    static func lanes(_ peers: [PeerRunData]) -> [StatusLane] {
        var out: [StatusLane] = []
        for subject in peers.map(\.id) {
            for observer in peers where observer.id != subject {
                let endOfLog = (observer.events.compactMap(\.timeMs) + observer.rounds.compactMap(\.timeMs)).max()
                var changes: [(Int64, String)] = []
                var rejoins: [Int64] = []
                for e in observer.events {
                    guard let t = e.timeMs else { continue }
                    switch e.event {
                    case .status(subject, _, let to): changes.append((t, to))
                    case .rejoined(subject, _): rejoins.append(t)
                    default: break
                    }
                }
                guard !changes.isEmpty || !rejoins.isEmpty, let end = endOfLog else { continue }
                var segments: [Segment] = []
                for (i, c) in changes.enumerated() {
                    let stop = i + 1 < changes.count ? changes[i + 1].0 : max(end, c.0)
                    // A repeated state (e.g. two `alive` events) extends the previous segment.
                    if segments.last?.state == c.1 { segments[segments.count - 1].endMs = stop; continue }
                    segments.append(Segment(startMs: c.0, endMs: stop, state: c.1))
                }
                out.append(StatusLane(subject: subject, observer: observer.id, segments: segments, rejoinsMs: rejoins))
            }
        }
        return out
    }
}
