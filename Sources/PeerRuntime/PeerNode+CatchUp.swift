import Foundation
import Membership
import Mesh
import Tensors

/// Catch-up (DESIGN §7): a peer that is behind, or whose digest disagrees with the majority, asks
/// one donor for what it missed over the point-to-point sync link. **Log replay** when the donor
/// still retains every missed step (the rejoiner re-applies the same contributions and lands on
/// the donor's digest exactly), otherwise a **chunked snapshot** of the replicated state. The
/// requester keeps its own DeMo residual either way. A silent or dead donor is replaced.
extension PeerNode {
    func beginCatchUp(donor: Int, snapshot: Bool, reason: String) {
        state = .catchingUp
        sendHeartbeat(now: clock())
        round.reset(lastApplied: lastApplied)
        snapshotChunks = [:]
        phase = .catchingUp(donor: donor, since: clock())
        let env = envelope(kind: .catchUpRequest, step: UInt64(lastApplied + 1), body: [snapshot ? 1 : 0])
        try? transport.request(env, from: PeerIndex(donor))
        log(["event": "catchup", "result": "requested", "donor": peerIDs[donor], "from_step": lastApplied + 1,
             "mode": snapshot ? "snapshot" : "replay", "reason": reason])
    }

    /// Donor side: answers one request with replays or snapshot chunks, then an end marker.
    func serveCatchUp(_ req: Envelope, route: ReplyRoute) {
        let requester = Int(req.header.origin)
        guard requester < peerIDs.count else { return }
        if req.header.kind == .catchUpCredit {
            // Flow control: the requester consumed chunks and grants more.
            guard var t = outgoingSnapshots[requester], req.body.count == 4 else { return }
            let grant = Int(req.body[0]) | Int(req.body[1]) << 8 | Int(req.body[2]) << 16 | Int(req.body[3]) << 24
            t.credit = min(Self.snapshotWindow, t.credit + max(0, grant))
            t.route = route
            outgoingSnapshots[requester] = t
            pumpSnapshot(to: requester)
            return
        }
        guard req.header.kind == .catchUpRequest else { return }
        func reply(_ kind: MessageKind, _ step: Int, _ body: [UInt8]) {
            try? transport.reply(envelope(kind: kind, step: UInt64(max(0, step)), body: body), to: route)
        }
        let canServe: Bool
        switch phase {
        case .training, .observing: canServe = lastApplied >= 0
        default: canServe = false
        }
        guard canServe else {
            reply(.catchUpEnd, lastApplied, CatchUpWire.encodeEnd(digest: engine.digest(), mode: .refused))
            return
        }
        let from = Int(req.header.step)
        let wantSnapshot = req.body.first == 1
        if !wantSnapshot, from >= 0, from <= lastApplied + 1, let steps = replayLog.range(from, lastApplied) {
            for (i, c) in steps.enumerated() { reply(.catchUpReplay, from + i, CatchUpWire.encodeReplay(c)) }
            reply(.catchUpEnd, lastApplied, CatchUpWire.encodeEnd(digest: engine.digest(), mode: .replay))
            log(["event": "catchup", "result": "served replay", "to": peerIDs[Int(req.header.origin)], "steps": steps.count])
        } else {
            // A snapshot of the state now, sent a window of chunks at a time: the requester grants
            // more credit as it consumes them, so a slow link never has more than the window in flight.
            let snap = engine.snapshot()
            let size = max(1, options.snapshotChunk)
            outgoingSnapshots[requester] = SnapshotTransfer(route: route, bytes: snap, chunkSize: size,
                                                            count: max(1, (snap.count + size - 1) / size), next: 0,
                                                            credit: Self.snapshotWindow, step: lastApplied, digest: engine.digest())
            pumpSnapshot(to: requester)
        }
    }

    /// Chunks a requester may receive before it grants more credit.
    static let snapshotWindow = 4

    /// Sends as many chunks as the requester's credit allows; the end marker after the last one.
    func pumpSnapshot(to requester: Int) {
        guard var t = outgoingSnapshots[requester] else { return }
        while t.credit > 0 && t.next < t.count {
            let lo = t.next * t.chunkSize, hi = min(t.bytes.count, lo + t.chunkSize)
            try? transport.reply(envelope(kind: .catchUpSnapshot, step: UInt64(max(0, t.step)),
                                          body: CatchUpWire.encodeChunk(index: t.next, count: t.count, t.bytes[lo..<hi])), to: t.route)
            t.next += 1
            t.credit -= 1
        }
        if t.next == t.count {
            try? transport.reply(envelope(kind: .catchUpEnd, step: UInt64(max(0, t.step)),
                                          body: CatchUpWire.encodeEnd(digest: t.digest, mode: .snapshot)), to: t.route)
            outgoingSnapshots[requester] = nil
            log(["event": "catchup", "result": "served snapshot", "to": peerIDs[requester], "bytes": t.bytes.count, "chunks": t.count])
        } else {
            outgoingSnapshots[requester] = t
        }
    }

    /// Requester side.
    func receiveCatchUp(_ env: Envelope, from: Int) {
        guard case .catchingUp(let donor, _) = phase, Int(env.header.origin) == donor else { return }
        let step = Int(env.header.step)
        switch env.header.kind {
        case .catchUpReplay:
            guard step == lastApplied + 1, let contributions = try? CatchUpWire.decodeReplay(env.body, peerCount: peerIDs.count) else { return }
            do { try engine.apply(step: step, contributions: contributions) } catch {
                log(["event": "catchup", "result": "replay failed", "step": step, "error": "\(error)"])
                beginCatchUp(donor: donor, snapshot: true, reason: "replay could not be applied")
                return
            }
            replayLog.record(step: step, contributions)
            lastApplied = step
            replayedSteps += 1
            rounds.write(["step": step, "digest": ParameterDigest.hex(engine.digest()), "loss": NSNull(),
                          "contributors": contributions.map { peerIDs[$0.peer] }, "missing": [String](), "bytes_out": 0,
                          "bytes_in": env.body.count, "bytes_reference": engine.referenceBytesPerContribution,
                          "bytes_dense": engine.denseBytesPerContribution, "waited_ms": 0, "timed_out": false,
                          "late_dropped": round.lateDropped, "invalid_bodies": invalidBodies, "time_ms": wallMillis(),
                          "peer": peerIDs[me], "phase": "replay"])
            onApplied?(step)
        case .catchUpSnapshot:
            guard let chunk = try? CatchUpWire.decodeChunk(env.body) else { return }
            snapshotChunks[chunk.index] = chunk.bytes
            snapshotChunks[-1] = [UInt8(truncatingIfNeeded: chunk.count), UInt8(truncatingIfNeeded: chunk.count >> 8),
                                  UInt8(truncatingIfNeeded: chunk.count >> 16)]
            // Grant one more chunk for each one consumed (the donor keeps at most the window in flight).
            if chunk.index + Self.snapshotWindow < chunk.count {
                let credit = envelope(kind: .catchUpCredit, step: env.header.step, body: [1, 0, 0, 0])
                try? transport.request(credit, from: PeerIndex(donor))
            }
            if case .catchingUp(let d, _) = phase { phase = .catchingUp(donor: d, since: clock()) }  // progress, not silence
        case .catchUpEnd:
            guard let end = try? CatchUpWire.decodeEnd(env.body) else { return }
            finishCatchUp(donor: donor, lastStep: step, end: end)
        default:
            return
        }
    }

    func finishCatchUp(donor: Int, lastStep: Int, end: (digest: UInt64, mode: CatchUpWire.EndMode)) {
        switch end.mode {
        case .refused:
            triedDonors.insert(donor)
            if let next = donorAhead(excluding: triedDonors) { beginCatchUp(donor: next, snapshot: false, reason: "donor refused") } else { enterObserving() }
            return
        case .snapshot:
            let header = snapshotChunks[-1] ?? []
            let count = header.count == 3 ? Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16 : 0
            var bytes: [UInt8] = []
            for i in 0..<count {
                guard let c = snapshotChunks[i] else { beginCatchUp(donor: donor, snapshot: true, reason: "snapshot chunk \(i) missing"); return }
                bytes += c
            }
            do { try engine.restore(snapshot: bytes) } catch {
                log(["event": "catchup", "result": "snapshot rejected", "error": "\(error)"])
                triedDonors.insert(donor)
                if let next = donorAhead(excluding: triedDonors) { beginCatchUp(donor: next, snapshot: true, reason: "bad snapshot") } else { enterObserving() }
                return
            }
            snapshotChunks = [:]
            lastApplied = lastStep
            snapshotsLoaded += 1
            replayLog = ReplayLog(capacity: options.replaySteps)
            onApplied?(lastStep)
        case .replay:
            break
        }
        let agrees = engine.digest() == end.digest && lastApplied == lastStep
        log(["event": "catchup", "result": agrees ? "done" : "digest mismatch", "mode": end.mode == .snapshot ? "snapshot" : "replay",
             "donor": peerIDs[donor], "step": lastApplied, "digest": ParameterDigest.hex(engine.digest())])
        if !agrees {
            beginCatchUp(donor: donor, snapshot: true, reason: "replay ended on a different digest")
            return
        }
        round.reset(lastApplied: lastApplied)
        nextStep = lastApplied + 1
        if let ahead = donorAhead(), (membership.records[ahead]?.last?.lastAppliedStep ?? 0) > Int64(lastApplied + 2) {
            beginCatchUp(donor: ahead, snapshot: false, reason: "others moved on during catch-up")
        } else {
            enterObserving()
        }
    }

    /// Back in the game: announce `training`, but apply live steps without contributing for a
    /// couple of heartbeats, so that every other peer expects us before our first contribution.
    func enterObserving() {
        triedDonors = []
        state = .observing
        round.reset(lastApplied: lastApplied)
        nextStep = lastApplied + 1
        sendHeartbeat(now: clock())
        phase = .observing
    }
}
