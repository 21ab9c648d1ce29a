import Foundation

/// One applied step of one peer: a line of `rounds.jsonl`, typed.
struct RoundRecord: Sendable, Equatable {
    var step: Int
    var digest: String
    /// Train loss in nats/byte; nil when the peer did not report one.
    var loss: Double?
    var contributors: [String]
    var missing: [String]
    var bytesOut: Int
    var bytesIn: Int
    var bytesReference: Int
    var bytesDense: Int
    var waitedMs: Int
    var timedOut: Bool
    var lateDropped: Int
    var invalidBodies: Int
    /// Wall-clock milliseconds since 1970; nil when absent.
    var timeMs: Int64?

    /// Reads one decoded JSON line; nil when the line has no `step`.
    init?(json o: [String: Any]) {
        guard let step = JSONField.int(o["step"]) else { return nil }
        self.step = step
        digest = o["digest"] as? String ?? "-"
        loss = JSONField.double(o["loss"])
        contributors = o["contributors"] as? [String] ?? []
        missing = o["missing"] as? [String] ?? []
        bytesOut = JSONField.int(o["bytes_out"]) ?? 0
        bytesIn = JSONField.int(o["bytes_in"]) ?? 0
        bytesReference = JSONField.int(o["bytes_reference"]) ?? 0
        bytesDense = JSONField.int(o["bytes_dense"]) ?? 0
        waitedMs = JSONField.int(o["waited_ms"]) ?? 0
        timedOut = o["timed_out"] as? Bool ?? false
        lateDropped = JSONField.int(o["late_dropped"]) ?? 0
        invalidBodies = JSONField.int(o["invalid_bodies"]) ?? 0
        timeMs = JSONField.int64(o["time_ms"])
    }
}

/// One line of `heartbeats.jsonl`, typed. Events this build does not know (e.g. `checkpoint`,
/// `catchup`) are kept as `.other` with their fields so they can still be shown.
enum HeartbeatEvent: Sendable, Equatable {
    /// This peer sent a heartbeat.
    case send(peer: String, state: String, step: Int)
    /// This peer received a heartbeat from `peer`.
    case recv(peer: String, incarnation: Int, state: String, step: Int, digest: String, loss: Double?, lag: Int)
    /// This peer's view of `peer` changed.
    case status(peer: String, from: String, to: String)
    /// `peer` came back with a newer incarnation (it restarted).
    case rejoined(peer: String, incarnation: Int)
    /// Any other event, with its fields rendered as text (sorted by key).
    case other(name: String, peer: String?, fields: [String: String])

    /// The event's name as written in the log.
    var name: String {
        switch self {
        case .send: "send"
        case .recv: "recv"
        case .status: "status"
        case .rejoined: "rejoined"
        case .other(let name, _, _): name
        }
    }

    /// Whether this is a membership or recovery event (status, rejoined, checkpoint, catchup …)
    /// rather than routine heartbeat traffic.
    var isMembership: Bool {
        switch self {
        case .send, .recv: false
        case .status, .rejoined: true
        case .other(let name, _, _): ["checkpoint", "catchup", "foreign_topology", "other_settings", "waiting", "isolated",
                                      "reconnected", "outcome", "suspect-content", "content-ok", "forged-origin"].contains(name)
        }
    }

    /// For a run-setup problem worth the user's eye (a peer of another topology, or with other
    /// settings): the message the peer logged.
    var setupWarning: String? {
        if case .other(let name, _, let fields) = self, name == "foreign_topology" || name == "other_settings" { return fields["detail"] }
        return nil
    }
}

/// A heartbeat event with the wall-clock time it was logged.
struct TimedEvent: Sendable, Equatable {
    /// Milliseconds since 1970; nil when the line had no `time_ms`.
    var timeMs: Int64?
    var event: HeartbeatEvent

    /// Reads one decoded JSON line; nil when it has no `event` field.
    init?(json o: [String: Any]) {
        guard let name = o["event"] as? String else { return nil }
        timeMs = JSONField.int64(o["time_ms"])
        let peer = o["peer"] as? String
        switch name {
        // Current schema (docs/LOGS.md): `peer` wrote the line, `from` is who it is about.
        case "sent":
            event = .send(peer: peer ?? "?", state: o["state"] as? String ?? "?", step: JSONField.int(o["step"]) ?? -1)
        case "received":
            event = .recv(peer: o["from"] as? String ?? "?", incarnation: JSONField.int(o["incarnation"]) ?? 0,
                          state: o["state"] as? String ?? "?", step: JSONField.int(o["step"]) ?? -1,
                          digest: o["digest"] as? String ?? "-", loss: JSONField.double(o["loss"]),
                          lag: JSONField.int(o["lag"]) ?? 0)
        case "status" where o["status"] != nil:
            let subject = o["from"] as? String ?? "?"
            if o["status"] as? String == "rejoined" {
                event = .rejoined(peer: subject, incarnation: JSONField.int(o["incarnation"]) ?? 0)
            } else {
                event = .status(peer: subject, from: o["previous"] as? String ?? "?", to: o["status"] as? String ?? "?")
            }
        // First schema (send/recv/status with `to`), still read so older run folders report.
        case "send":
            event = .send(peer: peer ?? "?", state: o["state"] as? String ?? "?", step: JSONField.int(o["step"]) ?? -1)
        case "recv":
            event = .recv(peer: peer ?? "?", incarnation: JSONField.int(o["incarnation"]) ?? 0,
                          state: o["state"] as? String ?? "?", step: JSONField.int(o["step"]) ?? -1,
                          digest: o["digest"] as? String ?? "-", loss: JSONField.double(o["loss"]),
                          lag: JSONField.int(o["lag"]) ?? 0)
        case "status":
            event = .status(peer: peer ?? "?", from: o["from"] as? String ?? "?", to: o["to"] as? String ?? "?")
        case "rejoined":
            event = .rejoined(peer: peer ?? "?", incarnation: JSONField.int(o["incarnation"]) ?? 0)
        default:
            var fields: [String: String] = [:]
            for (k, v) in o where !["event", "time_ms", "peer", "t"].contains(k) { fields[k] = JSONField.text(v) }
            event = .other(name: name, peer: peer, fields: fields)
        }
    }

    init(timeMs: Int64?, event: HeartbeatEvent) {
        self.timeMs = timeMs
        self.event = event
    }
}

/// The end-of-run `summary.json` of one peer, typed.
struct PeerSummary: Sendable, Equatable {
    var steps: Int?
    var digest: String?
    var valLoss: Double?
    var transportBytesOut: Int?
    var transportBytesIn: Int?
    var bytesReferencePerStep: Int?
    var bytesDensePerStep: Int?
    var stoppedEarly: Bool
    /// Steps applied while cut off from every other peer (the partition failsafe).
    var stepsAlone: Int
    /// How the run ended for the peer, in words, and whether that is a success.
    var outcome: String?
    var success: Bool?

    init(json o: [String: Any]) {
        steps = JSONField.int(o["steps"])
        digest = o["digest"] as? String
        valLoss = JSONField.double(o["val_loss"])
        transportBytesOut = JSONField.int(o["transport_bytes_out"])
        transportBytesIn = JSONField.int(o["transport_bytes_in"])
        bytesReferencePerStep = JSONField.int(o["bytes_reference_per_step"])
        bytesDensePerStep = JSONField.int(o["bytes_dense_per_step"])
        stoppedEarly = o["stopped_early"] as? Bool ?? false
        stepsAlone = JSONField.int(o["steps_alone"]) ?? 0
        outcome = o["outcome"] as? String
        success = o["success"] as? Bool
    }
}

/// Lenient conversions of `JSONSerialization` values (numbers arrive as NSNumber, Int or Double).
enum JSONField {
    static func int(_ v: Any?) -> Int? {
        if let i = v as? Int { return i }
        if let d = v as? Double, d.isFinite { return Int(d) }
        return nil
    }

    static func int64(_ v: Any?) -> Int64? {
        if let i = v as? Int64 { return i }
        if let i = v as? Int { return Int64(i) }
        if let d = v as? Double, d.isFinite { return Int64(d) }
        return nil
    }

    static func double(_ v: Any?) -> Double? {
        if v is NSNull { return nil }
        if let d = v as? Double { return d.isFinite ? d : nil }
        if let i = v as? Int { return Double(i) }
        return nil
    }

    /// A short text form of any JSON value, for unknown events.
    static func text(_ v: Any) -> String {
        switch v {
        case is NSNull: return "null"
        case let s as String: return s
        case let b as Bool: return b ? "true" : "false"
        case let a as [Any]: return "[" + a.map(text).joined(separator: ",") + "]"
        default: return "\(v)"
        }
    }
}
