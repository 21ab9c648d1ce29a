import CZMQ
import Foundation

/// An owned libzmq context. Contexts are thread-safe (libzmq guarantees it), so this may be
/// shared across threads; sockets made from it may not.
///
/// Ownership: every `ZMQSocket` keeps its context alive, so the context is terminated (in
/// `deinit`, or by `terminate()`) only after all its sockets are gone. Sockets use LINGER 0, so
/// termination never waits for unsent data.
public final class ZMQContext: @unchecked Sendable {
    // @unchecked Sendable: `handle` is immutable after init and libzmq contexts are thread-safe;
    // `terminated` is guarded by `lock`.
    let handle: UnsafeMutableRawPointer
    private let lock = NSLock()
    private var terminated = false

    /// Creates a context with `ioThreads` I/O threads (1 is plenty below ~1 GB/s).
    public init(ioThreads: Int32 = 1) throws(ZMQError) {
        handle = try zcheckPointer("zmq_ctx_new") { zmq_ctx_new() }
        try zcheck("zmq_ctx_set IO_THREADS") { zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) }
    }

    /// Terminates the context; blocks until every socket of it is closed. Call once, after closing
    /// the sockets (or let `deinit` do it).
    public func terminate() {
        let first = lock.withLock { () -> Bool in
            defer { terminated = true }
            return !terminated
        }
        guard first else { return }
        // EINTR: retried; any other error cannot be acted upon during teardown.
        _ = try? zcheck("zmq_ctx_term") { zmq_ctx_term(handle) }
    }

    deinit { terminate() }
}
