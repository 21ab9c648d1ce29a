import Checkpointing
import DeMo
import Foundation
import FuzzHarness
import Mesh
import PeerRuntime
import Testing

func seed(_ target: String, _ name: String) -> [UInt8] {
    FuzzSeeds.seeds(for: target, root: packageRoot.path).first { $0.name == name }!.bytes
}

/// Inputs every decoder must refuse with its own typed error (and that the harness reports as
/// rejected, not as a finding). Some are regression cases of fuzzer findings.
@Suite struct KnownBadInputTests {
    @Test func truncatedHeaderIsRejected() throws {
        let frames = FuzzHarness.headerFrames(seed("header", "seed-update"))
        #expect(throws: WireError.badHeaderLength(47)) {
            try MessageHeader.decode(Array(frames[1].dropLast()), body: frames[2], expectedRunID: FuzzHarness.headerRunID,
                                     maxBody: FuzzHarness.headerMaxBody)
        }
        let truncated = FuzzHarness.headerInput(topic: frames[0], header: Array(frames[1].dropLast()), body: frames[2])
        #expect(try FuzzHarness.header(truncated).isRejected)
        #expect(try FuzzHarness.header(Array(truncated.prefix(20))).isRejected)   // two frames only
    }

    @Test func corruptedBodyFailsTheCRC() throws {
        var frames = FuzzHarness.headerFrames(seed("header", "seed-update"))
        frames[2][0] ^= 1
        #expect {
            try Envelope(frames: frames, expectedRunID: FuzzHarness.headerRunID, maxBody: FuzzHarness.headerMaxBody, peerCount: 16)
        } throws: { error in
            if case WireError.crcMismatch = error { return true } else { return false }
        }
    }

    @Test func truncatedUpdateIsRejected() throws {
        let bytes = seed("update", "seed-bf16-0")
        #expect { try DeMoCodec.decode(Array(bytes.dropLast()), plan: FuzzHarness.updatePlan) } throws: { error in
            if case DeMoCodecError.truncated = error { return true } else { return false }
        }
        #expect(try FuzzHarness.update(Array(bytes.dropLast())).isRejected)
    }

    /// Regression (fuzz finding, update target): an int8 code of -128 decoded to a value the encoder
    /// can never write (it clamps to ±127), so re-encoding changed the payload.
    @Test func int8CodeMinus128IsRejected() throws {
        var bytes = seed("update", "seed-int8-0")
        bytes[30] = 0x80   // first value of tensor m, chunk 0 (after 24 header bytes, 2 index bytes, 4 scale bytes)
        #expect { try DeMoCodec.decode(bytes, plan: FuzzHarness.updatePlan) } throws: { error in
            if case DeMoCodecError.nonCanonical = error { return true } else { return false }
        }
        #expect(try FuzzHarness.update(bytes).isRejected)
    }

    /// A chunk scale of -0.0 passed `s >= 0` but decodes sign values the encoder never writes.
    @Test func negativeZeroScaleIsRejected() throws {
        var bytes = seed("update", "seed-sign-0")
        bytes.replaceSubrange(26..<30, with: [0, 0, 0, 0x80])   // scale of tensor m, chunk 0
        #expect(throws: DeMoCodecError.invalidPayload(.badScale(tensor: "m", chunk: 0))) {
            try DeMoCodec.decode(bytes, plan: FuzzHarness.updatePlan)
        }
    }

    @Test func denseBodyOfTheWrongLengthIsRejected() throws {
        let body = seed("update", "seed-dense")
        #expect(try FuzzHarness.update(body) == .accepted)
        #expect(try FuzzHarness.update(Array(body.dropLast(4))).isRejected)
        #expect(try FuzzHarness.update(Array(repeating: 0xFF, count: body.count)).isRejected)   // NaNs
    }

    @Test func duplicatePeerIdIsRejected() throws {
        let text = String(decoding: seed("topology", "seed-local2"), as: UTF8.self)
            .replacingOccurrences(of: "id: p1", with: "id: p0")
        #expect(throws: TopologyError.self) { try TopologyParser.parse(yaml: text, file: "dup.yaml") }
        #expect(try FuzzHarness.topology(Array(text.utf8)).isRejected)
    }

    @Test func truncatedCheckpointIsRejected() throws {
        let bytes = seed("checkpoint", "seed-demo")
        #expect { try SafeTensors(data: Data(bytes.prefix(7))) } throws: { error in
            if case SafeTensorsError.truncated = error { return true } else { return false }
        }
        #expect(try FuzzHarness.checkpoint(Array(bytes.dropLast())).isRejected)
    }

    @Test func flippedCheckpointByteFailsTheChecksum() throws {
        var bytes = seed("checkpoint", "seed-params")
        bytes[bytes.count - 1] ^= 0x40
        #expect { try TrainingCheckpoint.decode(Data(bytes)) } throws: { error in
            if case TrainingCheckpointError.checksumMismatch = error { return true } else { return false }
        }
        // The harness recomputes the checksum and decodes the repaired file as well: accepted.
        #expect(try FuzzHarness.checkpoint(bytes) == .accepted)
    }

    func regression(_ target: String, _ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: packageRoot.appendingPathComponent("Fuzz/regressions/\(target)/\(name)")))
    }

    /// Regressions (checkpoint harness): a config whose sizes overflow the layout arithmetic trapped,
    /// one needing 768 GB of parameters was allocated before any tensor was checked, and a negative
    /// step was accepted. All now fail with `TrainingCheckpointError` (checksums are valid).
    @Test(arguments: ["config-overflow", "config-too-large"])
    func hostileConfigIsRejected(name: String) throws {
        let bytes = try regression("checkpoint", name)
        #expect { try TrainingCheckpoint.decode(Data(bytes)) } throws: { error in
            if case TrainingCheckpointError.configExceedsData = error { return true } else { return false }
        }
    }

    @Test func negativeStepIsRejected() throws {
        let bytes = try regression("checkpoint", "negative-step")
        #expect { try TrainingCheckpoint.decode(Data(bytes)) } throws: { error in
            if case TrainingCheckpointError.badMetadata("step") = error { return true } else { return false }
        }
    }

    /// Regression (checkpoint harness): a tensor named "" was read, but `encoded()` refuses to write it.
    @Test func emptyTensorNameIsRejected() throws {
        let bytes = try regression("checkpoint", "empty-tensor-name")
        #expect { try SafeTensors(data: Data(bytes)) } throws: { error in
            if case SafeTensorsError.invalidHeader = error { return true } else { return false }
        }
    }
}
