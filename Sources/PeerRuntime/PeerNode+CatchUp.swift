import Foundation
import Membership
import Mesh
import Tensors

/// Catch-up (DESIGN §7): a peer that is behind, or whose digest disagrees with the majority, asks
/// one donor for what it missed over the point-to-point sync link. **Log replay** when the donor
/// still retains every missed step (the requester re-applies the same contributions and lands on
/// the donor's digest exactly), otherwise a **chunked snapshot** of the replicated state. The
/// requester keeps its own DeMo residual either way. A silent or dead donor is replaced.
///
/// Engine work (replayed applies, restoring, taking a snapshot) runs as worker jobs; the loop
/// keeps serving and heartbeating meanwhile.
extension PeerNode {
    func beginCatchUp(donor: Int, snapshot: Bool, reason: String) {
        state = .catchingUp
        phase = .catchingUp(donor: donor, since: clock())
        catchUp = CatchUpState(snapshot: snapshot, nextReplay: lastApplied + 1)
        sendHeartbeat(now: clock())
        updateView(now: clock())
        let env = envelope(kind: .catchUpRequest, step: UInt64(lastApplied + 1), body: [snapshot ? 1 : 0])
        try? transport.request(env, from: PeerIndex(donor))
        log(["event": "catchup", "result": "requested", "donor": peerIDs[donor], "from_step": lastApplied + 1,
             "mode": snapshot ? "snapshot" : "replay", "reason": reason])
    }

    /// Donor side: answers one request with replays or snapshot chunks, then an end marker.
    func serveCatchUp(_ req: Envelope, route: ReplyRoute) {
        let requester = Int(req.header.origin)
        guard requester < peerIDs.count, requester != me else { return }
        if req.header.kind == .catchUpCredit {
            // Flow control: the requester consumed items and grants more. Only from the connection
            // that asked: a credit naming another requester cannot redirect its transfer.
            let key = TransferKey(requester: requester, route: route)
            guard var t = outgoingSnapshots[key], req.body.count == 4 else { return }
            let grant = Int(req.body[0]) | Int(req.body[1]) << 8 | Int(req.body[2]) << 16 | Int(req.body[3]) << 24
            t.credit = min(Self.snapshotWindow, t.credit + max(0, grant))
            t.lastActivity = clock()
            outgoingSnapshots[key] = t
            pumpSnapshot(to: key)
            return
        }
        guard req.header.kind == .catchUpRequest else { return }
        let now = clock()
        var budget = requestBudget[requester] ?? CatchUpBudget(at: now)
        let allowed = budget.take(now: now)
        requestBudget[requester] = budget
        guard allowed else {
            requestsDropped += 1
            warnLimited("catchup-flood-\(requester)", ["event": "catchup", "result": "request dropped", "from": peerIDs[requester],
                                                        "dropped": requestsDropped,
                                                        "detail": "more than \(Int(CatchUpBudget.capacity)) catch-up requests at once from \(peerIDs[requester]) (then \(Int(CatchUpBudget.refillPerSecond))/s); the rest are dropped"])
            return
        }
        func reply(_ kind: MessageKind, _ step: Int, _ body: [UInt8]) {
            try? transport.reply(envelope(kind: kind, step: UInt64(max(0, step)), body: body), to: route)
        }
        let canServe: Bool
        switch phase {
        case .training, .finishing: canServe = lastApplied >= 0 && state == .training
        default: canServe = false
        }
        let key = TransferKey(requester: requester, route: route)
        // Forged requests under a peer's name (other connections) get transfers of their own, but
        // only a few: the real peer's one is never replaced, and memory stays bounded.
        let others = outgoingSnapshots.keys.filter { $0.requester == requester && $0 != key }.count
            + snapshotWaiters.filter { $0.requester == requester && $0 != key }.count
        guard canServe, others < Self.maxTransfersPerRequester else {
            reply(.catchUpEnd, lastApplied, CatchUpWire.encodeEnd(digest: digest, mode: .refused))
            return
        }
        let wantSnapshot = req.body.first == 1
        // Steps from the wire are checked before they become an Int. A replay needs the
        // requester behind us; a snapshot is served whatever step it names (a healed isolated
        // peer may be ahead on a line of its own).
        if !wantSnapshot, req.header.step <= UInt64(lastApplied + 1), let steps = replayLog.range(Int(req.header.step), lastApplied) {
            let from = Int(req.header.step)
            // Under the same credit as a snapshot: the window now, one more per step consumed.
            outgoingSnapshots[key] = CatchUpTransfer(
                content: .replay(steps.enumerated().map { (from + $0.offset, CatchUpWire.encodeReplay($0.element)) }),
                route: route, credit: Self.snapshotWindow, step: lastApplied, digest: digest, lastActivity: now)
            pumpSnapshot(to: key)
        } else {
            // A snapshot of the state after the jobs already queued, taken on the worker; one cached
            // copy serves every requester of the same step.
            snapshotWaiters.insert(key)
            outgoingSnapshots[key] = nil
            if let cached = cachedSnapshot, cached.step == lastApplied, worker.pending == 0 {
                snapshotReady(step: cached.step, bytes: cached.bytes, digest: cached.digest)
            } else if !snapshotJobPending {
                snapshotJobPending = true
                let engine = self.engine, box = engineStep
                worker.submit(WorkJob(.other) { .snapshot(step: box.value, bytes: engine.snapshot(), digest: engine.digest()) }, now: clock())
            }
        }
    }

    /// A snapshot job finished: start a credit-controlled transfer to everyone waiting.
    func snapshotReady(step: Int, bytes: [UInt8], digest d: UInt64) {
        snapshotJobPending = false
        cachedSnapshot = (step, bytes, d)
        let size = max(1, options.snapshotChunk)
        for key in snapshotWaiters {
            outgoingSnapshots[key] = CatchUpTransfer(content: .snapshot(bytes: bytes, chunkSize: size), route: key.route,
                                                     credit: Self.snapshotWindow, step: step, digest: d, lastActivity: clock())
            pumpSnapshot(to: key)
        }
        snapshotWaiters = []
    }

    /// Chunks a requester may receive before it grants more credit.
    static let snapshotWindow = 4

    /// Transfers one requester may have open over different connections (see `TransferKey`).
    static let maxTransfersPerRequester = 2
    /// A transfer whose requester neither asked nor granted credit for this long is dropped (s).
    static let transferIdleLimit = 30.0

    /// Drops transfers nobody drives: a requester that went away, or a forger that never grants.
    func dropIdleTransfers(now: Double) {
        for (key, t) in outgoingSnapshots where now - t.lastActivity > Self.transferIdleLimit {
            outgoingSnapshots[key] = nil
            warnLimited("transfer-idle", ["event": "catchup", "result": "transfer dropped", "to": peerIDs[key.requester],
                                          "detail": "no credit for \(Int(Self.transferIdleLimit)) s"])
        }
    }

    /// Sends as many items as the requester's credit allows; the end marker after the last one.
    func pumpSnapshot(to key: TransferKey) {
        let requester = key.requester
        guard var t = outgoingSnapshots[key] else { return }
        let count = t.count
        while t.credit > 0 && t.next < count {
            let item = t.item(t.next)
            try? transport.reply(envelope(kind: item.kind, step: UInt64(max(0, item.step)), body: item.body), to: t.route)
            t.next += 1
            t.credit -= 1
        }
        guard t.next == count else {
            outgoingSnapshots[key] = t
            return
        }
        outgoingSnapshots[key] = nil
        switch t.content {
        case .replay:
            try? transport.reply(envelope(kind: .catchUpEnd, step: UInt64(max(0, t.step)),
                                          body: CatchUpWire.encodeEnd(digest: t.digest, mode: .replay)), to: t.route)
            log(["event": "catchup", "result": "served replay", "to": peerIDs[requester], "steps": count])
        case .snapshot(let bytes, _):
            try? transport.reply(envelope(kind: .catchUpEnd, step: UInt64(max(0, t.step)),
                                          body: CatchUpWire.encodeEnd(digest: t.digest, mode: .snapshot)), to: t.route)
            log(["event": "catchup", "result": "served snapshot", "to": peerIDs[requester], "bytes": bytes.count, "chunks": count])
        }
    }

    /// Largest snapshot a requester assembles (bytes): bounds memory whatever a donor claims.
    static let maxSnapshotBytes = 1 << 31

    /// Requester side.
    func receiveCatchUp(_ env: Envelope, from: Int) {
        guard case .catchingUp(let donor, _) = phase, Int(env.header.origin) == donor, !catchUp.failed,
              env.header.step < UInt64(Int32.max) else { return }
        let step = Int(env.header.step)
        switch env.header.kind {
        case .catchUpReplay:
            guard step == catchUp.nextReplay, let contributions = try? CatchUpWire.decodeReplay(env.body, peerCount: peerIDs.count) else { return }
            catchUp.nextReplay += 1
            // One more step for the one consumed (the donor keeps at most the window in flight).
            try? transport.request(envelope(kind: .catchUpCredit, step: env.header.step, body: [1, 0, 0, 0]), from: PeerIndex(donor))
            let engine = self.engine, box = engineStep, onApplied = self.onApplied
            pendingReplays[step] = contributions
            worker.submit(WorkJob(.apply) {
                do { try engine.apply(step: step, contributions: contributions) } catch { return .replayed(step: step, .failure(error)) }
                box.value = step
                onApplied?(step)
                return .replayed(step: step, .success(engine.digest()))
            }, now: clock())
            refresh(donor)
        case .catchUpSnapshot:
            guard let chunk = try? CatchUpWire.decodeChunk(env.body), chunk.bytes.count <= 2 * max(1, options.snapshotChunk),
                  catchUp.chunkCount == 0 || catchUp.chunkCount == chunk.count,
                  chunk.count <= Self.maxSnapshotBytes / max(1, options.snapshotChunk) + 1 else { return }
            if catchUp.chunks[chunk.index] == nil { catchUp.chunkBytes += chunk.bytes.count }
            guard catchUp.chunkBytes <= Self.maxSnapshotBytes else { return }
            catchUp.chunkCount = chunk.count
            catchUp.chunks[chunk.index] = chunk.bytes
            // Grant one more chunk for each one consumed (the donor keeps at most the window in flight).
            if chunk.index + Self.snapshotWindow < chunk.count {
                let credit = envelope(kind: .catchUpCredit, step: env.header.step, body: [1, 0, 0, 0])
                try? transport.request(credit, from: PeerIndex(donor))
            }
            refresh(donor)
        case .catchUpEnd:
            guard let end = try? CatchUpWire.decodeEnd(env.body) else { return }
            switch end.mode {
            case .refused:
                tryNextDonor(after: donor, snapshot: catchUp.snapshot, reason: "donor refused", otherwise: "every donor refused")
            case .snapshot:
                var bytes: [UInt8] = []
                bytes.reserveCapacity(catchUp.chunkBytes)
                for i in 0..<catchUp.chunkCount {
                    guard let c = catchUp.chunks[i] else { beginCatchUp(donor: donor, snapshot: true, reason: "snapshot chunk \(i) missing"); return }
                    bytes += c
                }
                catchUp.chunks = [:]
                let engine = self.engine, box = engineStep, onApplied = self.onApplied
                worker.submit(WorkJob(.other) {
                    do { try engine.restore(snapshot: bytes) } catch { return .restored(step: step, .failure(error)) }
                    box.value = step
                    onApplied?(step)
                    return .restored(step: step, .success(engine.digest()))
                }, now: clock())
                catchUp.pendingEnd = (donor, step, end.digest, .snapshot)
            case .replay:
                catchUp.pendingEnd = (donor, step, end.digest, .replay)
            }
        default:
            return
        }
    }

    /// Excludes `donor` and asks the next peer ahead; with nobody left, trains on from here.
    func tryNextDonor(after donor: Int, snapshot: Bool, reason: String, otherwise: String) {
        triedDonors.insert(donor)
        if let next = donorAhead(excluding: triedDonors) {
            beginCatchUp(donor: next, snapshot: snapshot, reason: reason)
        } else {
            enterTraining(reason: otherwise)
        }
    }

    /// A donor that served a wrong state once is not asked again in this run.
    func distrust(_ donor: Int, _ why: String) {
        guard distrustedDonors.insert(donor).inserted else { return }
        let detail = "\(peerIDs[donor]) will not be asked for catch-up again in this run: \(why)"
        log(["event": "catchup", "result": "donor distrusted", "donor": peerIDs[donor], "detail": detail])
        onWarning?(detail)
    }

    /// Progress, not silence: the donor's timeout starts again.
    func refresh(_ donor: Int) {
        if case .catchingUp(let d, _) = phase, d == donor { phase = .catchingUp(donor: d, since: clock()) }
    }

    func replayApplied(step: Int, _ result: Result<UInt64, any Error>) {
        switch result {
        case .success(let d):
            digest = d
            replayedSteps += 1
            if let c = pendingReplays.removeValue(forKey: step) { replayLog.record(step: step, c) }
            handle(core.reset(lastApplied: step, digest: d, now: clock()))
            rounds.write(["step": step, "digest": ParameterDigest.hex(d), "loss": NSNull(), "contributors": [String](),
                          "missing": [String](), "bytes_out": 0, "bytes_in": 0, "bytes_reference": engine.referenceBytesPerContribution,
                          "bytes_dense": engine.denseBytesPerContribution, "waited_ms": 0, "timed_out": false,
                          "late_dropped": core.staleDropped, "invalid_bodies": invalidBodies, "time_ms": wallMillis(),
                          "peer": peerIDs[me], "phase": "replay"])
        case .failure(let e):
            pendingReplays = [:]
            log(["event": "catchup", "result": "replay failed", "step": step, "error": "\(e)"])
            if !catchUp.failed, case .catchingUp(let donor, _) = phase {
                catchUp.failed = true
                catchUp.pendingEnd = nil
                beginCatchUp(donor: donor, snapshot: true, reason: "replay could not be applied")
            }
        }
    }

    func snapshotRestored(step: Int, _ result: Result<UInt64, any Error>) {
        switch result {
        case .success(let d):
            digest = d
            snapshotsLoaded += 1
            replayLog = ReplayLog(capacity: options.replaySteps)
            handle(core.reset(lastApplied: step, digest: d, now: clock()))
        case .failure(let e):
            log(["event": "catchup", "result": "snapshot rejected", "error": "\(e)"])
            catchUp.pendingEnd = nil
            guard case .catchingUp(let donor, _) = phase else { return }
            distrust(donor, "its snapshot could not be restored: \(e)")
            tryNextDonor(after: donor, snapshot: true, reason: "bad snapshot", otherwise: "no donor left")
        }
    }

    func finishCatchUp(donor: Int, lastStep: Int, digest want: UInt64, mode: CatchUpWire.EndMode) {
        guard case .catchingUp(let d, _) = phase, d == donor else { return }
        let agrees = digest == want && lastApplied == lastStep
        log(["event": "catchup", "result": agrees ? "done" : "digest mismatch", "mode": mode == .snapshot ? "snapshot" : "replay",
             "donor": peerIDs[donor], "step": lastApplied, "digest": ParameterDigest.hex(digest)])
        if !agrees {
            if mode == .snapshot {
                distrust(donor, "its snapshot restored to digest \(ParameterDigest.hex(digest)) at step \(lastApplied), not the \(ParameterDigest.hex(want)) at step \(lastStep) it announced")
                tryNextDonor(after: donor, snapshot: true, reason: "snapshot ended on a different digest", otherwise: "no donor left")
            } else {
                beginCatchUp(donor: donor, snapshot: true, reason: "replay ended on a different digest")
            }
            return
        }
        // The donor's word is not enough: the majority of the other live peers must report the
        // same digest at that step (heartbeats and UPDATE bases, already collected).
        reported.record(peer: donor, step: lastStep, digest: want)
        catchUp.verifying = (lastStep, want, mode, clock())
        verifyCatchUp(donor: donor, now: clock())
    }

    /// Voters on a caught-up state: the other live peers we still trust, the donor among them.
    func catchUpVoters(donor: Int) -> [Int] {
        Array(Set(membership.alivePeers.filter { $0 != me && !distrustedDonors.contains($0) } + [donor]))
    }

    /// Confirmed by the majority: train on (or catch up further). Refuted: the donor is not asked
    /// again and another one serves a snapshot. Undecided: wait for more reports, up to
    /// `catchUpTimeout`; then a state no other peer contradicts is kept (the others may have
    /// moved past that step without reporting it), one that any contradicts is refused.
    func verifyCatchUp(donor: Int, now: Double) {
        guard let v = catchUp.verifying else { return }
        let verdict = reported.verdict(step: v.step, digest: v.digest, voters: catchUpVoters(donor: donor))
        let hex = ParameterDigest.hex(v.digest)
        switch verdict {
        case .confirmed(let by):
            catchUp.verifying = nil
            log(["event": "catchup", "result": "verified", "donor": peerIDs[donor], "step": v.step, "digest": hex,
                 "confirmed_by": by.map { peerIDs[$0] }])
            if let ahead = donorAhead(), (membership.records[ahead]?.last?.lastAppliedStep ?? 0) > Int64(lastApplied + 4 + options.overlap) {
                beginCatchUp(donor: ahead, snapshot: false, reason: "others moved on during catch-up")
            } else {
                enterTraining(reason: "caught up")
            }
        case .refuted(let majority, let by):
            catchUp.verifying = nil
            refuteCatchUp(donor: donor, step: v.step, digest: hex, majority: majority, by: by)
        case .undecided(let agreeing, let disagreeing):
            guard now - v.since >= options.catchUpTimeout else { return }
            catchUp.verifying = nil
            if disagreeing.isEmpty {
                log(["event": "catchup", "result": "verified", "donor": peerIDs[donor], "step": v.step, "digest": hex,
                     "confirmed_by": agreeing.map { peerIDs[$0] }, "detail": "no other peer reported step \(v.step); nobody contradicts it"])
                enterTraining(reason: "caught up")
            } else {
                refuteCatchUp(donor: donor, step: v.step, digest: hex, majority: nil, by: disagreeing)
            }
        }
    }

    func refuteCatchUp(donor: Int, step: Int, digest: String, majority: UInt64?, by: [Int]) {
        let theirs = majority.map { " report \(ParameterDigest.hex($0))" } ?? " report other digests"
        log(["event": "catchup", "result": "refused state", "donor": peerIDs[donor], "step": step, "digest": digest,
             "majority": majority.map(ParameterDigest.hex) ?? "", "majority_peers": by.map { peerIDs[$0] }])
        distrust(donor, "the state it sent has digest \(digest) at step \(step), but \(by.map { peerIDs[$0] }.joined(separator: ", "))\(theirs) there")
        tryNextDonor(after: donor, snapshot: true, reason: "the majority reports another state", otherwise: "no trusted donor left")
    }
}
