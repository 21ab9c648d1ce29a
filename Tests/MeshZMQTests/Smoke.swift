import CZMQ
import Testing
@testable import MeshZMQ

@Suite struct ZMQSmokeTests {
    @Test func curveIsAvailable() {
        #expect(zmqHas("curve"))
        #expect(zmqVersion().major == 4)
    }

    @Test func errorsAreTypedAndReadable() throws {
        let ctx = try ZMQContext()
        let sock = try ZMQSocket(ctx, type: ZMQ_SUB)
        defer { sock.close() }
        let error = #expect(throws: ZMQError.self) { try sock.bind("nonsense://x") }
        #expect(error?.operation.contains("nonsense://x") == true)
        #expect(error?.text.isEmpty == false)
        #expect(throws: ZMQError.self) { try sock.set(ZMQ_MAXMSGSIZE, 5) }  // int64 option: 4 bytes is EINVAL
        try sock.set(ZMQ_MAXMSGSIZE, int64: 1 << 20)
        #expect(try sock.receive(dontWait: true) == nil)  // EAGAIN is "nothing yet", not an error
    }

    /// XPUB → SUB multipart on an ephemeral loopback port, publishing only after the subscription
    /// frame arrived (the slow-joiner cure).
    @Test func xpubToSubMultipartRoundTrip() throws {
        let ctx = try ZMQContext()
        let pub = try ZMQSocket(ctx, type: ZMQ_XPUB)
        let sub = try ZMQSocket(ctx, type: ZMQ_SUB)
        defer { sub.close(); pub.close() }
        try pub.set(ZMQ_XPUB_VERBOSE, 1)
        let endpoint = try pub.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        try sub.set(ZMQ_SUBSCRIBE, bytes: [7])
        try sub.connect(endpoint)

        var subscription: [[UInt8]]?
        for _ in 0..<500 where subscription == nil {  // ≤ 10 s
            var poller = ZMQPoller()
            poller.add(pub)
            try poller.poll(timeoutMilliseconds: 20)
            subscription = try pub.receive()
        }
        #expect(subscription == [[1, 7]])

        let frames: [[UInt8]] = [[7, 1], [], Array(repeating: 0xAB, count: 100_000), Array("end".utf8)]
        #expect(try pub.send(frames))
        var got: [[UInt8]]?
        for _ in 0..<500 where got == nil {
            var poller = ZMQPoller()
            poller.add(sub)
            try poller.poll(timeoutMilliseconds: 20)
            got = try sub.receive()
        }
        #expect(got == frames)
    }

    @Test func tooManyFramesAreFlagged() throws {
        let ctx = try ZMQContext()
        let a = try ZMQSocket(ctx, type: ZMQ_PAIR)
        let b = try ZMQSocket(ctx, type: ZMQ_PAIR)
        defer { a.close(); b.close() }
        try a.bind("inproc://frames")
        try b.connect("inproc://frames")
        try a.send((0..<5).map { [UInt8($0)] }, dontWait: false)
        let got = try b.receive(dontWait: false, maxFrames: 3)
        #expect(got == [[0], [1], [2], []])
    }
}
