import Foundation

/// What a finished job hands back to the peer loop.
public enum WorkResult: @unchecked Sendable {
    // @unchecked: the payloads are plain values made on the worker and only read by the loop after
    // the hand-over (which goes through the worker's lock).
    case computed(tag: Int, base: Int, baseDigest: UInt64, Result<(body: [UInt8], loss: Float), any Error>)
    case applied(step: Int, Result<UInt64, any Error>)
    case replayed(step: Int, Result<UInt64, any Error>)
    case restored(step: Int, Result<UInt64, any Error>)
    case snapshot(step: Int, bytes: [UInt8], digest: UInt64)
    case done
}

/// A unit of work for the engine: runs on the worker, never on the loop thread.
public struct WorkJob: @unchecked Sendable {
    // @unchecked: the closure touches the engine, which only the worker thread uses while jobs run.
    public var kind: Kind
    public var run: () -> WorkResult

    public enum Kind: Sendable, Equatable { case compute, apply, other }

    public init(_ kind: Kind, _ run: @escaping () -> WorkResult) {
        self.kind = kind
        self.run = run
    }
}

/// Where the engine runs (DESIGN §3): the compute face of the peer's I/O boundaries.
///
/// Jobs run one at a time in submission order; results come back through `completed(now:)`.
/// The real face is a thread (`ThreadStepWorker`), so heartbeats, commits and catch-up serving on
/// the loop thread never wait for a forward/backward pass; the test face (`SimulatedStepWorker`)
/// runs the job at once but hands its result back only when a manual clock has advanced by the
/// job's simulated duration, so slow peers and long steps are tested without `sleep`.
public protocol StepWorker: AnyObject {
    func submit(_ job: WorkJob, now: Double)
    /// Results finished by `now`, oldest first.
    func completed(now: Double) -> [WorkResult]
    /// Jobs submitted and not yet handed back.
    var pending: Int { get }
    /// When the next result is due (simulated face), for the loop's wait; nil when unknown or idle.
    func nextDue(now: Double) -> Double?
    /// Stops the worker after the jobs already queued and waits for them (idempotent): after it
    /// returns, nothing touches the engine any more.
    func shutdown()
}

/// Runs jobs on one dedicated thread; `wake` is called after each result (the peer loop uses it
/// to cut its wait short).
public final class ThreadStepWorker: StepWorker, @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `cond`.
    private let cond = NSCondition()
    private var queue: [WorkJob] = []
    private var results: [WorkResult] = []
    private var inFlight = 0
    private var stopping = false
    private var thread: Thread?
    private let wake: @Sendable () -> Void

    public init(name: String = "murmur.worker", wake: @escaping @Sendable () -> Void = {}) {
        self.wake = wake
        let t = Thread { [unowned self] in self.loop() }
        t.name = name
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    public func submit(_ job: WorkJob, now: Double) {
        cond.lock()
        queue.append(job)
        inFlight += 1
        cond.signal()
        cond.unlock()
    }

    public func completed(now: Double) -> [WorkResult] {
        cond.lock()
        defer { cond.unlock() }
        let out = results
        results.removeAll()
        inFlight -= out.count
        return out
    }

    public var pending: Int { cond.lock(); defer { cond.unlock() }; return inFlight }

    public func nextDue(now: Double) -> Double? { nil }

    // The thread refers to the worker: it must be gone before the worker's memory is.
    deinit { shutdown() }

    public func shutdown() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !exited { cond.wait() }
        cond.unlock()
    }

    private var exited = false

    private func loop() {
        while true {
            cond.lock()
            while queue.isEmpty && !stopping { cond.wait() }
            if queue.isEmpty && stopping {
                exited = true
                cond.broadcast()
                cond.unlock()
                return
            }
            let job = queue.removeFirst()
            cond.unlock()
            let r = job.run()
            cond.lock()
            results.append(r)
            cond.unlock()
            wake()
        }
    }
}

/// The deterministic face: a job runs when submitted, and its result is handed back once the
/// clock passes `start + duration(job)`, where `start` is when the worker became free. One job
/// at a time, like the thread.
public final class SimulatedStepWorker: StepWorker {
    /// Simulated seconds a job takes (per kind, so tests can make compute slow and apply fast).
    public var duration: (WorkJob.Kind) -> Double
    private var busyUntil = -Double.infinity
    private var queue: [(due: Double, result: WorkResult)] = []
    /// Seconds of simulated compute so far (for tests).
    public private(set) var busySeconds = 0.0

    public init(duration: @escaping (WorkJob.Kind) -> Double = { _ in 0 }) { self.duration = duration }

    public func submit(_ job: WorkJob, now: Double) {
        let start = max(now, busyUntil)
        let d = max(0, duration(job.kind))
        busyUntil = start + d
        busySeconds += d
        queue.append((busyUntil, job.run()))
    }

    public func completed(now: Double) -> [WorkResult] {
        var out: [WorkResult] = []
        while let first = queue.first, first.due <= now {
            out.append(first.result)
            queue.removeFirst()
        }
        return out
    }

    public var pending: Int { queue.count }

    public func nextDue(now: Double) -> Double? { queue.first?.due }

    public func shutdown() {}
}
