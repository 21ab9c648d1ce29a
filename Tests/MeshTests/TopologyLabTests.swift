import Testing
@testable import Mesh

/// `netns`, `listen` and `validation`: the fields for lab runs over namespaces and periodic validation.
@Suite struct TopologyLabTests {
    static let lab = """
    run: lab
    seed: 1
    model: { preset: nano }
    data: { corpus: shakespeare, batch_size: 4 }
    optimizer: { kind: demo, lr: 0.003 }
    steps: 10
    validation: { every: 25, batches: 5 }
    peers:
      - { id: p0, netns: murmur-p0, pub: "tcp://10.77.1.10:7100", sync: "tcp://10.77.1.10:7101", listen: "10.77.0.10" }
      - { id: p1, netns: murmur-p1, pub: "tcp://10.77.1.11:7110", sync: "tcp://10.77.1.11:7111", listen: "10.77.0.11" }
      - { id: p2, pub: "tcp://10.8.0.9:7120", sync: "tcp://10.8.0.9:7121" }
    security: { plaintext: allow }
    """

    func failure(_ old: String, _ new: String) -> TopologyError? {
        precondition(Self.lab.contains(old), old)
        do {
            _ = try TopologyParser.parse(yaml: Self.lab.replacingOccurrences(of: old, with: new), file: "lab.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func labFieldsParse() throws {
        let t = try TopologyParser.parse(yaml: Self.lab, file: "lab.yaml")
        #expect(t.peers.map(\.netns) == ["murmur-p0", "murmur-p1", nil])
        #expect(t.peers.map(\.listen) == ["10.77.0.10", "10.77.0.11", nil])
        #expect(t.validation == ValidationSpec(every: 25, batches: 5))
        // Namespaced peers run on this machine whatever their address; p2 is elsewhere.
        #expect(t.localPeers().map(\.id) == ["p0", "p1"])
    }

    @Test func validationDefaultsToTheEndOnly() throws {
        let t = try TopologyParser.parse(yaml: Self.lab.replacingOccurrences(of: "validation: { every: 25, batches: 5 }\n", with: ""), file: "x")
        #expect(t.validation.every == nil)
        #expect(t.validation.batches == 20)
    }

    @Test func validationIsNotPartOfTheRunID() throws {
        let a = try TopologyParser.parse(yaml: Self.lab, file: "x")
        let b = try TopologyParser.parse(yaml: Self.lab.replacingOccurrences(of: "every: 25", with: "every: 7"), file: "x")
        #expect(a.runID == b.runID)
    }

    @Test func badNamespaceName() {
        let e = failure("netns: murmur-p1", "netns: \"murmur p1\"")
        #expect(e?.field == "peers[1].netns")
        #expect(e?.line == 10)
        #expect(e?.description.contains("network namespace name") == true)
        #expect(failure("netns: murmur-p1", "netns: \"../etc\"")?.field == "peers[1].netns")
    }

    @Test func badListenHost() {
        let e = failure("listen: \"10.77.0.11\"", "listen: \"10.77.0.11/24\"")
        #expect(e?.field == "peers[1].listen")
        #expect(e?.description.contains("a host to bind on") == true)
        #expect(failure("listen: \"10.77.0.11\"", "listen: \"*\"")?.field == "peers[1].listen")
    }

    @Test func validationOutOfRange() {
        #expect(failure("every: 25", "every: 0")?.field == "validation.every")
        #expect(failure("batches: 5", "batches: -1")?.field == "validation.batches")
        #expect(failure("batches: 5", "batchez: 5")?.problem == .unknownKey("batchez", suggestion: "batches"))
    }
}
