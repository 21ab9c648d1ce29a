import Checkpointing
import Foundation
import Tensors
import Testing
import TinyGPT
@testable import PeerRuntime

@Suite struct TrainingCheckpointTests {
    static func sample() throws -> TrainingCheckpoint {
        let config = try GPTConfig.preset(named: "nano")
        let n = GPTParameters.layout(for: config).totalCount
        var c = TrainingCheckpoint(config: config, step: 42, incarnation: 3, runID: 0xABCD,
                                   parameters: (0..<n).map { Float($0 % 97) * 0.01 }, extra: ["peer": "p1"])
        c.residual = (0..<n).map { Float($0 % 13) * -0.001 }
        return c
    }

    @Test func roundTripKeepsEverything() throws {
        let c = try Self.sample()
        let d = try TrainingCheckpoint.decode(try c.encoded())
        #expect(d.parameters == c.parameters)
        #expect(d.residual == c.residual)
        #expect(d.adamM == nil)
        #expect(d.step == 42 && d.incarnation == 3 && d.runID == 0xABCD)
        #expect(d.config == c.config)
        #expect(d.extra["peer"] == "p1")
    }

    @Test func aFlippedBitAnywhereInTheDataIsCaught() throws {
        let bytes = [UInt8](try Self.sample().encoded())
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        var rng = SeededRNG(seed: 77)
        for _ in 0..<20 {
            var b = bytes
            let i = Int.random(in: (8 + headerLength)..<b.count, using: &rng)
            b[i] ^= 0x04
            #expect(throws: (any Error).self) { try TrainingCheckpoint.decode(Data(b)) }
        }
        #expect(throws: (any Error).self) { try TrainingCheckpoint.decode(Data(bytes.prefix(bytes.count / 2))) }
    }
}
