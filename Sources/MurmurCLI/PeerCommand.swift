import ArgumentParser
import Checkpointing
import Foundation
import Logging
import Mesh
import MeshZMQ
import PeerRuntime
import Tensors
import TinyGPT

/// `murmur peer --topology T --id ID`: runs one peer of a topology until its steps are done.
struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Run one peer of a topology (the process `murmur up` starts for each local peer).",
        discussion: """
        The peer binds its pub and sync endpoints, subscribes to its neighbours, waits until it hears
        every peer, then trains: each step it publishes its DeMo payload (or dense gradients with
        optimizer.kind adamw), collects every peer's contribution for that step (until the step
        deadline) and applies them in peer order. Per step it appends a line to
        RUN_DIR/rounds.jsonl; heartbeats and status changes go to RUN_DIR/heartbeats.jsonl.
        SIGINT/SIGTERM stop it after the current step, with a BYE to the others.

        Example:
          murmur peer --topology topologies/local4.yaml --id p0
        """)

    @Option(help: "Topology file.") var topology = "topologies/local4.yaml"
    @Option(help: "This peer's id in the topology.") var id: String
    @OptionGroup var corpus: CorpusOptions
    @Option(help: "Kernel and BLAS threads.") var threads = 1
    @Option(help: "Folder for this peer's logs (default: CHECKPOINT_DIR/ID).") var runDir: String?
    @Option(help: "Override the topology's step count.") var steps: Int?
    @Flag(help: "Stop gracefully when the parent process (murmur up) goes away.") var watchParent = false
    @Option(help: "Validation batches measured at the end (0: none).") var evalBatches = 20
    // Measurements only (issue 12): play a hostile-but-authorised peer, gradients × X before DeMo.
    @Option(help: .hidden) var poisonScale: Float?
    /// Measurements only: publish forged messages in every other peer's name (`ImpersonatingTransport`).
    @Flag(help: .hidden) var impersonate = false
    @Flag(help: "Train alone when no other peer is heard by the end of the startup grace (otherwise the peer waits, and gives up after startup.give_up_after).") var alone = false

    func run() throws {
        var topo: Topology
        do { topo = try TopologyParser.load(path: topology) } catch {
            throw ValidationError("\(error)")
        }
        if let steps { topo.steps = steps }
        guard let me = topo.index(of: id) else {
            throw ValidationError("peer '\(id)' is not in \(topology); its peers are \(topo.peers.map(\.id).joined(separator: ", "))")
        }
        var logger = Logger(label: "murmur.peer.\(id)")
        logger.logLevel = .info
        let config = try PeerSetup.modelConfig(topo)
        let corpus = try topo.data.file.map { try Corpus.load(path: $0, contextLength: config.blockSize) }
            ?? self.corpus.load(contextLength: config.blockSize)
        BLAS.setThreads(threads)
        let model = try GPTModel(config: config, maxBatchSize: topo.data.batchSize, seed: topo.seed, threads: threads)
        let sampler = BatchSampler(corpus: corpus, seed: topo.seed, batchSize: topo.data.batchSize, seqLen: config.blockSize)
        let engine = try GPTEngine(model: model, sampler: sampler, peer: Int(me), optimizer: PeerSetup.optimizer(topo),
                                   schedule: PeerSetup.schedule(topo), clipNorm: 1)
        if let poisonScale {
            guard poisonScale.isFinite else { throw ValidationError("--poison-scale must be a finite number") }
            engine.gradientScale = poisonScale
            logger.warning("peer \(id): POISONED for a measurement: gradients × \(poisonScale) before the optimizer")
        }
        let curve = topo.security.curve ? try CurveSetup.load(topology: topo, me: me) : nil
        if curve != nil {
            logger.info("peer \(id): CURVE on; every broadcast is signed (Ed25519) and checked against its origin's key before it is delivered or relayed")
        } else {
            logger.info("peer \(id): CURVE off: origins are not authenticated (anyone who reaches the ports can speak as any peer); use security.curve: true off a trusted network")
        }
        var meshOptions = ZMQTransportOptions(heartbeat: topo.heartbeat)
        let mine = topo.peers[Int(me)]
        if let host = mine.listen {
            meshOptions.listenOverride = ListenEndpoints(pub: Endpoint(host: host, port: mine.pub.port).description,
                                                        sync: Endpoint(host: host, port: mine.sync.port).description)
        }
        let transport = try ZMQTransport(topology: topo, me: me, curve: curve, options: meshOptions)
        let peerTransport: any Transport = impersonate ? ImpersonatingTransport(transport, peerCount: topo.peers.count) : transport
        if impersonate { logger.warning("peer \(id): IMPERSONATING every other peer for a measurement (forged heartbeats, BYE, UPDATEs)") }
        let dir = URL(fileURLWithPath: runDir ?? (topo.checkpoint.dir as NSString).appendingPathComponent(id))
        // Restore: the newest checkpoint that verifies (corrupt ones are reported and skipped).
        let store = CheckpointStore(directory: dir.appendingPathComponent("checkpoints"), keep: topo.checkpoint.keep)
        var firstStep = 0
        var skippedNotes: [String] = []
        if !store.list().isEmpty {
            do {
                let r = try store.loadNewest { _, bytes -> TrainingCheckpoint in
                    let c = try TrainingCheckpoint.decode(Data(bytes))
                    guard c.runID == topo.runID else { throw EngineError.checkpointMismatch("it belongs to another run (run id \(c.runID))") }
                    return c
                }
                try engine.restore(r.value)
                firstStep = r.value.step
                skippedNotes = r.skipped
                logger.info("restored \(r.url.lastPathComponent): step \(firstStep)")
            } catch {
                logger.warning("no usable checkpoint, starting from step 0: \(error)")
            }
            for s in skippedNotes { logger.warning("skipped checkpoint \(s)") }
        }
        let incarnation = Self.bumpIncarnation(dir)
        let start = DispatchTime.now().uptimeNanoseconds
        var peerOptions = PeerSetup.options(topo)
        peerOptions.alone = alone
        let node = try PeerNode(me: Int(me), runID: topo.runID, peerIDs: topo.peers.map(\.id), incarnation: incarnation,
                                transport: peerTransport, engine: engine, options: peerOptions, runDirectory: dir,
                                clock: { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 })
        func save(_ step: Int, _ why: String) {
            do {
                let bytes = try engine.checkpoint(step: step, incarnation: incarnation, runID: topo.runID, extra: ["peer": id]).encoded()
                let url = try store.save([UInt8](bytes), step: step)
                node.note(["event": "checkpoint", "step": step, "reason": why, "file": url.lastPathComponent, "bytes": bytes.count])
            } catch {
                logger.error("checkpoint at step \(step) failed: \(error)")
            }
        }
        for s in skippedNotes { node.note(["event": "checkpoint-skipped", "detail": s]) }
        let every = max(1, topo.checkpoint.every)
        let validator = Evaluator(model: model, sampler: sampler, batches: topo.validation.batches)
        let validateEvery = topo.validation.every
        // TensorBoard scalars beside the JSON logs (`tensorboard --logdir runs`); written on the
        // worker, like everything in onApplied. A failure to create the file costs only the curves.
        let board = try? TensorBoardWriter(directory: dir.appendingPathComponent("tensorboard"))
        if board == nil { logger.warning("peer \(id): could not create \(dir.path)/tensorboard; no TensorBoard scalars") }
        // Seconds between two applied steps (compute + round), for the board's step-time curve.
        var lastAppliedAt = DispatchTime.now().uptimeNanoseconds
        node.onApplied = { [unowned node] s in
            if (s + 1) % every == 0 { save(s + 1, "every \(every) steps") }
            if let board {
                if engine.lastLoss.isFinite { board.scalar("train/loss", engine.lastLoss, step: s + 1) }
                let now = DispatchTime.now().uptimeNanoseconds
                board.scalar("time/step_seconds", Float(Double(now - lastAppliedAt) / 1e9), step: s + 1)
                lastAppliedAt = now
                // Cumulative bytes this peer's transport sent (UPDATEs, heartbeats, relays, catch-up).
                board.scalar("bytes/out", Float(transport.stats.bytesOut), step: s + 1)
            }
            for change in engine.takeContentChanges() { node.note(ContentSuspicionNote.fields(change, peerIDs: topo.peers.map(\.id))) }
            // Forward passes only: parameters, residual and data cursor stay as they are.
            if let validateEvery, (s + 1) % validateEvery == 0 {
                let started = DispatchTime.now().uptimeNanoseconds
                let loss = validator.loss()
                board?.scalar("val/loss", loss, step: s + 1)
                node.note(["event": "validation", "step": s + 1, "val_loss": Double(loss), "batches": topo.validation.batches,
                           "ms": Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)])
            }
        }
        node.onIsolated = { step in save(step + 1, "failsafe: heard nobody for longer than the dead timeout") }
        node.onForeign = { message in logger.warning("peer \(id): \(message)") }
        node.onWarning = { message in logger.warning("peer \(id): \(message)") }
        node.onWaiting = { who, seconds in
            logger.warning("peer \(id): heard none of the other peers after \(Int(seconds)) s; waiting for \(who.joined(separator: ", ")) (not training alone; --alone would; giving up after \(Int(peerOptions.giveUpAfter)) s)")
        }
        let stop = node.stopRequested
        let signals = SignalWatch { stop.set() }
        defer { signals.cancel() }
        let parentWatch = watchParent ? ParentWatch { stop.set() } : nil
        defer { parentWatch?.cancel() }
        logger.info("peer \(id) (#\(me)) of run \(topo.run): \(config.nLayer) layers, \(model.parameterCount) parameters, \(topo.optimizer.kind.rawValue), \(topo.steps) steps; logs in \(dir.path)")
        let digest = try node.run(firstStep: firstStep)
        save(node.lastApplied + 1, node.stopRequested.value ? "stopped by signal" : "end of run")
        let val: Float? = evalBatches > 0 ? Evaluator(model: model, sampler: sampler, batches: evalBatches).loss() : nil
        if let val { board?.scalar("val/loss", val, step: node.nextStep) }
        let outcome = node.outcome ?? .stopped(step: node.lastApplied)
        let alone = node.stepsAlone > 0 ? ", \(node.stepsAlone) step(s) trained alone (cut off from every other peer)" : ""
        // "done" only for a run that succeeded: a peer that waited and gave up did not train.
        logger.info("peer \(id) \(outcome.isSuccess ? "done" : "ended") at step \(node.nextStep): digest \(ParameterDigest.hex(digest)), val loss \(val.map { String(format: "%.4f", $0) } ?? "-"), \(transport.stats.bytesOut) bytes out, \(transport.stats.bytesIn) bytes in\(alone)")
        if outcome.isSuccess {
            logger.info("peer \(id): \(outcome)")
        } else {
            logger.error("peer \(id): \(outcome)")
        }
        let summary: [String: Any] = [
            "peer": id, "steps": node.nextStep, "digest": ParameterDigest.hex(digest), "val_loss": val.map { Double($0) } ?? NSNull(),
            "transport_bytes_out": transport.stats.bytesOut, "transport_bytes_in": transport.stats.bytesIn,
            "bytes_reference_per_step": engine.referenceBytesPerContribution, "bytes_dense_per_step": engine.denseBytesPerContribution,
            "stopped_early": node.nextStep < topo.steps,
            "outcome": outcome.description, "success": outcome.isSuccess, "steps_alone": node.stepsAlone,
        ]
        try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted])
            .write(to: dir.appendingPathComponent("summary.json"), options: .atomic)
        // A peer never reports success on parameters the others did not reach.
        if !outcome.isSuccess { throw ExitCode(3) }
    }
}

extension PeerCommand {
    /// Reads, increments and writes RUN_DIR/incarnation: every start of a peer is a new life, so
    /// the others can tell a restart from a stale message.
    static func bumpIncarnation(_ dir: URL) -> UInt32 {
        let url = dir.appendingPathComponent("incarnation")
        let old = (try? String(contentsOf: url, encoding: .utf8)).flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        let new = old &+ 1
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try? AtomicFile.write(Array("\(new)\n".utf8), to: url)
        return new
    }
}

/// Runs `action` when SIGINT or SIGTERM arrives (instead of dying), until cancelled.
final class SignalWatch {
    private var sources: [DispatchSourceSignal] = []

    init(_ action: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler(handler: action)
            s.resume()
            sources.append(s)
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}

/// Calls `action` once when this process's parent changes (the parent died and we were re-parented),
/// so peers started by `murmur up` never outlive it, even when it is killed with SIGKILL.
final class ParentWatch {
    private let timer: DispatchSourceTimer

    init(_ action: @escaping @Sendable () -> Void) {
        let original = getppid()
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 0.5, repeating: 0.5)
        timer.setEventHandler { if getppid() != original { action() } }
        timer.resume()
    }

    func cancel() { timer.cancel() }
}

/// heartbeats.jsonl lines for `ContentWatch` changes (issue 12): `suspect-content` when a peer's
/// updates have stayed unlike the others' for a window of steps, `content-ok` when that ends.
enum ContentSuspicionNote {
    static func fields(_ change: ContentWatch.Change, peerIDs: [String]) -> [String: Any] {
        func id(_ p: Int) -> String { p >= 0 && p < peerIDs.count ? peerIDs[p] : "#\(p)" }
        switch change {
        case .suspected(let s):
            var f: [String: Any] = ["event": "suspect-content", "from": id(s.peer), "step": s.step,
                                    "reason": s.reasons.joined(separator: ","),
                                    "norm_ratio": (s.medianNormRatio * 100).rounded() / 100]
            if let a = s.meanAgreement { f["agreement"] = (a * 1000).rounded() / 1000 }
            return f
        case .cleared(let p, let step):
            return ["event": "content-ok", "from": id(p), "step": step]
        }
    }
}
