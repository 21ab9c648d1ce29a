import Testing
@testable import Mesh

/// HELLO is the one message another run may send: accepted whatever its run id, never relayed.
@Suite struct HelloWireTests {
    func frames(_ kind: MessageKind, runID: UInt64, origin: PeerIndex) -> [[UInt8]] {
        Envelope.make(kind: kind, runID: runID, origin: origin, incarnation: 1, step: 0, sequence: 1, body: [1, 2, 3]).frames
    }

    @Test func aForeignHelloPassesTheHeaderCheckAndNothingElseDoes() throws {
        let e = try Envelope(frames: frames(.hello, runID: 99, origin: 7), expectedRunID: 5, maxBody: 1024, peerCount: 3)
        #expect(e.header.runID == 99 && e.header.origin == 7)
        for kind in MessageKind.allCases where kind != .hello {
            #expect(throws: WireError.self) { try Envelope(frames: frames(kind, runID: 99, origin: 1), expectedRunID: 5, maxBody: 1024, peerCount: 3) }
        }
        // Our own run's HELLO still has to name one of our peers.
        #expect(throws: WireError.self) { try Envelope(frames: frames(.hello, runID: 5, origin: 7), expectedRunID: 5, maxBody: 1024, peerCount: 3) }
    }

    @Test func helloIsNeverRelayed() throws {
        let ring = try TopologyTests.shipped("ring8.yaml")
        var relay = Relay(topology: ring, me: 1)
        let h = MessageHeader(kind: .hello, runID: 1, origin: 0, incarnation: 0, step: 0, sequence: 1, body: [])
        #expect(relay.decide(h) == .deliver(forward: false))
        #expect(relay.decide(h) == .deliver(forward: false), "no duplicate filter state either")
        let mine = MessageHeader(kind: .hello, runID: 1, origin: 1, incarnation: 0, step: 0, sequence: 1, body: [])
        #expect(relay.decide(mine) == .deliver(forward: false), "a foreign peer may have our index")
    }
}
