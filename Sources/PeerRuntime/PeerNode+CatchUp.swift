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
        guard req.header.kind == .catchUpRequest, Int(req.header.origin) < peerIDs.count else { return }
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
            let snap = engine.snapshot()
            let size = max(1, options.snapshotChunk)
            let count = max(1, (snap.count + size - 1) / size)
            for i in 0..<count {
                reply(.catchUpSnapshot, lastApplied, CatchUpWire.encodeChunk(index: i, count: count, snap[(i * size)..<min(snap.count, (i + 1) * size)]))
            }
            reply(.catchUpEnd, lastApplied, CatchUpWire.encodeEnd(digest: engine.digest(), mode: .snapshot))
            log(["event": "catchup", "result": "served snapshot", "to": peerIDs[Int(req.header.origin)], "bytes": snap.count, "chunks": count])
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
