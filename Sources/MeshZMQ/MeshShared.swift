import Foundation
import Mesh
#if canImport(Glibc)
import Glibc
#endif

/// Work the trainer side hands to the mesh thread.
enum MeshCommand: Sendable {
    case publish(Envelope)
    case connect(PeerIndex, String)
    case setSyncEndpoint(PeerIndex, String)
    case request(Envelope, PeerIndex)
    case reply(Envelope, ReplyRoute)
}

/// The state shared between the caller's threads and the mesh thread: a command queue, an event
/// queue, counters, and a wake-up pipe that makes `zmq_poll` return as soon as a command arrives.
///
/// @unchecked Sendable: every mutable field is guarded by `condition` (an NSCondition, which is
/// also the lock); the pipe file descriptors are immutable after init and `write`/`read` on a
/// pipe are thread-safe system calls.
final class MeshShared: @unchecked Sendable {
    private let condition = NSCondition()
    private var commands: [MeshCommand] = []
    private var events: [TransportEvent] = []
    private var statsValue = TransportStats()
    private var stopping = false
    private var boundValue: ListenEndpoints?
    private var failureValue: ZMQError?
    let wakeRead: Int32
    let wakeWrite: Int32

    /// Bounds of the event queue (`deliver`); the defaults hold minutes of a small model's traffic.
    let maxQueuedBytes: Int
    let maxQueuedEvents: Int

    init(maxQueuedBytes: Int = MeshShared.defaultMaxQueuedBytes, maxQueuedEvents: Int = MeshShared.defaultMaxQueuedEvents) throws(ZMQError) {
        self.maxQueuedBytes = maxQueuedBytes
        self.maxQueuedEvents = maxQueuedEvents
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ZMQError(operation: "pipe for the mesh wake-up", code: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Queues a command and wakes the mesh thread. False once stopping.
    func enqueue(_ command: MeshCommand) -> Bool {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return false
        }
        commands.append(command)
        condition.unlock()
        wake()
        return true
    }

    func wake() {
        var byte: UInt8 = 1
        // A full pipe (EAGAIN) already guarantees a wake-up: ignoring the result is correct.
        _ = write(wakeWrite, &byte, 1)
    }

    /// Mesh thread: empties the wake-up pipe and takes the pending commands.
    func takeCommands() -> [MeshCommand] {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
        condition.lock()
        defer { condition.unlock() }
        let taken = commands
        commands.removeAll()
        return taken
    }

    func requestStop() {
        condition.lock()
        stopping = true
        condition.unlock()
        wake()
    }

    var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Most bytes of message bodies waiting for the caller: a trainer busy for long while peers
    /// (or a flood) keep sending cannot make the mesh thread queue without bound.
    static let defaultMaxQueuedBytes = 512 << 20
    /// Most events waiting for the caller.
    static let defaultMaxQueuedEvents = 200_000
    private var queuedBytes = 0
    private var droppedValue = 0

    /// Mesh thread: hands events to the caller side and updates counters, under one lock. Past
    /// `maxQueuedBytes`/`maxQueuedEvents`, messages and requests are dropped (counted in
    /// `TransportStats.queueDropped`; the protocol treats them as lost: catch-up repairs);
    /// link events are always kept.
    func deliver(_ new: [TransportEvent], stats: TransportStats) {
        condition.lock()
        for event in new {
            let size: Int
            switch event {
            case .message(let env, _), .request(let env, _): size = MessageHeader.size + env.body.count
            default: size = 0
            }
            if size > 0 && (queuedBytes + size > maxQueuedBytes || events.count >= maxQueuedEvents) {
                droppedValue += 1
                continue
            }
            queuedBytes += size
            events.append(event)
        }
        statsValue = stats
        if !new.isEmpty { condition.broadcast() }
        condition.unlock()
    }

    /// Set by `wakeCaller()`: the next (or current) `drain` returns without waiting.
    private var callerWake = false

    /// Any thread: cuts the caller's `drain` wait short (the peer's worker finished a job).
    func wakeCaller() {
        condition.lock()
        callerWake = true
        condition.broadcast()
        condition.unlock()
    }

    /// Caller side: waits up to `timeout` for at least one event, then drains them all.
    func drain(timeout: Duration) -> [TransportEvent] {
        condition.lock()
        defer { condition.unlock() }
        if events.isEmpty && timeout > .zero {
            let deadline = Date(timeIntervalSinceNow: timeout.seconds)
            while events.isEmpty && !stopping && !callerWake && condition.wait(until: deadline) {}
        }
        callerWake = false
        let out = events
        events.removeAll()
        queuedBytes = 0
        return out
    }

    /// Mesh thread: the endpoints it bound.
    var bound: ListenEndpoints? {
        get { condition.withLock { boundValue } }
        set { condition.withLock { boundValue = newValue } }
    }

    /// Mesh thread: the error that stopped it (first one wins).
    var failure: ZMQError? {
        get { condition.withLock { failureValue } }
        set { condition.withLock { if failureValue == nil { failureValue = newValue } } }
    }

    var stats: TransportStats {
        condition.lock()
        defer { condition.unlock() }
        var s = statsValue
        s.queueDropped = droppedValue
        return s
    }
}
