import Dispatch

/// Splits index ranges over worker threads for the elementwise and per-row kernels.
///
/// The kernels hand each worker a disjoint range of rows, so workers never write the same memory;
/// that is what makes sharing the raw buffers between them safe.
enum Parallel {
    /// Calls `body` on consecutive sub-ranges covering `0..<count`, using up to `threads` workers.
    /// Runs inline when `threads <= 1` or the work is too small to be worth a dispatch
    /// (`count < minPerThread * 2`).
    @inline(__always)
    static func ranges(_ count: Int, threads: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        workers(count, threads: threads, minPerThread: minPerThread) { _, r in body(r) }
    }

    /// Like `ranges`, also passing the worker index (0..<workers) so callers can give each worker
    /// its own scratch. Returns the number of workers used.
    @inline(__always) @discardableResult
    static func workers(_ count: Int, threads: Int, minPerThread: Int = 1, _ body: (Int, Range<Int>) -> Void) -> Int {
        let workers = min(threads, count / max(minPerThread, 1))
        if workers <= 1 {
            if count > 0 { body(0, 0..<count) }
            return 1
        }
        // `concurrentPerform` wants a @Sendable closure. `body` captures raw buffer pointers; sharing
        // them is safe because every worker gets a disjoint range and the caller's kernels only write
        // inside their range, and `concurrentPerform` returns only after all workers finish.
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(w, lo..<hi) }
        }
        return workers
    }
}
