import ArgumentParser
import Foundation

/// Human-readable lines for heartbeat events, used by `murmur logs` and the report.
struct EventFormatter: Sendable {
    /// The zone local times are shown in (the machine's own by default; UTC in tests).
    var timeZone: TimeZone

    init(timeZone: TimeZone = .current) { self.timeZone = timeZone }

    /// "HH:mm:ss.SSS" of a millisecond timestamp, in `timeZone`.
    func time(_ ms: Int64) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = Int(ms - seconds * 1000)
        let c = calendar.dateComponents([.hour, .minute, .second], from: Date(timeIntervalSince1970: Double(seconds)))
        return String(format: "%02d:%02d:%02d.%03d", c.hour ?? 0, c.minute ?? 0, c.second ?? 0, millis)
    }

    /// One line: time, two spaces, what happened.
    func line(_ e: TimedEvent) -> String {
        (e.timeMs.map(time) ?? "--:--:--.---") + "  " + describe(e.event)
    }

    func describe(_ e: HeartbeatEvent) -> String {
        switch e {
        case .send(_, let state, let step):
            return "send step \(Self.step(step)) (\(state))"
        case .recv(let peer, let inc, let state, let step, let digest, let loss, let lag):
            let l = loss.map { String(format: "loss %.4f  ", $0) } ?? ""
            return "recv \(peer) step \(Self.step(step)) digest \(digest)  \(l)lag \(lag)  (\(state), incarnation \(inc))"
        case .status(let peer, let from, let to):
            return "\(peer) → \(to) (was \(from))"
        case .rejoined(let peer, let inc):
            return "\(peer) rejoined (incarnation \(inc))"
        case .other(let name, let peer, let fields):
            let kv = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return ([name, peer].compactMap { $0 } + (kv.isEmpty ? [] : [kv])).joined(separator: " ")
        }
    }

    /// Step -1 means "nothing applied yet".
    static func step(_ s: Int) -> String { s < 0 ? "-" : String(s) }
}

/// Which heartbeat events `murmur logs` shows.
enum EventFilter: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Everything.
    case all
    /// Membership and recovery: status, rejoined, checkpoint, catchup.
    case status
    /// Received heartbeats only.
    case recv
    /// Sent heartbeats only.
    case send

    func keeps(_ e: HeartbeatEvent) -> Bool {
        switch self {
        case .all: true
        case .status: e.isMembership
        case .recv: e.name == "recv"
        case .send: e.name == "send"
        }
    }
}

/// Human form of an age in seconds: "0.4s", "12s", "3m05s", "2h10m".
enum AgeText {
    static func format(_ s: Double) -> String {
        guard s.isFinite else { return "-" }
        let v = Swift.max(0, s)
        if v < 10 { return String(format: "%.1fs", v) }
        if v < 60 { return "\(Int(v))s" }
        if v < 3600 { return String(format: "%dm%02ds", Int(v) / 60, Int(v) % 60) }
        return String(format: "%dh%02dm", Int(v) / 3600, (Int(v) % 3600) / 60)
    }
}
