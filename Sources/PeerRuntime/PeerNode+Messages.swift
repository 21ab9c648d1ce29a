import Foundation
import Membership
import Mesh
import Tensors

extension PeerNode {
    /// Drains transport events for up to `timeout` seconds and runs the membership clock.
    func pump(timeout: Double) {
        let events = transport.events(timeout: .milliseconds(Int64(max(0, timeout) * 1000)))
        for e in events {
            switch e {
            case .message(let env, let from):
                receive(env, from: Int(from))
            case .request(let env, let route):
                serveCatchUp(env, route: route)
            case .neighborConnected, .neighborDisconnected:
                continue
            }
        }
        let now = clock()
        membershipEvents(membership.onTick(now: now), now: now)
    }

    /// Decodes a broadcast once, at the edge, and hands typed values to the cores.
    func receive(_ env: Envelope, from: Int) {
        if env.header.kind == .hello {
            hello(env, from: from)
            return
        }
        // The transport drops other runs' messages; a simulated network does not.
        guard env.header.runID == runID else { return }
        let origin = Int(env.header.origin)
        guard origin < peerIDs.count else { return }
        bytesIn += UInt64(env.body.count + MessageHeader.size)
        let now = clock()
        switch env.header.kind {
        case .heartbeat:
            guard origin != me else { return }
            guard let hb = try? Heartbeat.decode(env.body, peerCount: peerIDs.count), hb.peer == origin,
                  abs(hb.lastAppliedStep) < Int64(Int32.max) else {
                invalidBodies += 1
                return
            }
            membershipEvents(membership.onHeartbeat(hb, now: now), now: now)
            if membership.records[origin]?.last?.incarnation == hb.incarnation, hb.lastAppliedStep >= 0 {
                reported.record(peer: origin, step: Int(hb.lastAppliedStep), digest: hb.digest)
            }
            if hb.state == .catchingUp || hb.state == .isolated { core.forget(peer: origin) }
            if !core.view.active { updateView(now: now) }   // the catch-up horizon moves with others' steps
            // One line per peer and at most every 100 ms: a peer that floods heartbeats (hostile,
            // or a bug) must not fill the disk. Honest peers send every `interval` (250 ms).
            if membership.status(of: origin) == .alive, now - (lastReceivedLogged[origin] ?? -Double.infinity) >= 0.1 {
                lastReceivedLogged[origin] = now
                log(["event": "received", "from": peerIDs[origin], "status": membership.status(of: origin).rawValue,
                     "incarnation": hb.incarnation, "state": hb.state.description, "step": hb.lastAppliedStep,
                     "digest": ParameterDigest.hex(hb.digest), "loss": jsonNumber(hb.loss), "lag": Int(hb.lastAppliedStep) - lastApplied])
            }
        case .bye:
            guard origin != me else { return }
            membershipEvents(membership.onBye(peer: origin, now: now), now: now)
        case .update:
            guard origin != me else { return }
            guard let c = try? Contribution.decode(origin: origin, incarnation: env.header.incarnation, tag: env.header.step, body: env.body),
                  (try? engine.validate(body: c.payload)) != nil else {
                invalidBodies += 1
                warnLimited("update", ["event": "refused", "what": "invalid UPDATE", "from": peerIDs[origin], "step": "\(env.header.step)"])
                return
            }
            reported.record(peer: origin, step: c.base, digest: c.baseDigest)
            handle(core.onContribution(c, now: now))
        case .commit:
            guard let c = try? Commit.decode(step: env.header.step, body: env.body, peerCount: peerIDs.count,
                                             maxEntries: core.maxCommitEntries), c.proposer == origin else {
                invalidBodies += 1
                warnLimited("commit", ["event": "refused", "what": "invalid COMMIT", "from": peerIDs[origin], "step": "\(env.header.step)"])
                return
            }
            guard origin != me else { return }
            handle(core.onCommit(c, now: now))
        case .catchUpReplay, .catchUpSnapshot, .catchUpEnd:
            receiveCatchUp(env, from: from)
        default:
            return
        }
    }

    func membershipEvents(_ events: [MembershipEvent], now: Double) {
        for e in events {
            switch e {
            case .sendHeartbeat:
                sendHeartbeat(now: now)
            case .statusChanged(let p, let from, let to):
                let last = membership.records[p]?.last
                log(["event": "status", "from": peerIDs[p], "status": to.rawValue, "previous": from.rawValue,
                     "incarnation": last?.incarnation ?? 0, "step": last?.lastAppliedStep ?? -1,
                     "digest": last.map { ParameterDigest.hex($0.digest) } ?? ""])
                updateView(now: now)
            case .rejoined(let p, let inc):
                let last = membership.records[p]?.last
                core.forget(peer: p)
                reported.forget(peer: p)
                log(["event": "status", "from": peerIDs[p], "status": "rejoined", "incarnation": inc,
                     "step": last?.lastAppliedStep ?? -1, "digest": last.map { ParameterDigest.hex($0.digest) } ?? ""])
                updateView(now: now)
            }
        }
    }

    /// HELLO: every few seconds while joining, less often later (a peer started later with
    /// another file must still be named).
    func sendHelloIfDue(now: Double) {
        guard var fp = options.fingerprint else { return }
        let period: Double
        if case .joining = phase { period = options.helloInterval } else { period = 5 * options.helloInterval }
        guard now - lastHello >= period else { return }
        lastHello = now
        fp.peerID = peerIDs[me]
        publish(kind: .hello, step: 0, body: fp.encode())
    }

    /// A HELLO from the neighbour `from` (an index of our topology; its sender may be of another
    /// run). Another run id: name what differs, and hold back training while it is heard. Same run
    /// id but other data or timing settings: a warning only.
    func hello(_ env: Envelope, from: Int) {
        guard let mine = options.fingerprint, let theirs = try? RunFingerprint.decode(env.body) else {
            invalidBodies += 1
            return
        }
        let now = clock()
        let foreign = env.header.runID != runID || theirs.runID != runID
        let diffs = mine.differences(from: theirs).filter { foreign || $0.field != "run" }
        guard foreign || !diffs.isEmpty else { return }
        let at = from >= 0 && from < options.endpoints.count ? " at \(options.endpoints[from])" : ""
        let what = diffs.isEmpty ? "settings that give another run id" : diffs.prefix(6).map(\.description).joined(separator: "; ")
        let message: String
        if foreign {
            message = "\(theirs.peerID)\(at) uses another topology: \(what) (run ids \(ParameterDigest.hex(runID)) here, "
                + "\(ParameterDigest.hex(env.header.runID)) there); every peer must use the same file"
            foreignPeers[theirs.peerID] = (now, message)
        } else {
            message = "\(theirs.peerID)\(at) trains with other settings: \(what); every peer should use the same file"
        }
        guard now - (foreignLogged[theirs.peerID] ?? -Double.infinity) >= 60 else { return }
        foreignLogged[theirs.peerID] = now
        log(["event": foreign ? "foreign_topology" : "other_settings", "from": theirs.peerID, "endpoint": at.isEmpty ? "-" : options.endpoints[from],
             "differs": diffs.map(\.field), "here": diffs.map { $0.here ?? "-" }, "there": diffs.map { $0.there ?? "-" },
             "run_id_there": ParameterDigest.hex(env.header.runID), "detail": message])
        onForeign?(message)
    }

    /// The newest message about a peer of another run heard within the last 30 s, if any.
    func recentForeign(now: Double) -> String? {
        foreignPeers = foreignPeers.filter { now - $0.value.at < 30 }
        return foreignPeers.values.max { $0.at < $1.at }?.message
    }

    /// Sent from the loop thread on its own clock, with the last state the worker reported: a
    /// long compute never silences it.
    func sendHeartbeat(now: Double) {
        let hb = Heartbeat(peer: me, incarnation: incarnation, state: state, lastAppliedStep: Int64(lastApplied),
                           digest: digest, loss: lastLoss, bytesOut: bytesOut, bytesIn: bytesIn,
                           sentAtMillis: wallMillis(),
                           heard: membership.alivePeers.filter { $0 < Heartbeat.heardCapacity }.reduce(UInt64(0)) { $0 | 1 << UInt64($1) })
        publish(kind: .heartbeat, step: UInt64(max(0, lastApplied)), body: hb.encode())
        log(["event": "sent", "from": peerIDs[me], "status": "alive", "incarnation": incarnation, "state": state.description,
             "step": lastApplied, "digest": ParameterDigest.hex(hb.digest)])
    }

    func envelope(kind: MessageKind, step: UInt64, body: [UInt8]) -> Envelope {
        sequence += 1
        return Envelope.make(kind: kind, runID: runID, origin: PeerIndex(me), incarnation: incarnation,
                             step: step, sequence: sequence, body: body)
    }

    func publish(kind: MessageKind, step: UInt64, body: [UInt8]) {
        bytesOut += UInt64(body.count + MessageHeader.size)
        try? transport.publish(envelope(kind: kind, step: step, body: body))
    }

    /// The live peer furthest ahead of us that can serve (training or finishing; never an
    /// isolated one), ties to the lowest index; nil when nobody is ahead.
    func donorAhead(excluding: Set<Int> = []) -> Int? {
        let candidates = membership.alivePeers.compactMap { p -> (peer: Int, step: Int64)? in
            guard !excluding.contains(p), !distrustedDonors.contains(p), let hb = membership.records[p]?.last,
                  hb.state == .training else { return nil }
            return (p, hb.lastAppliedStep)
        }
        return Self.chooseDonor(candidates, after: lastApplied)
    }

    /// Pure: the donor to catch up from. Steps are self-reported, so one peer claiming to be far
    /// ahead must not be picked over the others (issue 16: a key holder would become everyone's
    /// donor): the target is the step that half the candidates, rounded up, have reached (the k-th
    /// highest reported, k = ⌈n/2⌉), and the donor the candidate at or above it with the lowest step
    /// (ties: lowest index). nil when that step is not above `after`. With one or two candidates
    /// this is the highest (a restarted peer must catch up from whoever is ahead); from three on, one
    /// peer's claim alone never decides.
    public static func chooseDonor(_ candidates: [(peer: Int, step: Int64)], after: Int) -> Int? {
        guard !candidates.isEmpty else { return nil }
        let steps = candidates.map(\.step).sorted(by: >)
        let majorityStep = steps[(steps.count - 1) / 2]
        guard majorityStep > Int64(after) else { return nil }
        return candidates.filter { $0.step >= majorityStep }
            .min { $0.step != $1.step ? $0.step < $1.step : $0.peer < $1.peer }?.peer
    }

    // MARK: directives and results

    /// Carries out the round core's directives.
    func handle(_ directives: [PeerProtocol.Directive]) {
        for d in directives {
            switch d {
            case .compute(let tag, let base):
                let engine = self.engine, baseDigest = digest
                worker.submit(WorkJob(.compute) {
                    .computed(tag: tag, base: base, baseDigest: baseDigest, Result { try engine.contribute(step: tag) })
                }, now: clock())
            case .apply(let commit, let parts):
                pendingApplies[commit.step] = (commit, parts)
                let engine = self.engine, box = engineStep, onApplied = self.onApplied
                let list = parts.map { (peer: $0.id.origin, body: $0.payload) }
                worker.submit(WorkJob(.apply) {
                    do {
                        try engine.apply(step: commit.step, contributions: list)
                    } catch {
                        return .applied(step: commit.step, .failure(error))
                    }
                    box.value = commit.step
                    onApplied?(commit.step)
                    return .applied(step: commit.step, .success(engine.digest()))
                }, now: clock())
            case .publishCommit(let c):
                publish(kind: .commit, step: UInt64(c.step), body: c.encodeBody())
            case .needCatchUp(let reason):
                guard case .training = phase else { continue }
                if let donor = donorAhead() ?? core.proposer.flatMap({ $0 != me && membership.status(of: $0) == .alive ? $0 : nil }) {
                    beginCatchUp(donor: donor, snapshot: false, reason: reason)
                } else {
                    warnLimited("stuck", ["event": "stuck", "reason": reason, "step": lastApplied])
                }
            case .refused(let what):
                warnLimited("refused", ["event": "refused", "what": what])
            }
        }
    }

    /// Takes every finished job's result, in order.
    func takeResults() {
        for r in worker.completed(now: clock()) {
            switch r {
            case .computed(let tag, let base, let baseDigest, let result):
                switch result {
                case .success(let (body, loss)):
                    lastLoss = loss
                    let c = Contribution(id: ContributionID(origin: me, incarnation: incarnation, tag: tag), base: base,
                                         baseDigest: baseDigest, payload: body)
                    publish(kind: .update, step: UInt64(tag), body: c.encodeBody())
                    handle(core.onContribution(c, now: clock()))
                case .failure(let e):
                    handle(core.onComputeAbandoned(tag: tag, now: clock()))
                    workError = .engine(step: tag, underlying: e)
                }
            case .applied(let step, let result):
                let pending = pendingApplies.removeValue(forKey: step)
                switch result {
                case .success(let d):
                    digest = d
                    if let (commit, parts) = pending { recordApplied(commit, parts) }
                    if state == .isolated { stepsAlone += 1 }
                    handle(core.onApplied(step: step, digest: d, now: clock()))
                    if let (commit, parts) = pending { checkMajority(commit: commit, parts: parts) }
                case .failure(let e):
                    log(["event": "apply-failed", "step": step, "error": "\(e)"])
                    handle(core.onApplied(step: step, digest: nil, now: clock()))
                }
            case .replayed(let step, let result):
                replayApplied(step: step, result)
            case .restored(let step, let result):
                snapshotRestored(step: step, result)
            case .snapshot(let step, let bytes, let d):
                snapshotReady(step: step, bytes: bytes, digest: d)
            case .done:
                continue
            }
        }
        if let end = catchUp.pendingEnd, worker.pending == 0 {
            catchUp.pendingEnd = nil
            finishCatchUp(donor: end.donor, lastStep: end.step, digest: end.digest, mode: end.mode)
        }
    }

    /// The replay log and rounds.jsonl line of an applied step.
    func recordApplied(_ commit: Commit, _ parts: [Contribution]) {
        replayLog.record(step: commit.step, parts.map { (peer: $0.id.origin, body: $0.payload) })
        let ms = wallMillis()
        let late = (0..<min(64, peerIDs.count)).filter { commit.late & (1 << UInt64($0)) != 0 }
        let line: [String: Any] = [
            "t": rfc3339(millis: ms), "step": commit.step, "digest": ParameterDigest.hex(digest), "loss": jsonNumber(lastLoss),
            "contributors": parts.map { peerIDs[$0.id.origin] },
            "staleness": parts.map { commit.step - $0.id.tag },
            "missing": late.map { peerIDs[$0] }, "late": late.count,
            "proposer": peerIDs[commit.proposer],
            "bytes_out": parts.first { $0.id.origin == me }.map { $0.payload.count + Contribution.prefixSize } ?? 0,
            "bytes_in": parts.filter { $0.id.origin != me }.reduce(0) { $0 + $1.payload.count + Contribution.prefixSize },
            "bytes_reference": engine.referenceBytesPerContribution, "bytes_dense": engine.denseBytesPerContribution,
            "waited_ms": Int(commit.waitedMillis), "timed_out": commit.timedOut, "deadline_ms": Int(core.currentDeadlineSeconds * 1000),
            "late_dropped": core.staleDropped, "invalid_bodies": invalidBodies, "time_ms": ms, "peer": peerIDs[me],
            "phase": phaseName,
        ]
        var perToken: [String: Any] = [:]
        if engine.tokensPerContribution > 0 {   // bytes per token trained since the last sync
            let out = line["bytes_out"] as? Int ?? 0
            perToken = ["tokens": engine.tokensPerContribution,
                        "bytes_out_per_token": Double(out) / Double(engine.tokensPerContribution)]
        }
        rounds.write(line.merging(contributionScoreFields(step: commit.step)) { kept, _ in kept }.merging(perToken) { kept, _ in kept })
    }

    /// The backstop: compares the digests the contributors had at their base step with ours at
    /// the same step; if ours is in the minority (ties: the group with the lowest peer index), we
    /// diverged and repair from a peer of the majority by snapshot.
    func checkMajority(commit: Commit, parts: [Contribution]) {
        guard case .training = phase, state == .training else { return }
        // The newest base we still know our own digest for.
        guard let base = parts.map(\.base).filter({ core.digest(after: $0) != nil }).max(), let mine = core.digest(after: base) else { return }
        let others = parts.filter { $0.base == base && $0.id.origin != me }.map { (peer: $0.id.origin, digest: $0.baseDigest) }
        guard let majority = Self.majorityVote(me: me, mine: mine, others: others) else { return }
        repairs += 1
        log(["event": "diverged", "step": commit.step, "base": base, "mine": ParameterDigest.hex(mine),
             "majority": ParameterDigest.hex(majority.digest), "majority_peers": majority.peers.map { peerIDs[$0] }])
        beginCatchUp(donor: majority.peers.min()!, snapshot: true, reason: "digest differs from the majority")
    }

    /// Pure: nil when `mine` is the majority digest (ties: the group holding the lowest index);
    /// otherwise the majority's digest and peers. Needs at least one other report.
    public static func majorityVote(me: Int, mine: UInt64, others: [(peer: Int, digest: UInt64)]) -> (digest: UInt64, peers: [Int])? {
        guard !others.isEmpty else { return nil }
        var groups: [UInt64: Set<Int>] = [:]
        for o in others { groups[o.digest, default: []].insert(o.peer) }
        groups[mine, default: []].insert(me)
        let best = groups.max { a, b in
            a.value.count != b.value.count ? a.value.count < b.value.count : a.value.min()! > b.value.min()!
        }!
        return best.key == mine ? nil : (best.key, best.value.sorted())
    }
}
