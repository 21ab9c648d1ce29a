import CZMQ

/// An owned libzmq socket.
///
/// Threading: libzmq sockets are not thread-safe. This class is deliberately not `Sendable`: make,
/// use and close it on one thread (the mesh thread). Ownership: `close()` (or `deinit`) sets
/// LINGER 0 and closes; the socket keeps its `ZMQContext` alive until then.
public final class ZMQSocket {
    public let context: ZMQContext
    /// Raw `void *` for `zmq_poll`; nil once closed.
    public private(set) var handle: UnsafeMutableRawPointer?
    /// Reused receive buffer. Heap memory: a `zmq_msg_t` must never be copied as a Swift value
    /// (small messages live inside the struct; a copy breaks libzmq's reference counting).
    private let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
    public let kindName: String

    /// Makes a socket of `type` (`ZMQ_XPUB`, `ZMQ_SUB`, …) and sets LINGER 0 at once, so that
    /// closing never blocks on a hung peer.
    public init(_ context: ZMQContext, type: Int32) throws(ZMQError) {
        self.context = context
        self.kindName = Self.name(of: type)
        let made = try zcheckPointer("zmq_socket \(kindName)") { zmq_socket(context.handle, type) }
        handle = made
        try set(ZMQ_LINGER, 0)
    }

    private func live(_ what: String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(operation: "\(what) on a closed \(kindName) socket", code: ENOTSOCK) }
        return handle
    }

    // MARK: Options (set them before bind/connect: most only apply to later connections)

    /// Sets an `int` option (most options).
    public func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        let h = try live("setsockopt")
        var v = value
        try zcheck("setsockopt \(option)=\(value) on \(kindName)") {
            zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size)
        }
    }

    /// Sets an `int64_t` option (`ZMQ_MAXMSGSIZE`; a 4-byte value there gives EINVAL).
    public func set(_ option: Int32, int64 value: Int64) throws(ZMQError) {
        let h = try live("setsockopt")
        var v = value
        try zcheck("setsockopt \(option)=\(value) on \(kindName)") {
            zmq_setsockopt(h, option, &v, MemoryLayout<Int64>.size)
        }
    }

    /// Sets a binary option (subscriptions, identities, binary keys).
    public func set(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let h = try live("setsockopt")
        try zcheck("setsockopt \(option) (\(bytes.count) bytes) on \(kindName)") {
            bytes.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        }
    }

    /// Sets a string option, without a terminating NUL (`utf8.count` bytes).
    public func set(_ option: Int32, string: String) throws(ZMQError) {
        try set(option, bytes: Array(string.utf8))
    }

    /// Reads an `int` option.
    public func get(_ option: Int32) throws(ZMQError) -> Int32 {
        let h = try live("getsockopt")
        var v: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try zcheck("getsockopt \(option) on \(kindName)") { zmq_getsockopt(h, option, &v, &size) }
        return v
    }

    /// Reads a NUL-terminated string option (e.g. `ZMQ_LAST_ENDPOINT`).
    public func getString(_ option: Int32) throws(ZMQError) -> String {
        let h = try live("getsockopt")
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        try zcheck("getsockopt \(option) on \(kindName)") { zmq_getsockopt(h, option, &buffer, &size) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Endpoints

    /// Binds and returns the endpoint actually bound (`ZMQ_LAST_ENDPOINT`), which differs from
    /// `endpoint` for wildcard ports such as `tcp://127.0.0.1:*`.
    @discardableResult
    public func bind(_ endpoint: String) throws(ZMQError) -> String {
        let h = try live("bind")
        try zcheck("bind \(kindName) to \(endpoint)") { zmq_bind(h, endpoint) }
        return try getString(ZMQ_LAST_ENDPOINT)
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        let h = try live("connect")
        try zcheck("connect \(kindName) to \(endpoint)") { zmq_connect(h, endpoint) }
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        let h = try live("disconnect")
        try zcheck("disconnect \(kindName) from \(endpoint)") { zmq_disconnect(h, endpoint) }
    }

    // MARK: Messages

    /// Sends `frames` as one multipart message (libzmq copies the bytes). With `dontWait`, returns
    /// false instead of blocking when the socket cannot take it now (EAGAIN); an XPUB never blocks
    /// and silently drops at its high-water mark (see ZEROMQ_NOTES).
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = true) throws(ZMQError) -> Bool {
        let h = try live("send")
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if i < frames.count - 1 { flags |= ZMQ_SNDMORE }
            do {
                try zcheck("send frame \(i) on \(kindName)") {
                    frame.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, flags) }
                }
            } catch where error.isAgain && i == 0 {
                return false  // nothing queued yet: the message is simply not sent
            }
        }
        return true
    }

    /// Receives one multipart message. Returns nil when nothing is waiting and `dontWait` (EAGAIN).
    ///
    /// At most `maxFrames` frames are kept; a message with more is drained and returned with
    /// `maxFrames + 1` frames (the last one empty), so shape checks refuse it.
    public func receive(dontWait: Bool = true, maxFrames: Int = 8) throws(ZMQError) -> [[UInt8]]? {
        try receiveMessage(dontWait: dontWait, maxFrames: maxFrames, wantUser: false)?.frames
    }

    /// Like `receive`, plus the ZAP user id libzmq attached to the message (`zmq_msg_gets`
    /// "User-Id": what our ZAP handler answered for the client's key, the peer id). nil on a
    /// plaintext socket.
    public func receiveWithUser(maxFrames: Int = 8) throws(ZMQError) -> (frames: [[UInt8]], user: String?)? {
        try receiveMessage(dontWait: true, maxFrames: maxFrames, wantUser: true)
    }

    private func receiveMessage(dontWait: Bool, maxFrames: Int, wantUser: Bool) throws(ZMQError) -> (frames: [[UInt8]], user: String?)? {
        let h = try live("receive")
        var frames: [[UInt8]] = []
        var user: String?
        var extra = false
        var more = false
        repeat {
            try zcheck("zmq_msg_init") { zmq_msg_init(message) }
            defer { zmq_msg_close(message) }
            let flags: Int32 = dontWait && frames.isEmpty ? ZMQ_DONTWAIT : 0
            do {
                try zcheck("receive on \(kindName)") { zmq_msg_recv(message, h, flags) }
            } catch where error.isAgain && frames.isEmpty {
                return nil
            }
            // A ROUTER's routing-id frame is made locally and has no metadata: take the first that has.
            if wantUser && user == nil, let p = zmq_msg_gets(message, "User-Id") { user = String(cString: p) }
            if frames.count < maxFrames {
                let size = zmq_msg_size(message)
                if size == 0 {
                    frames.append([])
                } else {
                    let data = zmq_msg_data(message)!.assumingMemoryBound(to: UInt8.self)
                    frames.append(Array(UnsafeBufferPointer(start: data, count: size)))
                }
            } else {
                extra = true
            }
            // Read before the deferred close releases the message.
            more = zmq_msg_more(message) != 0
        } while more
        if extra { frames.append([]) }
        return (frames, user)
    }

    /// Closes the socket (LINGER 0 was set at creation). Idempotent.
    public func close() {
        guard let h = handle else { return }
        handle = nil
        zmq_close(h)
    }

    deinit {
        close()
        message.deallocate()
    }

    static func name(of type: Int32) -> String {
        switch type {
        case ZMQ_PUB: "PUB"
        case ZMQ_SUB: "SUB"
        case ZMQ_XPUB: "XPUB"
        case ZMQ_XSUB: "XSUB"
        case ZMQ_REP: "REP"
        case ZMQ_REQ: "REQ"
        case ZMQ_ROUTER: "ROUTER"
        case ZMQ_DEALER: "DEALER"
        case ZMQ_PAIR: "PAIR"
        default: "socket(\(type))"
        }
    }
}
