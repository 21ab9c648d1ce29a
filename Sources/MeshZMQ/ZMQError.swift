import CZMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed libzmq call: the operation, `errno` read immediately after the call, and libzmq's text.
public struct ZMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being done, e.g. `bind tcp://127.0.0.1:7100`.
    public var operation: String
    /// `zmq_errno()` right after the failing call.
    public var code: Int32
    /// `zmq_strerror(code)`.
    public var text: String

    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
        self.text = String(cString: zmq_strerror(code))
    }

    /// Non-blocking call that would have blocked (`EAGAIN`): not a failure, try later.
    public var isAgain: Bool { code == EAGAIN }
    /// The context was terminated (`ETERM`): the owning thread should close its sockets and leave.
    public var isTerminated: Bool { code == murmur_zmq_eterm() }

    public var description: String {
        var out = "\(operation) failed: \(text) (errno \(code))"
        if code == murmur_zmq_eaddrinuse() || code == EADDRINUSE {
            out += "; another process (maybe a peer still running) holds this port: stop it or change the ports in the topology"
        } else if code == EADDRNOTAVAIL {
            out += "; this machine has no such address: run this peer on the machine whose address is in the topology"
        } else if code == EINVAL {
            out += "; an option value or endpoint is malformed"
        }
        return out
    }
}

/// The one gate every libzmq call goes through: runs `call`, and on a negative result reads
/// `zmq_errno()` at once (before any other call can overwrite it). `EINTR` (a signal arrived) is
/// retried, at most 100 times, when the operation is safe to repeat.
@discardableResult
func zcheck(_ what: @autoclosure () -> String, retryEINTR: Bool = true,
            _ call: () -> Int32) throws(ZMQError) -> Int32 {
    var attempts = 0
    while true {
        let rc = call()
        if rc >= 0 { return rc }
        let code = zmq_errno()
        if code == EINTR && retryEINTR && attempts < 100 {
            attempts += 1
            continue
        }
        throw ZMQError(operation: what(), code: code)
    }
}

/// `zcheck` for an already-made call, for the brief's signature; no retry is possible here.
@discardableResult
func zcheck(_ rc: Int32, _ what: @autoclosure () -> String) throws(ZMQError) -> Int32 {
    guard rc < 0 else { return rc }
    throw ZMQError(operation: what(), code: zmq_errno())
}

/// `zcheck` for calls that return a pointer (nil on failure).
func zcheckPointer(_ what: @autoclosure () -> String,
                   _ call: () -> UnsafeMutableRawPointer?) throws(ZMQError) -> UnsafeMutableRawPointer {
    guard let pointer = call() else { throw ZMQError(operation: what(), code: zmq_errno()) }
    return pointer
}

/// Whether libzmq was built with a capability (`"curve"`, `"ipc"`, `"draft"`, …).
public func zmqHas(_ capability: String) -> Bool { zmq_has(capability) != 0 }

/// libzmq's version, e.g. (4, 3, 4).
public func zmqVersion() -> (major: Int32, minor: Int32, patch: Int32) {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return (major, minor, patch)
}
