import Foundation
import Yams

/// Reads and validates topology files (DESIGN §8).
///
/// Every failure is a `TopologyError` naming the file, the line and the field. Pure apart from
/// `load(path:)`, which reads the file.
public enum TopologyParser {
    static let rootKeys = ["run", "seed", "model", "data", "optimizer", "steps", "round",
                           "heartbeat", "checkpoint", "security", "validation", "startup", "peers"]
    static let modelKeys = ["preset", "n_layer", "n_head", "n_embd", "block_size"]
    static let dataKeys = ["corpus", "batch_size", "file"]
    static let optimizerKeys = ["kind", "lr", "topk", "chunk", "decay", "values", "weight_decay", "warmup", "aggregate",
                                "transform", "local_steps", "inner", "inner_lr", "outer_lr", "outer_momentum",
                                "outer_nesterov"]
    static let roundKeys = ["deadline", "max_deadline", "overlap"]
    static let heartbeatKeys = ["interval", "suspect_after", "dead_after", "adaptive"]
    static let checkpointKeys = ["every", "keep", "dir"]
    static let securityKeys = ["curve", "keys", "plaintext"]
    static let peerKeys = ["id", "pub", "sync", "neighbors", "public_key", "sign_key", "netns", "listen"]
    static let validationKeys = ["every", "batches"]
    static let startupKeys = ["give_up_after"]

    /// Reads the file at `path` and parses it; errors carry `path` as given.
    public static func load(path: String) throws(TopologyError) -> Topology {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TopologyError(file: path, line: nil, field: "", problem: .unreadable(error.localizedDescription))
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses YAML text; `file` is only used in error messages and kept in `Topology.file`.
    public static func parse(yaml: String, file: String) throws(TopologyError) -> Topology {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw TopologyError(file: file, line: nil, field: "", problem: .syntax("the file is empty"))
            }
            root = node
        } catch let error as TopologyError {
            throw error
        } catch {
            throw TopologyError(file: file, line: nil, field: "", problem: .syntax("\(error)"))
        }
        let top = try YAMLFields(root, file: file, path: "", allowed: rootKeys)
        let run = try top.string("run")
        let seed = try top.uint64("seed")
        let model = try parseModel(top.mapping("model", allowed: modelKeys))
        let dataFields = try top.mapping("data", allowed: dataKeys)
        let data = DataSpec(corpus: try dataFields.string("corpus"),
                            batchSize: try dataFields.int("batch_size", in: 1...65_536),
                            file: try dataFields.optionalString("file"))
        let optimizerFields = try top.mapping("optimizer", allowed: optimizerKeys)
        let optimizer = try parseOptimizer(optimizerFields)
        let steps = try top.int("steps", in: 1...1_000_000_000)
        let round = try parseRound(top.optionalMapping("round", allowed: roundKeys))
        if optimizer.localSteps != nil, round.overlap > 0 {
            throw optimizerFields.error("local_steps", .inconsistent("local steps do not combine with round.overlap (\(round.overlap)): an inner phase already hides the network; set overlap: 0"))
        }
        let heartbeat = try parseHeartbeat(top.optionalMapping("heartbeat", allowed: heartbeatKeys))
        let checkpoint = try parseCheckpoint(top.optionalMapping("checkpoint", allowed: checkpointKeys), run: run)
        let security = try parseSecurity(top.optionalMapping("security", allowed: securityKeys))
        let validation = try parseValidation(top.optionalMapping("validation", allowed: validationKeys))
        let startupFields = try top.optionalMapping("startup", allowed: startupKeys)
        var startup = StartupSpec()
        if let f = startupFields, f.has("give_up_after") { startup.giveUpAfter = try f.duration("give_up_after") }
        let peers = try PeerListParser.parse(top, file: file)
        var topology = Topology(file: file, run: run, seed: seed, model: model, data: data, optimizer: optimizer,
                                steps: steps, round: round, heartbeat: heartbeat, checkpoint: checkpoint,
                                security: security, validation: validation, peers: peers)
        topology.startup = startup
        try PeerListParser.checkReachable(topology, line: try top.node("peers").mark?.line)
        try checkPlaintext(topology, fields: top)
        return topology
    }

    static func parseModel(_ m: YAMLFields) throws(TopologyError) -> ModelSpec {
        let explicitKeys = ["n_layer", "n_head", "n_embd", "block_size"]
        if m.has("preset") {
            if let extra = explicitKeys.first(where: m.has) {
                throw m.error(extra, .inconsistent("give either 'preset' or the explicit sizes, not both"))
            }
            return .preset(try m.string("preset"))
        }
        guard explicitKeys.contains(where: m.has) else {
            throw m.error("preset", .missing)
        }
        let nLayer = try m.int("n_layer", in: 1...1024)
        let nHead = try m.int("n_head", in: 1...1024)
        let nEmbd = try m.int("n_embd", in: 1...65_536)
        let blockSize = try m.int("block_size", in: 1...1_048_576)
        guard nEmbd % nHead == 0 else {
            throw m.error("n_embd", .inconsistent("n_embd (\(nEmbd)) must be a multiple of n_head (\(nHead))"))
        }
        return .explicit(nLayer: nLayer, nHead: nHead, nEmbd: nEmbd, blockSize: blockSize)
    }

    static let localStepsOnlyKeys = ["inner", "inner_lr", "outer_lr", "outer_momentum", "outer_nesterov"]

    static func parseOptimizer(_ o: YAMLFields) throws(TopologyError) -> OptimizerSpec {
        let kind = try o.choice("kind", OptimizerKind.self)
        let localSteps = try parseLocalSteps(o, kind: kind)
        let lr: Double
        if let ls = localSteps, !o.has("lr") { lr = ls.innerLR } else { lr = try o.double("lr", in: 0...10) }
        var spec = OptimizerSpec(
            kind: kind,
            lr: lr,
            topk: try o.optionalInt("topk", in: 1...1_048_576) ?? 32,
            chunk: try o.optionalInt("chunk", in: 1...65_536) ?? 64,
            decay: o.has("decay") ? try o.double("decay", in: 0...1) : (localSteps != nil ? 0.95 : 0.999),
            values: o.has("values") ? try o.choice("values", ValueFormat.self) : .bf16,
            weightDecay: o.has("weight_decay") ? try o.double("weight_decay", in: 0...1) : 0,
            warmup: try o.optionalInt("warmup", in: 0...1_000_000_000),
            aggregate: o.has("aggregate") ? try o.choice("aggregate", AggregateRule.self) : .clipped)
        spec.localSteps = localSteps
        if o.has("transform") {
            guard kind == .demo else { throw o.error("transform", .inconsistent("'transform' is a DeMo setting; remove it or use kind: demo")) }
            spec.transform = try o.choice("transform", TransformKind.self)
        }
        guard spec.lr > 0 else { throw o.error("lr", .badNumber("\(spec.lr)", expected: "a number above 0")) }
        guard spec.topk <= spec.chunk * spec.chunk else {
            throw o.error("topk", .inconsistent("topk (\(spec.topk)) exceeds the coefficients in a chunk (chunk² = \(spec.chunk * spec.chunk))"))
        }
        return spec
    }

    /// `local_steps: H` and its inner/outer settings; nil for H = 1 (today's DeMo). The inner and
    /// outer keys are refused without `local_steps` >= 2, so a typo cannot silently do nothing.
    static func parseLocalSteps(_ o: YAMLFields, kind: OptimizerKind) throws(TopologyError) -> LocalStepsSpec? {
        let h = try o.optionalInt("local_steps", in: 1...100_000) ?? 1
        if h > 1 && kind != .demo {
            throw o.error("local_steps", .inconsistent("local steps compress the pseudo-gradient with DeMo's codec: use kind: demo (kind: adamw is the dense baseline)"))
        }
        guard h > 1 else {
            if let extra = localStepsOnlyKeys.first(where: o.has) {
                throw o.error(extra, .inconsistent("'\(extra)' only applies with local_steps of 2 or more (local_steps is \(h)): add local_steps: H or remove '\(extra)'"))
            }
            return nil
        }
        guard o.has("inner_lr") || o.has("lr") else {
            throw o.error("inner_lr", .inconsistent("local steps need the inner AdamW's learning rate: add inner_lr (e.g. 1e-3)"))
        }
        let innerLR = o.has("inner_lr") ? try o.double("inner_lr", in: 0...10) : try o.double("lr", in: 0...10)
        guard innerLR > 0 else { throw o.error("inner_lr", .badNumber("\(innerLR)", expected: "a number above 0")) }
        var ls = LocalStepsSpec(steps: h, innerLR: innerLR)
        if o.has("inner") { ls.inner = try o.choice("inner", InnerOptimizerKind.self) }
        if o.has("outer_lr") {
            ls.outerLR = try o.double("outer_lr", in: 0...10)
            guard ls.outerLR > 0 else { throw o.error("outer_lr", .badNumber("\(ls.outerLR)", expected: "a number above 0 (1 applies the mean pseudo-gradient as is)")) }
        }
        if o.has("outer_momentum") {
            ls.outerMomentum = try o.double("outer_momentum", in: 0...1)
            guard ls.outerMomentum < 1 else { throw o.error("outer_momentum", .badNumber("1", expected: "a number in [0, 1), e.g. 0.9 (0: no outer momentum)")) }
        }
        if o.has("outer_nesterov") { ls.outerNesterov = try o.bool("outer_nesterov") }
        return ls
    }

    static func parseRound(_ r: YAMLFields?) throws(TopologyError) -> RoundSpec {
        guard let r else { return RoundSpec(deadline: .adaptive, maxDeadline: .seconds(10)) }
        var deadline = DeadlineSpec.adaptive
        if r.has("deadline") {
            let text = try r.scalarText("deadline")
            if text.trimmingWhitespace() != "adaptive" {
                guard let fixed = DurationText.parse(text), fixed > .zero else {
                    throw r.error("deadline", .badDuration(text + "' or 'adaptive"))
                }
                deadline = .fixed(fixed)
            }
        }
        let maxDeadline = r.has("max_deadline") ? try r.duration("max_deadline") : .seconds(10)
        if case .fixed(let fixed) = deadline, fixed > maxDeadline {
            throw r.error("deadline", .inconsistent("deadline (\(DurationText.format(fixed))) exceeds max_deadline (\(DurationText.format(maxDeadline)))"))
        }
        var overlap = 0
        if r.has("overlap") {
            let text = try r.scalarText("overlap").trimmingWhitespace()
            switch text {
            case "true": overlap = 1
            case "false": overlap = 0
            default: overlap = try r.int("overlap", in: 0...8)
            }
        }
        return RoundSpec(deadline: deadline, maxDeadline: maxDeadline, overlap: overlap)
    }

    static func parseHeartbeat(_ h: YAMLFields?) throws(TopologyError) -> HeartbeatSpec {
        guard let h else {
            return HeartbeatSpec(interval: .milliseconds(250), suspectAfter: .seconds(1), deadAfter: .seconds(3), adaptive: false)
        }
        let spec = HeartbeatSpec(
            interval: h.has("interval") ? try h.duration("interval") : .milliseconds(250),
            suspectAfter: h.has("suspect_after") ? try h.duration("suspect_after") : .seconds(1),
            deadAfter: h.has("dead_after") ? try h.duration("dead_after") : .seconds(3),
            adaptive: h.has("adaptive") ? try h.bool("adaptive") : false)
        guard spec.suspectAfter > spec.interval else {
            throw h.error("suspect_after", .inconsistent("suspect_after must be longer than interval, or every peer is suspected between two heartbeats"))
        }
        guard spec.deadAfter > spec.suspectAfter else {
            throw h.error("dead_after", .inconsistent("dead_after must be longer than suspect_after"))
        }
        return spec
    }

    static func parseCheckpoint(_ c: YAMLFields?, run: String) throws(TopologyError) -> CheckpointSpec {
        guard let c else { return CheckpointSpec(every: 50, keep: 3, dir: "runs/\(run)") }
        return CheckpointSpec(every: try c.optionalInt("every", in: 1...1_000_000_000) ?? 50,
                              keep: try c.optionalInt("keep", in: 1...1000) ?? 3,
                              dir: try c.optionalString("dir") ?? "runs/\(run)")
    }

    static func parseValidation(_ v: YAMLFields?) throws(TopologyError) -> ValidationSpec {
        guard let v else { return ValidationSpec() }
        return ValidationSpec(every: try v.optionalInt("every", in: 1...1_000_000_000),
                              batches: try v.optionalInt("batches", in: 1...100_000) ?? 20)
    }

    static func parseSecurity(_ s: YAMLFields?) throws(TopologyError) -> SecuritySpec {
        guard let s else { return SecuritySpec(curve: false, keys: "keys/") }
        var plaintext = false
        if s.has("plaintext") {
            switch try s.string("plaintext") {
            case "allow": plaintext = true
            case "refuse": plaintext = false
            default: throw s.error("plaintext", .inconsistent("'plaintext' is 'allow' or 'refuse' (the default)"))
            }
        }
        return SecuritySpec(curve: s.has("curve") ? try s.bool("curve") : false,
                            keys: try s.optionalString("keys") ?? "keys/", plaintextAllowed: plaintext)
    }

    /// Plaintext (no CURVE) only where nobody else can reach the ports: loopback, or the lab's
    /// network namespaces — like a database's protected mode. Anyone who reaches a plaintext port
    /// can send UPDATEs.
    static func checkPlaintext(_ t: Topology, fields: YAMLFields) throws(TopologyError) {
        guard !t.security.curve, !t.security.plaintextAllowed else { return }
        let open = t.peers.filter { $0.netns == nil && !($0.pub.isLoopback && $0.sync.isLoopback) }
        guard let first = open.first else { return }
        let also = open.count > 1 ? " (and \(open.count - 1) more)" : ""
        throw fields.error("security", .inconsistent("the mesh is plaintext (curve: false) but \(first.id) listens on \(first.pub)\(also), an address other machines can reach: anyone who reaches the port could send updates. Make keys with `murmur keys` and set `security: { curve: true }`, or opt in with `security: { curve: false, plaintext: allow }`"))
    }
}
