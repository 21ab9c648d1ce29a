import CZMQ

/// Decides when a SUB link that libzmq has given up on must be revived by hand.
///
/// libzmq reconnects a dropped TCP link by itself (CONNECT_RETRIED / CONNECT_DELAYED events), but
/// not a link it closed for cause: a handshake refused by the peer's ZAP handler, a protocol
/// failure, or a frame above MAXMSGSIZE. Those stay dead until `zmq_disconnect` + `zmq_connect`
/// (ZEROMQ_NOTES). This watch reads the SUB's monitor events and, when a link went down and libzmq
/// is not retrying it, asks for a revival after `backoff` — doubling up to `maxBackoff` while
/// revivals keep failing, so a peer that refuses us is not hammered.
///
/// Pure: time is an input (`now`, elapsed time on any monotonic clock).
struct LinkWatch: Sendable, Equatable {
    let minBackoff: Duration
    let maxBackoff: Duration
    private(set) var backoff: Duration
    /// When to revive, if the link is down and nobody is retrying it.
    private(set) var reviveAt: Duration?

    init(minBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(30)) {
        self.minBackoff = minBackoff
        self.maxBackoff = maxBackoff
        self.backoff = minBackoff
    }

    /// Feeds one monitor event (`ZMQ_EVENT_*`).
    mutating func observe(_ event: Int32, now: Duration) {
        switch event {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            reviveAt = nil
            backoff = minBackoff
        case ZMQ_EVENT_CONNECT_RETRIED, ZMQ_EVENT_CONNECT_DELAYED, ZMQ_EVENT_CONNECTED:
            // libzmq is (re)connecting by itself; a handshake failure would still be reported.
            reviveAt = nil
        case ZMQ_EVENT_DISCONNECTED, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL,
             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            reviveAt = now + backoff
        default:
            break
        }
    }

    /// True once when a revival is due; the caller then disconnects and reconnects the SUB.
    mutating func takeRevival(now: Duration) -> Bool {
        guard let at = reviveAt, now >= at else { return false }
        reviveAt = nil
        backoff = min(backoff * 2, maxBackoff)
        return true
    }
}

/// One event read from a socket monitor: `[event u16 | value u32][endpoint]`.
struct MonitorEvent: Equatable {
    var event: Int32
    var value: UInt32
    var endpoint: String

    init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        // libzmq writes these in host order; every platform Murmur targets is little-endian.
        event = Int32(frames[0][0]) | Int32(frames[0][1]) << 8
        value = frames[0][2...5].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) }
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}

extension ZMQSocket {
    /// Starts a monitor on this socket for `events` and returns the PAIR that reads them (same
    /// thread, same context). `name` must be unique in the context.
    func monitor(name: String, events: Int32) throws(ZMQError) -> ZMQSocket {
        guard let h = handle else { throw ZMQError(operation: "monitor a closed \(kindName) socket", code: ENOTSOCK) }
        let endpoint = "inproc://murmur-monitor-\(name)"
        try zcheck("zmq_socket_monitor \(endpoint)") { zmq_socket_monitor(h, endpoint, events) }
        let pair = try ZMQSocket(context, type: ZMQ_PAIR)
        try pair.connect(endpoint)
        return pair
    }
}
