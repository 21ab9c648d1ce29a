import Foundation
import Membership
import Mesh
import MeshTesting
import PeerRuntime

/// Handler fuzzing (issue 16): the bytes of a fuzz input drive a hostile peer on a simulated
/// 4-peer mesh. Peers 0–2 are real `PeerNode`s (deterministic `LedgerEngine`s, simulated workers,
/// one manual clock); peer 3 is the attacker. Every message it sends is *well-formed* (right magic,
/// version, run id, CRC — it passes `Envelope(frames:…)` as a ZeroMQ transport would check it), but
/// its header fields and body values are chosen by the fuzzer: any kind, forged origins, steps up
/// to `UInt64.max`, incarnations up to `UInt32.max`, bodies that are valid encodings with hostile
/// fields (`Heartbeat`, `Contribution`, `Commit`, catch-up replays, snapshot chunks, end markers)
/// or raw bytes. Broadcasts go through the network (relay filter, sequence tracker, relaying by the
/// honest peers); catch-up requests and credits reach a peer's sync endpoint; catch-up replies
/// reach a peer as if from a donor. The peers are polled between messages.
///
/// The invariant is the trust boundary's first promise: nothing a peer sends can crash another.
/// A Swift trap is a crash (libFuzzer saves the input); a `poll` that throws (the peer would stop)
/// is reported as a `FuzzFinding`. Runs are deterministic and bounded: at most `maxMessages`
/// messages per input, at most `maxIterations` mesh iterations in all.
///
/// Two targets share the machinery:
/// - `peer`: all three honest peers start together and train; the attacker sends anything.
/// - `catchup`: peer 2 starts late (so it catches up, and peers 0–1 serve it), the attacker
///   nominates itself as donor with forged heartbeats and answers peer 2's requests with
///   replays, chunks and end markers of its choosing, and floods the donors with requests and
///   credits (extreme steps, credits and chunk counts; origins forged as the victim's).
extension FuzzHarness {
    /// Messages one input may send, and mesh iterations one input may run (bounds per input).
    public static let handlerMaxMessages = 64
    public static let handlerMaxIterations = 400

    /// Fuzzes the peer's receive path (`PeerNode` + `PeerProtocol` + `Membership`) with hostile messages.
    @discardableResult
    public static func peerHandler(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        try HostileMesh(bytes, target: "peer").run()
    }

    /// What the honest peers reached after running `bytes` through a handler target (for tests:
    /// the harness must reach training, serving and catch-up, not only the refusals).
    public static func handlerSummary(_ target: String, _ bytes: [UInt8]) throws(FuzzFinding) -> [(lastApplied: Int, phase: String, replayed: Int, snapshots: Int)] {
        let mesh = HostileMesh(bytes, target: target)
        _ = try mesh.run()
        return mesh.nodes.map { ($0.lastApplied, "\($0.phase)", $0.replayedSteps, $0.snapshotsLoaded) }
    }

    /// Fuzzes catch-up serving (requests, credits) and assembly (replays, chunks, end markers).
    @discardableResult
    public static func catchUpHandler(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        try HostileMesh(bytes, target: "catchup").run()
    }
}

/// Reads a fuzz input front to back; past the end every read is 0 (so short inputs are complete).
struct FuzzBytes {
    let b: [UInt8]
    var i = 0
    init(_ b: [UInt8]) { self.b = b }
    var isEmpty: Bool { i >= b.count }
    mutating func byte() -> UInt8 {
        guard i < b.count else { return 0 }
        defer { i += 1 }
        return b[i]
    }
    mutating func int<T: FixedWidthInteger>(_: T.Type) -> T {
        var v: T = 0
        for k in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: byte()) << (8 * k) }
        return v
    }
    mutating func raw(max: Int) -> [UInt8] {
        let n = Int(byte()) % (max + 1)
        return (0..<n).map { _ in byte() }
    }
}

/// The simulated mesh of the handler targets (see `FuzzHarness.peerHandler`).
final class HostileMesh {
    static let peerCount = 4
    static let attacker = 3
    static let runID: UInt64 = 7
    static let steps = 40
    static let topology: Topology = {
        var yaml = """
        run: fuzz
        seed: 5
        model: { preset: nano }
        data: { corpus: shakespeare, batch_size: 2 }
        optimizer: { kind: demo, lr: 3.0e-3, topk: 8, chunk: 16, decay: 0.999, values: bf16, weight_decay: 0.0 }
        steps: 40
        heartbeat: { interval: 200ms, suspect_after: 1s, dead_after: 3s }
        security: { curve: false, keys: keys/ }
        peers:

        """
        for i in 0..<peerCount {
            yaml += "  - { id: p\(i), pub: \"tcp://127.0.0.1:\(21000 + 10 * i)\", sync: \"tcp://127.0.0.1:\(21001 + 10 * i)\" }\n"
        }
        return try! TopologyParser.parse(yaml: yaml, file: "fuzz.yaml")
    }()

    let target: String
    var input: FuzzBytes
    let network: InMemoryNetwork
    let clock = SimClock()
    let dt = 0.02
    var nodes: [PeerNode] = []
    var started: [Bool]
    let attackerLink: InMemoryTransport
    var sequence: UInt64 = 0
    var iterations = 0
    /// The last catch-up request the attacker received (as a donor): its step and origin.
    var lastRequestStep: UInt64 = 0
    var lastRequester = 2

    init(_ bytes: [UInt8], target: String) {
        self.target = target
        input = FuzzBytes(bytes)
        network = InMemoryNetwork(topology: Self.topology, seed: 1)
        attackerLink = network.transport(for: PeerIndex(Self.attacker))
        started = Array(repeating: false, count: Self.attacker)
        let catchUp = target == "catchup"
        // Small replay window and 4-byte chunks (the ledger snapshot is 8 bytes) so that both
        // replay and chunked snapshots happen in a few steps.
        let options = PeerOptions(steps: Self.steps,
                                  membership: MembershipConfig(heartbeatInterval: 0.2, suspectAfter: 1, deadAfter: 3),
                                  deadline: .fixed(seconds: 0.3), overlap: catchUp ? 0 : 1, startupGrace: 0.4, tick: 0,
                                  replaySteps: catchUp ? 4 : 16, snapshotChunk: 4, catchUpTimeout: 1.5, finalLinger: 1.0,
                                  maxStale: 8)
        for p in 0..<Self.attacker {
            let worker = SimulatedStepWorker { kind in kind == .compute ? 0.05 : 0.01 }
            let clock = self.clock
            nodes.append(try! PeerNode(me: p, runID: Self.runID, peerIDs: Self.topology.peers.map(\.id), incarnation: 1,
                                       transport: network.transport(for: PeerIndex(p)), engine: LedgerEngine(peer: p),
                                       options: options, runDirectory: nil, worker: worker, clock: { clock.now }))
        }
    }

    func run() throws(FuzzFinding) -> FuzzOutcome {
        try! attackerLink.start()
        let catchUp = target == "catchup"
        // Peer 2 joins late in the catch-up target: it finds the others ahead and catches up.
        let late = catchUp ? 2 : -1
        for p in 0..<Self.attacker where p != late { try start(p) }
        // Warm-up: the honest peers train a little before the attack (fuzz-chosen, bounded).
        try iterate(Int(input.byte() % 64) * 2)
        var messages = 0
        while !input.isEmpty && messages < FuzzHarness.handlerMaxMessages && iterations < FuzzHarness.handlerMaxIterations {
            let op = input.byte()
            switch op % 8 {
            case 0, 1, 2, 3:
                messages += 1
                send(kind: catchUp ? catchUpKind(op >> 3) : MessageKind.allCases[Int(op >> 3) % MessageKind.allCases.count])
            case 4:
                // The attacker nominates itself as donor: a forged heartbeat claiming to be ahead.
                messages += 1
                send(kind: .heartbeat)
            case 5:
                if late >= 0 && !started[late] { try start(late) } else { messages += 1; send(kind: .catchUpRequest) }
            default:
                try iterate(Int(op >> 3))
            }
            try iterate(Int(op & 0x30) >> 4)
        }
        // Let the peers carry on (jobs complete, catch-ups end, commits apply) within the bound.
        if late >= 0 && !started[late] { try start(late) }
        try iterate(min(120, FuzzHarness.handlerMaxIterations - iterations))
        return .accepted
    }

    func catchUpKind(_ b: UInt8) -> MessageKind {
        let kinds: [MessageKind] = [.catchUpReplay, .catchUpSnapshot, .catchUpEnd, .catchUpRequest, .catchUpCredit,
                                    .catchUpSnapshot, .catchUpReplay, .heartbeat, .catchUpSnapshot, .update, .commit, .bye]
        return kinds[Int(b) % kinds.count]
    }

    func start(_ p: Int) throws(FuzzFinding) {
        do { try nodes[p].start() } catch { throw FuzzFinding(target, "peer \(p) did not start: \(error)") }
        started[p] = true
    }

    /// Polls every started peer `n` times (within the per-input bound), moving the network and
    /// the clock; the attacker reads what reached it (requests from peers that chose it as donor).
    func iterate(_ n: Int) throws(FuzzFinding) {
        for _ in 0..<max(0, min(n, FuzzHarness.handlerMaxIterations - iterations)) {
            iterations += 1
            for (p, node) in nodes.enumerated() where started[p] {
                do { _ = try node.poll(wait: 0) } catch { throw FuzzFinding(target, "peer \(p) stopped: \(error)") }
            }
            network.advance()
            clock.now += dt
            for e in attackerLink.events(timeout: .zero) {
                if case .message(let env, _) = e, env.header.kind == .catchUpRequest {
                    lastRequestStep = env.header.step
                    lastRequester = Int(env.header.origin)
                }
            }
        }
    }

    // MARK: - hostile values

    /// A peer index: mostly the attacker, else any peer (a forged origin), rarely out of range
    /// (the decoder refuses it; that path is the transport's).
    func origin() -> Int {
        let b = input.byte()
        return b < 96 ? Self.attacker : Int(b) % (Self.peerCount + (b > 250 ? 1 : 0))
    }

    func honestStep() -> Int { nodes.map(\.lastApplied).max() ?? -1 }

    func step() -> UInt64 {
        let b = input.byte()
        let near = UInt64(max(0, honestStep() + 1))
        switch b % 20 {
        case 0: return 0
        case 1, 2: return near
        case 3: return near &+ UInt64(input.byte() % 8)
        case 4: return near > 0 ? near - 1 : 0
        case 5: return UInt64(Int32.max) - 1 + UInt64(input.byte() % 3)
        case 6: return 1 << 31
        case 7: return 1 << 32
        case 8: return 1 << 63
        case 9: return (1 << 63) + 5
        case 10: return .max
        case 11: return .max - UInt64(input.byte())
        case 12: return input.int(UInt64.self)
        case 13: return UInt64(Int64.max)
        case 14: return lastRequestStep &+ UInt64(input.byte() % 4)
        case 15: return near &+ 64 &+ UInt64(input.byte())
        default: return UInt64(input.byte() % 32)
        }
    }

    func signedStep() -> Int64 {
        let b = input.byte()
        let near = Int64(honestStep())
        switch b % 12 {
        case 0: return -1
        case 1: return near
        case 2: return near + Int64(input.byte() % 16)
        case 3: return Int64(Int32.max) - 1
        case 4: return Int64(Int32.max)
        case 5: return .max
        case 6: return .min
        case 7: return Int64(bitPattern: input.int(UInt64.self))
        case 8: return Int64(HostileMesh.steps - 1)
        case 9: return near + 1000
        default: return Int64(input.byte() % 32) - 2
        }
    }

    func incarnation() -> UInt32 {
        let b = input.byte()
        switch b % 8 {
        case 0, 1: return 1
        case 2: return 0
        case 3: return 2
        case 4: return .max
        case 5: return .max - 1
        case 6: return input.int(UInt32.self)
        default: return UInt32(b >> 3)
        }
    }

    func u32() -> UInt32 {
        let b = input.byte()
        switch b % 10 {
        case 0: return 0
        case 1: return 1
        case 2: return 2
        case 3: return 3
        case 4: return .max
        case 5: return 1 << 20
        case 6: return (1 << 20) + 1
        case 7: return UInt32(Int32.max)
        case 8: return input.int(UInt32.self)
        default: return UInt32(b >> 4)
        }
    }

    /// A ledger contribution body (the honest engines' payload: 16 bytes), valid or not.
    func ledgerPayload(peer: Int, step: UInt64) -> [UInt8] {
        switch input.byte() % 4 {
        case 0: return input.raw(max: 24)
        default:
            var b = [UInt8](repeating: 0, count: 16)
            withUnsafeBytes(of: UInt64(peer).littleEndian) { b.replaceSubrange(0..<8, with: $0) }
            withUnsafeBytes(of: step.littleEndian) { b.replaceSubrange(8..<16, with: $0) }
            return b
        }
    }

    func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }

    func digest() -> UInt64 {
        switch input.byte() % 4 {
        case 0: return input.int(UInt64.self)
        case 1: return 0
        default: return nodes[Int(input.byte()) % nodes.count].digest
        }
    }

    func body(kind: MessageKind, origin: Int, incarnation: UInt32, step: UInt64) -> [UInt8] {
        let mode = input.byte()
        if mode % 5 == 0 { return input.raw(max: 80) }   // raw bytes in a well-formed envelope
        var out: [UInt8] = []
        switch kind {
        case .heartbeat:
            var hb = Heartbeat(peer: mode & 0x80 != 0 ? Int(input.byte()) % Self.peerCount : origin,
                               incarnation: mode & 0x40 != 0 ? self.incarnation() : incarnation,
                               state: PeerState(rawValue: input.byte() % 6) ?? .training,
                               lastAppliedStep: signedStep(), digest: digest(), loss: Float(bitPattern: input.int(UInt32.self)),
                               bytesOut: input.int(UInt64.self), bytesIn: 0, sentAtMillis: input.int(UInt64.self))
            hb.heard = input.byte() % 2 == 0 ? .max : input.int(UInt64.self)
            out = hb.encode()
        case .update:
            // [base digest u64][base + 1 u64][payload]: base + 1 is any u64 (the decoder checks it).
            put(digest(), &out)
            let basePlusOne: UInt64 = switch input.byte() % 4 {
            case 0: step
            case 1: step > 0 ? step - 1 : 0
            case 2: input.int(UInt64.self)
            default: UInt64(max(0, honestStep() + 1))
            }
            put(basePlusOne, &out)
            out += ledgerPayload(peer: origin, step: step)
        case .commit:
            put(UInt16(mode & 0x80 != 0 ? Int(input.byte()) % (Self.peerCount + 1) : origin), &out)
            out.append(input.byte())
            put(input.int(UInt32.self), &out)
            put(input.byte() % 2 == 0 ? 0 : input.int(UInt64.self), &out)
            let n = Int(input.byte()) % 6
            put(UInt16(n < 5 ? n : Int(input.int(UInt16.self))), &out)
            var o = 0
            for _ in 0..<min(n, 5) {
                o += Int(input.byte() % 3)
                let tag: UInt32 = input.byte() % 3 == 0 ? u32() : UInt32(truncatingIfNeeded: step &- UInt64(input.byte() % 3))
                put(UInt16(truncatingIfNeeded: o), &out)
                put(input.byte() % 3 == 0 ? self.incarnation() : 1, &out)
                put(tag, &out)
                // The hash of the honest payload the entry names, or anything.
                put(input.byte() % 3 == 0 ? input.int(UInt64.self) : Contribution.hash(ledgerPayload(peer: o, step: UInt64(tag))), &out)
                o += 1
            }
        case .catchUpRequest:
            out = [input.byte() % 3]
        case .catchUpCredit:
            put(u32(), &out)
        case .catchUpReplay:
            // [count u16] then [peer u16][length u32][body]; the length may lie.
            let n = Int(input.byte()) % 5
            put(UInt16(n < 4 ? n : Int(input.int(UInt16.self))), &out)
            for k in 0..<min(n, 4) {
                let p = input.byte() % 8 == 0 ? Int(input.byte()) : k
                let payload = ledgerPayload(peer: p, step: step)
                put(UInt16(truncatingIfNeeded: p), &out)
                put(input.byte() % 6 == 0 ? u32() : UInt32(payload.count), &out)
                out += payload
            }
        case .catchUpSnapshot:
            // [index u32][count u32][bytes]: the ledger snapshot is 8 bytes (2 chunks of 4).
            let count = input.byte() % 3 == 0 ? u32() : 2
            let index = input.byte() % 3 == 0 ? u32() : UInt32(input.byte() % 3)
            put(index, &out)
            put(count, &out)
            out += input.byte() % 4 == 0 ? input.raw(max: 16) : (0..<4).map { _ in input.byte() }
        case .catchUpEnd:
            put(digest(), &out)
            out.append(input.byte() % 4)
        default:
            out = input.raw(max: 32)
        }
        return out
    }

    /// Builds one well-formed message and sends it the way its kind travels.
    func send(kind: MessageKind) {
        let o = origin()
        let inc = input.byte() % 4 == 0 ? incarnation() : 1
        let st = step()
        let body = self.body(kind: kind, origin: o, incarnation: inc, step: st)
        let flags: MessageFlags = input.byte() % 4 == 0 ? .relayed : []
        let seq: UInt64 = switch input.byte() % 6 {
        case 0: .max
        case 1: 0
        case 2: input.int(UInt64.self)
        default: { sequence += 1; return sequence }()
        }
        let made = Envelope.make(kind: kind, flags: flags, runID: Self.runID, origin: PeerIndex(truncatingIfNeeded: o),
                                 incarnation: inc, step: st, sequence: seq, body: body)
        // What a ZeroMQ transport would deliver: the wire decoder's checks first.
        guard let env = try? Envelope(frames: made.frames, expectedRunID: Self.runID, maxBody: 1 << 20,
                                      peerCount: Self.peerCount) else { return }
        let to = Int(input.byte()) % Self.attacker
        switch kind {
        case .catchUpRequest, .catchUpCredit:
            try? attackerLink.request(env, from: PeerIndex(to))
        case .catchUpReplay, .catchUpSnapshot, .catchUpEnd:
            // As a donor answering: mostly to the peer that asked us.
            let dest = input.byte() % 4 == 0 ? to : (lastRequester < Self.attacker ? lastRequester : 2)
            try? attackerLink.reply(env, to: ReplyRoute(identity: [UInt8(dest), 0]))
        default:
            try? attackerLink.publish(env)
        }
    }
}
