import CZMQ

/// A set of sockets and file descriptors for `zmq_poll`, rebuilt by its owner when sockets change.
///
/// Threading: like sockets, use it on the thread that owns the sockets it lists.
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket watched for input; returns its slot.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Adds a plain file descriptor (e.g. a wake-up pipe) watched for input; returns its slot.
    @discardableResult
    public mutating func add(fd: Int32) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    public var count: Int { items.count }

    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: just look) for input; returns how many
    /// slots are ready. EINTR is retried.
    @discardableResult
    public mutating func poll(timeoutMilliseconds: Int) throws(ZMQError) -> Int {
        for i in items.indices { items[i].revents = 0 }
        let n = Int32(items.count)
        return Int(try items.withUnsafeMutableBufferPointer { buffer throws(ZMQError) in
            try zcheck("zmq_poll") { zmq_poll(buffer.baseAddress, n, timeoutMilliseconds) }
        })
    }

    /// Whether slot `index` had input at the last `poll`.
    public func isReadable(_ index: Int) -> Bool {
        items[index].revents & Int16(ZMQ_POLLIN) != 0
    }
}
