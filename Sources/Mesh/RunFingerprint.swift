/// What a peer's topology says about the run, field by field, so that a peer hearing another run
/// id can name *what* differs (`optimizer.lr 1.0e-3 here, 3.0e-3 there`) instead of dropping its
/// messages in silence. Sent in HELLO messages (`MessageKind.hello`), which are accepted whatever
/// their run id and never relayed.
///
/// Fields are (name, value) text pairs in a fixed order; values are the topology's own spelling
/// (numbers in Swift's shortest round-trip form), so equal settings give equal text.
public struct RunFingerprint: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        /// Whether the field is part of the run id (a difference splits the run) or only worth a
        /// warning (data, timing: peers still train together, but not as the user meant).
        public var inRunID: Bool
        public init(_ name: String, _ value: String, inRunID: Bool) {
            self.name = name
            self.value = value
            self.inRunID = inRunID
        }
    }

    /// A difference between two fingerprints: the field, its value here and there (nil: absent).
    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        public var field: String
        public var here: String?
        public var there: String?
        public var description: String { "\(field) \(here ?? "(absent)") here, \(there ?? "(absent)") there" }
    }

    /// The sender's peer id, as its topology names it (it may not be in ours).
    public var peerID: String
    public var runID: UInt64
    public var fields: [Field]

    public init(peerID: String, runID: UInt64, fields: [Field]) {
        self.peerID = peerID
        self.runID = runID
        self.fields = fields
    }

    /// Largest encoded body a receiver accepts, and the bounds inside it.
    public static let maxFields = 64
    public static let maxText = 256

    /// `[version u8][peerID][runID u64][count u16]` then per field `[inRunID u8][name][value]`;
    /// texts are `[length u16][UTF-8]`. Texts longer than `maxText` bytes are cut.
    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.put(UInt8(1))
        Self.put(peerID, into: &w)
        w.put(runID)
        let kept = fields.prefix(Self.maxFields)
        w.put(UInt16(kept.count))
        for f in kept {
            w.put(UInt8(f.inRunID ? 1 : 0))
            Self.put(f.name, into: &w)
            Self.put(f.value, into: &w)
        }
        return w.bytes
    }

    /// Decodes a HELLO body; throws `ByteReadError` on anything malformed or beyond the bounds.
    public static func decode(_ bytes: [UInt8]) throws(ByteReadError) -> RunFingerprint {
        var r = ByteReader(bytes)
        let version = try r.get(UInt8.self, "hello version")
        guard version == 1 else { throw .outOfRange(field: "hello version", value: UInt64(version)) }
        let peer = try text(&r, "peer id")
        let run = try r.get(UInt64.self, "run id")
        let n = try r.count(UInt16.self, "field count", max: maxFields)
        var fields: [Field] = []
        for _ in 0..<n {
            let flag = try r.get(UInt8.self, "field flag")
            guard flag <= 1 else { throw .outOfRange(field: "field flag", value: UInt64(flag)) }
            let name = try text(&r, "field name")
            let value = try text(&r, "field value")
            fields.append(Field(name, value, inRunID: flag == 1))
        }
        try r.finish()
        return RunFingerprint(peerID: peer, runID: run, fields: fields)
    }

    /// Fields whose values differ, in this fingerprint's order, then fields only `other` has.
    public func differences(from other: RunFingerprint) -> [Difference] {
        let theirs = Dictionary(other.fields.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let mine = Set(fields.map(\.name))
        var out = fields.compactMap { f -> Difference? in
            theirs[f.name] == f.value ? nil : Difference(field: f.name, here: f.value, there: theirs[f.name])
        }
        out += other.fields.filter { !mine.contains($0.name) }.map { Difference(field: $0.name, here: nil, there: $0.value) }
        return out
    }

    private static func put(_ s: String, into w: inout ByteWriter) {
        var b = Array(s.utf8.prefix(maxText))
        while !b.isEmpty, String(validating: b, as: UTF8.self) == nil { b.removeLast() }   // never cut inside a character
        w.put(UInt16(b.count))
        w.put(bytes: b)
    }

    private static func text(_ r: inout ByteReader, _ field: String) throws(ByteReadError) -> String {
        let n = try r.count(UInt16.self, field, max: maxText)
        let b = try r.take(n, field)
        guard let s = String(validating: b, as: UTF8.self) else { throw .outOfRange(field: field, value: UInt64(n)) }
        return s
    }
}

extension Topology {
    /// This topology's fingerprint for peer `id`: every setting in the run id, then the data and
    /// timing settings peers must share to train as one.
    public func fingerprint(peerID id: String) -> RunFingerprint {
        func d(_ x: Duration) -> String {
            let (s, a) = x.components
            return "\(Double(s) + Double(a) / 1e18)s"
        }
        var f: [RunFingerprint.Field] = [.init("run", run, inRunID: true)]
        switch model {
        case .preset(let name): f.append(.init("model", "preset \(name)", inRunID: true))
        case let .explicit(l, h, e, b): f.append(.init("model", "n_layer \(l), n_head \(h), n_embd \(e), block_size \(b)", inRunID: true))
        }
        f += [
            .init("optimizer.kind", optimizer.kind.rawValue, inRunID: true),
            .init("optimizer.lr", "\(optimizer.lr)", inRunID: true),
            .init("optimizer.topk", "\(optimizer.topk)", inRunID: true),
            .init("optimizer.chunk", "\(optimizer.chunk)", inRunID: true),
            .init("optimizer.decay", "\(optimizer.decay)", inRunID: true),
            .init("optimizer.values", optimizer.values.rawValue, inRunID: true),
            .init("optimizer.weight_decay", "\(optimizer.weightDecay)", inRunID: true),
            .init("optimizer.warmup", optimizer.warmup.map(String.init) ?? "none", inRunID: true),
            .init("optimizer.aggregate", optimizer.aggregate.rawValue, inRunID: true),
            .init("steps", "\(steps)", inRunID: true),
            .init("round.overlap", "\(round.overlap)", inRunID: true),
            .init("seed", "\(seed)", inRunID: false),
            .init("data.corpus", data.corpus, inRunID: false),
            .init("data.batch_size", "\(data.batchSize)", inRunID: false),
            .init("data.file", data.file ?? "none", inRunID: false),
            .init("peers", peers.map(\.id).joined(separator: ","), inRunID: false),
            .init("round.deadline", { if case .fixed(let x) = round.deadline { return d(x) } else { return "adaptive" } }(), inRunID: false),
            .init("round.max_deadline", d(round.maxDeadline), inRunID: false),
            .init("heartbeat.interval", d(heartbeat.interval), inRunID: false),
            .init("heartbeat.suspect_after", d(heartbeat.suspectAfter), inRunID: false),
            .init("heartbeat.dead_after", d(heartbeat.deadAfter), inRunID: false),
            .init("security.curve", "\(security.curve)", inRunID: false),
        ]
        // Only when set, so the fingerprints of earlier topologies stay as they were.
        if optimizer.transform != .dct { f.append(.init("optimizer.transform", optimizer.transform.rawValue, inRunID: true)) }
        if let ls = optimizer.localSteps {
            f += [.init("optimizer.local_steps", "\(ls.steps)", inRunID: true),
                  .init("optimizer.inner", ls.inner.rawValue, inRunID: true),
                  .init("optimizer.inner_lr", "\(ls.innerLR)", inRunID: true),
                  .init("optimizer.outer_lr", "\(ls.outerLR)", inRunID: true),
                  .init("optimizer.outer_momentum", "\(ls.outerMomentum)", inRunID: true),
                  .init("optimizer.outer_nesterov", "\(ls.outerNesterov)", inRunID: true)]
        }
        return RunFingerprint(peerID: id, runID: runID, fields: f)
    }
}
