import Foundation

/// One fault `murmur chaos` caused: what, to whom, and when (milliseconds since 1970).
struct ChaosFault: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable { case kill, stop, partition }
    var kind: Kind
    var peer: String
    /// When the fault began (SIGKILL, SIGSTOP, links down).
    var began: Int
    /// When it ended (restart, SIGCONT, links up).
    var ended: Int
    /// The victim's last applied step before the fault.
    var stepAtFault: Int
}

/// How the cluster came through each fault, read from the run folder after the run.
///
/// - detection: the first `dead` status another peer logged for the victim after the fault began;
/// - recovery: from the fault's end to the victim's first training step whose digest is the one
///   the other peers have at that step (back in lockstep with the majority);
/// - steps lost: the victim's steps that were thrown away: applied after its last checkpoint and
///   redone after a crash, or trained alone while cut off and replaced by the majority's state;
/// - missed: contributions the other peers went on without (`missing` in their rounds).
struct ChaosReport {
    struct Outcome: Equatable {
        var fault: ChaosFault
        var detectedMs: Int?
        var suspectMs: Int?
        var recoveredMs: Int?
        var recoveredAtStep: Int?
        var catchUpModes: [String]
        var stepsLost: Int?
        var missed: Int
    }

    let outcomes: [Outcome]
    /// Per peer: "step/digest" of its newest round.
    let finals: [String: String]

    var digestsAgree: Bool { Set(finals.values).count == 1 }

    init(faults: [ChaosFault], peers: [String], files: RunFiles) {
        var rounds: [String: [[String: Any]]] = [:]
        var beats: [String: [[String: Any]]] = [:]
        var summaries: [String: [String: Any]] = [:]
        for id in peers {
            rounds[id] = files.rounds(id)
            beats[id] = files.heartbeats(id)
            summaries[id] = files.summary(id)
        }
        self.init(faults: faults, peers: peers, rounds: rounds, heartbeats: beats, summaries: summaries)
    }

    /// Pure: from the peers' rounds.jsonl and heartbeats.jsonl lines, and their summary.json when
    /// written (the final state: a peer that caught up to the last step by snapshot has no round
    /// for it).
    init(faults: [ChaosFault], peers: [String], rounds: [String: [[String: Any]]], heartbeats: [String: [[String: Any]]],
         summaries: [String: [String: Any]] = [:]) {
        func time(_ r: [String: Any]) -> Int { r["time_ms"] as? Int ?? 0 }
        outcomes = faults.map { f in
            let others = peers.filter { $0 != f.peer }
            // The digest most other peers applied at each step (their newest line for it).
            var votes: [Int: [String: Int]] = [:]
            for id in others {
                var newest: [Int: String] = [:]
                for r in rounds[id] ?? [] { if let s = r["step"] as? Int, let d = r["digest"] as? String { newest[s] = d } }
                for (s, d) in newest { votes[s, default: [:]][d, default: 0] += 1 }
            }
            func majority(_ step: Int) -> String? { votes[step]?.max { $0.value < $1.value }?.key }
            func firstStatus(_ status: String) -> Int? {
                others.compactMap { o in
                    (heartbeats[o] ?? []).first {
                        time($0) >= f.began && $0["event"] as? String == "status" && $0["from"] as? String == f.peer && $0["status"] as? String == status
                    }.map { time($0) - f.began }
                }.min()
            }
            // The others' newest step at a time: a peer is back once it is no more than one step
            // behind them (a stopped peer resumes on an old step with the right digest).
            let progress = others.flatMap { o in (rounds[o] ?? []).compactMap { r in (r["step"] as? Int).map { (time(r), $0) } } }
                .sorted { $0.0 < $1.0 }
            func othersStep(at t: Int) -> Int {
                var best = -1
                for (when, step) in progress { if when > t { break }; best = max(best, step) }
                return best
            }
            let mine = (rounds[f.peer] ?? []).filter { time($0) >= f.began }
            let backInRound = mine.first { r in
                guard time(r) >= f.ended, r["phase"] as? String == "training", let s = r["step"] as? Int else { return false }
                return majority(s) == r["digest"] as? String && s + 1 >= othersStep(at: time(r))
            }
            // A catch-up that ends on the others' step and digest is back in step too (it may be
            // the last step of the run: then no round follows).
            let backByCatchUp = (heartbeats[f.peer] ?? []).first { e in
                guard time(e) >= f.ended, e["event"] as? String == "catchup", e["result"] as? String == "done",
                      let s = e["step"] as? Int else { return false }
                return majority(s) == e["digest"] as? String && s + 1 >= othersStep(at: time(e))
            }
            let back = [backInRound, backByCatchUp].compactMap { $0 }.min { time($0) < time($1) }
            let events = (heartbeats[f.peer] ?? []).filter {
                time($0) >= f.began && time($0) <= (back.map(time) ?? Int.max) && $0["event"] as? String == "catchup"
            }
            let modes = events.filter { $0["result"] as? String == "done" }.compactMap { $0["mode"] as? String }
            var lost: Int?
            switch f.kind {
            case .kill:
                let asked = events.first { $0["result"] as? String == "requested" }
                lost = (asked?["from_step"] as? Int).map { max(0, f.stepAtFault + 1 - $0) }
            case .stop:
                lost = 0
            case .partition:
                let until = back.map(time) ?? Int.max
                lost = mine.filter { r in
                    guard time(r) < until, r["phase"] as? String == "training", let s = r["step"] as? Int, let m = majority(s) else { return false }
                    return m != r["digest"] as? String
                }.count
            }
            let recovered = back.map { time($0) }
            let missed = others.reduce(0) { sum, o in
                sum + (rounds[o] ?? []).filter {
                    time($0) >= f.began && time($0) <= (recovered ?? Int.max) && ($0["missing"] as? [String] ?? []).contains(f.peer)
                }.count
            }
            return Outcome(fault: f, detectedMs: firstStatus("dead"), suspectMs: firstStatus("suspect"),
                           recoveredMs: recovered.map { $0 - f.ended }, recoveredAtStep: back?["step"] as? Int,
                           catchUpModes: modes, stepsLost: lost, missed: missed)
        }
        var finals: [String: String] = [:]
        for id in peers {
            if let s = summaries[id], let steps = s["steps"] as? Int, let d = s["digest"] as? String {
                finals[id] = "\(steps - 1)/\(d)"
            } else if let last = (rounds[id] ?? []).max(by: { ($0["step"] as? Int ?? -1) < ($1["step"] as? Int ?? -1) }) {
                finals[id] = "\(last["step"] ?? "?")/\(last["digest"] ?? "?")"
            }
        }
        self.finals = finals
    }

    var text: String {
        var lines = ["", "recovery report (\(outcomes.count) faults)"]
        for o in outcomes {
            let f = o.fault
            let what: String
            switch f.kind {
            case .kill: what = "killed"
            case .stop: what = "stopped"
            case .partition: what = "cut off"
            }
            lines.append("  \(f.peer): \(what) at step \(f.stepAtFault) for \(f.ended - f.began) ms; "
                + "detected dead after " + (o.detectedMs.map { "\($0) ms" } ?? "- (back before the dead timeout)")
                + "; back in step " + (o.recoveredMs.map { "\($0) ms after the fault ended (step \(o.recoveredAtStep ?? -1)" + (o.catchUpModes.isEmpty ? "" : ", by \(o.catchUpModes.joined(separator: "+"))") + ")" } ?? "- (never)")
                + "; steps lost: " + (o.stepsLost.map(String.init) ?? "-")
                + "; contributions missed: \(o.missed)")
        }
        lines.append("  final digests agree: " + (digestsAgree ? "yes (\(finals.values.first ?? "-"))" : "NO \(finals.sorted { $0.key < $1.key })"))
        return lines.joined(separator: "\n")
    }

    /// The same as JSON, for scripts (written to RUN/chaos.json).
    var json: Data {
        let faults: [[String: Any]] = outcomes.map { o in
            ["kind": o.fault.kind.rawValue, "peer": o.fault.peer, "began_ms": o.fault.began, "ended_ms": o.fault.ended,
             "step_at_fault": o.fault.stepAtFault, "detected_dead_ms": o.detectedMs ?? NSNull(), "suspect_ms": o.suspectMs ?? NSNull(),
             "recovered_ms": o.recoveredMs ?? NSNull(), "recovered_at_step": o.recoveredAtStep ?? NSNull(),
             "catchup_modes": o.catchUpModes, "steps_lost": o.stepsLost ?? NSNull(), "contributions_missed": o.missed]
        }
        let obj: [String: Any] = ["faults": faults, "finals": finals, "digests_agree": digestsAgree]
        return (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])) ?? Data()
    }
}
