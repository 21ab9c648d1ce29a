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

    func receive(_ env: Envelope, from: Int) {
        let origin = Int(env.header.origin)
        guard origin < peerIDs.count else { return }
        bytesIn += UInt64(env.body.count + MessageHeader.size)
        let now = clock()
        switch env.header.kind {
        case .heartbeat:
            guard origin != me else { return }
            guard let hb = try? Heartbeat.decode(env.body, peerCount: peerIDs.count), hb.peer == origin else {
                invalidBodies += 1
                return
            }
            membershipEvents(membership.onHeartbeat(hb, now: now), now: now)
            if hb.state == .catchingUp || hb.state == .isolated || hb.state == .joining { round.forget(peer: origin) }
            log(["event": "received", "from": peerIDs[origin], "status": membership.status(of: origin).rawValue,
                 "incarnation": hb.incarnation, "state": hb.state.description, "step": hb.lastAppliedStep,
                 "digest": ParameterDigest.hex(hb.digest), "loss": jsonNumber(hb.loss), "lag": Int(hb.lastAppliedStep) - lastApplied])
        case .bye:
            guard origin != me else { return }
            membershipEvents(membership.onBye(peer: origin, now: now), now: now)
        case .update:
            guard origin != me else { return }
            guard let split = try? CatchUpWire.splitUpdate(env.body), (try? engine.validate(body: split.payload)) != nil else {
                invalidBodies += 1
                return
            }
            if case .observing = phase, round.openStep == Int(env.header.step), round.expected.contains(origin) {
                // The last awaited trainer's UPDATE of an observed round: join only if every trainer
                // lists us (other observers are not waited for; they decide the same way).
                var arrived = round.received
                arrived[origin] = env.body
                let trainers = round.expected.filter { isTraining($0) || $0 == origin }
                if trainers.allSatisfy({ arrived[$0] != nil }), trainers.allSatisfy({ listsMe(arrived[$0]!) }) {
                    do { try joinOpenRound() } catch { applyError = error as? PeerError ?? .engine(step: Int(env.header.step), underlying: error) }
                }
            }
            handle(round.onContribution(peer: origin, step: Int(env.header.step), env.body, now: now))
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
                if to == .dead || to == .left {
                    handle(round.onPeerGone(p, now: now))
                }
            case .rejoined(let p, let inc):
                let last = membership.records[p]?.last
                log(["event": "status", "from": peerIDs[p], "status": "rejoined", "incarnation": inc,
                     "step": last?.lastAppliedStep ?? -1, "digest": last.map { ParameterDigest.hex($0.digest) } ?? ""])
            }
        }
    }

    func sendHeartbeat(now: Double) {
        let hb = Heartbeat(peer: me, incarnation: incarnation, state: state, lastAppliedStep: Int64(lastApplied),
                           digest: engine.digest(), loss: lastLoss, bytesOut: bytesOut, bytesIn: bytesIn,
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

    /// Whether every alive peer reports hearing us (so our UPDATEs will reach them).
    var everyoneHearsMe: Bool {
        membership.alivePeers.allSatisfy { membership.records[$0]?.last?.hears(me) ?? false }
    }

    /// The alive, training peer furthest ahead of us (ties: lowest index), if anyone is ahead.
    func donorAhead(excluding: Set<Int> = []) -> Int? {
        let candidates = membership.alivePeers.compactMap { p -> (Int, Int64)? in
            guard !excluding.contains(p), let hb = membership.records[p]?.last,
                  hb.state == .training || hb.state == .observing else { return nil }  // never an isolated peer
            return (p, hb.lastAppliedStep)
        }
        guard let best = candidates.max(by: { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 > $1.0 }), best.1 > Int64(lastApplied) else {
            return nil
        }
        return best.0
    }
}
