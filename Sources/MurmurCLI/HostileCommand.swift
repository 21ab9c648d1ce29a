import ArgumentParser
import Foundation
import Membership
import Mesh
import MeshZMQ

/// `murmur hostile TOPOLOGY` (hidden, for `scripts/hostile.sh`, issue 16): what an outsider — or,
/// with CURVE on, a key holder — can send to a running cluster's endpoints, with extreme values.
///
/// Reachable from outside: every peer's XPUB (`pub`, bound: anyone may subscribe, and an XSUB may
/// send it subscription frames) and ROUTER (`sync`, bound: anyone may send catch-up requests and
/// credits and reads the replies). The run id is read off an XPUB like any subscriber can. Every
/// frame is well-formed (magic, version, run id, CRC): steps ≥ 2^63, `UInt32.max` incarnations,
/// origins forged as every peer (the target itself included), credits of 2^32 − 1, replay requests
/// for step 0 over and over, broadcast kinds and donor replies at a ROUTER, forged presence
/// subscriptions. Prints what was sent and what came back.
struct HostileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostile",
        abstract: "Send well-formed frames with extreme values to every endpoint of a running cluster (a test tool).",
        shouldDisplay: false)

    @Argument(help: "Topology file of the running cluster.") var topology = "topologies/local4.yaml"
    @Option(help: "Seconds to keep sending.") var seconds: Double = 30
    @Option(name: .customLong("as"), help: "With CURVE on: the peer whose keys to use (a key holder).") var asPeer = "p3"
    @Option(help: "Frames per peer per 100 ms round.") var burst = 12

    // libzmq socket types and options (ABI values of zmq.h; MeshZMQ alone imports CZMQ).
    static let sub: Int32 = 2, dealer: Int32 = 5, xsub: Int32 = 10, subscribe: Int32 = 6

    func run() throws {
        let topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch { throw ValidationError("\(error)") }
        let n = topo.peers.count
        var curve: CurveSetup?
        if topo.security.curve {
            guard let me = topo.peers.first(where: { $0.id == asPeer }) else { throw ValidationError("no peer \(asPeer) in \(topology)") }
            do { curve = try CurveSetup.load(topology: topo, me: me.index) } catch { throw ValidationError("\(error)") }
        }
        let context = try ZMQContext()
        func socket(_ type: Int32, to endpoint: String, peer: PeerIndex) throws -> ZMQSocket {
            let s = try ZMQSocket(context, type: type)
            if let curve {
                try s.setCurveClientKeys(curve.ownKeys)
                if let key = curve.publicKeys[peer] { try s.setCurveServerKey(key) }
            }
            try s.connect(endpoint)
            return s
        }
        var subs: [ZMQSocket] = [], dealers: [ZMQSocket] = [], xsubs: [ZMQSocket] = []
        for p in topo.peers {
            let s = try socket(Self.sub, to: p.pub.description, peer: p.index)
            try s.set(Self.subscribe, bytes: [])
            subs.append(s)
            dealers.append(try socket(Self.dealer, to: p.sync.description, peer: p.index))
            xsubs.append(try socket(Self.xsub, to: p.pub.description, peer: p.index))
        }
        print("hostile: \(n) peers of run \(topo.run), \(curve == nil ? "plaintext" : "CURVE as key holder \(asPeer)"); sending for \(seconds) s")

        // The run id, read off the XPUBs (header bytes 8..<16) like any subscriber can.
        var runID: UInt64?
        var heardOnPub = 0
        let t0 = Date()
        while runID == nil && Date().timeIntervalSince(t0) < 10 {
            for s in subs {
                if let f = try s.receive(), f.count == 3, f[1].count == MessageHeader.size {
                    runID = f[1][8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                    heardOnPub += 1
                }
            }
            usleep(10_000)
        }
        guard let runID else { print("hostile: heard nothing on any XPUB in 10 s (is the cluster up? keys right?)"); throw ExitCode(2) }
        print("hostile: run id \(String(runID, radix: 16)) read off an XPUB (topology says \(String(topo.runID, radix: 16)))")

        var rng = SplitMix64(seed: 0x4057_11e)
        var sequence: UInt64 = 1 << 40
        var sent = [Int](repeating: 0, count: n), sentBytes = 0
        var replies: [String: Int] = [:], replyBytes = 0, pubFrames = 0
        var catalogCounts: [String: Int] = [:]
        let big: [UInt64] = [1 << 63, (1 << 63) + 5, .max, .max - 1, 1 << 32, UInt64(Int32.max), UInt64(Int32.max) + 1, UInt64(Int64.max)]
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }

        /// One hostile frame for peer `target`: (label, envelope).
        func frame(_ target: Int) -> (String, Envelope) {
            sequence += 1
            let forged = PeerIndex(pick(Array(0..<n)))
            let inc: UInt32 = pick([.max, .max - 1, 0, 1, 2])
            func env(_ kind: MessageKind, origin: PeerIndex = forged, step: UInt64, _ body: [UInt8]) -> Envelope {
                Envelope.make(kind: kind, runID: runID, origin: origin, incarnation: inc, step: step,
                              sequence: pick([sequence, .max, 0]), body: body)
            }
            switch rng.next() % 14 {
            case 0: return ("request step>=2^63", env(.catchUpRequest, step: pick(big), [UInt8(rng.next() % 2)]))
            case 1: return ("request step 0 (replay)", env(.catchUpRequest, step: 0, [0]))
            case 2: return ("request snapshot", env(.catchUpRequest, step: pick([0, 1 << 63, .max]), [1]))
            case 3: return ("request as the target itself", env(.catchUpRequest, origin: PeerIndex(target), step: pick(big), [1]))
            case 4: return ("credit 2^32-1", env(.catchUpCredit, step: pick(big), le(UInt32.max)))
            case 5: return ("credit 2^31-1", env(.catchUpCredit, step: 0, le(UInt32(Int32.max))))
            case 6:
                let hb = Heartbeat(peer: Int(forged), incarnation: .max, state: .training, lastAppliedStep: .max, digest: rng.next(),
                                   loss: .nan, bytesOut: .max, bytesIn: .max, sentAtMillis: .max, heard: .max)
                return ("heartbeat at ROUTER (Int64.max step, max incarnation)", env(.heartbeat, step: .max, hb.encode()))
            case 7:
                var b: [UInt8] = le(rng.next())
                b += le(UInt64.max)
                b += (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                return ("update at ROUTER (step 2^63)", env(.update, step: 1 << 63, b))
            case 8:
                var b: [UInt8] = le(UInt16(forged))
                b += [1]
                b += le(UInt32.max)
                b += le(UInt64.max)
                b += le(UInt16(1))
                b += le(UInt16(forged))
                b += le(UInt32.max)
                b += le(UInt32.max)
                b += le(rng.next())
                return ("commit at ROUTER (step max)", env(.commit, step: pick(big), b))
            case 9: return ("bye at ROUTER (forged origin)", env(.bye, step: 0, []))
            case 10:
                let b: [UInt8] = le(UInt32.max - 1) + le(UInt32.max) + [1, 2, 3, 4]
                return ("snapshot chunk at ROUTER (count 2^32-1)", env(.catchUpSnapshot, step: pick(big), b))
            case 11:
                let b: [UInt8] = le(UInt16.max) + le(UInt16(0)) + le(UInt32.max)
                return ("replay at ROUTER (count 65535)", env(.catchUpReplay, step: pick(big), b))
            case 12: return ("end at ROUTER", env(.catchUpEnd, step: .max, le(rng.next()) + [1]))
            default:
                let body = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                return ("request with random body", env(.catchUpRequest, step: pick(big + [0, 1]), body))
            }
        }

        let start = Date()
        var rounds = 0
        while Date().timeIntervalSince(start) < seconds {
            rounds += 1
            for t in 0..<n {
                for _ in 0..<burst {
                    let (label, e) = frame(t)
                    if try dealers[t].send(e.frames) {
                        sent[t] += 1
                        sentBytes += MessageHeader.size + e.body.count + e.frames[0].count
                        catalogCounts[label, default: 0] += 1
                    }
                }
                // Forged presence subscriptions (the XPUB's "who is connected" signal) and garbage.
                _ = try xsubs[t].send([[1] + Topic.presence(of: PeerIndex(rng.next() % UInt64(n)))])
                _ = try xsubs[t].send([[0] + Topic.presence(of: PeerIndex(rng.next() % UInt64(n)))])
                _ = try xsubs[t].send([(0..<Int(rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }])
                while let f = try dealers[t].receive() {
                    let kind = f.count >= 2 && f[1].count > 5 ? MessageKind(rawValue: f[1][5]).map { "\($0)" } ?? "?" : "?"
                    replies[kind, default: 0] += 1
                    replyBytes += f.reduce(0) { $0 + $1.count }
                }
            }
            for s in subs { while try s.receive() != nil { pubFrames += 1 } }
            usleep(100_000)
        }
        print("hostile: \(rounds) rounds in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; sent \(sent.reduce(0, +)) frames (\(sentBytes) bytes) to the ROUTERs: " +
              topo.peers.map { "\($0.id) \(sent[Int($0.index)])" }.joined(separator: ", "))
        for (label, c) in catalogCounts.sorted(by: { $0.key < $1.key }) { print("  \(String(format: "%5d", c))  \(label)") }
        print("hostile: replies from the ROUTERs: \(replies.values.reduce(0, +)) frames, \(replyBytes) bytes (" +
              replies.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "); read \(pubFrames) frames off the XPUBs")
        for s in subs + dealers + xsubs { s.close() }
        context.terminate()
    }
}
