import Checkpointing
import Foundation
import PeerRuntime
import Tensors
import TinyGPT

extension FuzzHarness {
    /// Fuzzes the checkpoint loader: `SafeTensors(data:)` on the input, `TrainingCheckpoint.decode`
    /// on the input, and — when the input is a Murmur checkpoint whose checksum is merely wrong —
    /// `TrainingCheckpoint.decode` on the same file with the `data_sha256` metadata recomputed, so
    /// mutations get past the checksum to the config and shape checks.
    ///
    /// Invariants on acceptance: every tensor holds exactly `product(shape) × dtype size` bytes
    /// and the tensors tile the data section; the file re-encodes and reads back to the same
    /// tensors and metadata. A decoded checkpoint has a valid config, a non-negative step and
    /// Adam step, parameter/residual/moment buffers of the layout's size, and survives
    /// `encoded()` → `decode` unchanged (bit for bit).
    @discardableResult
    public static func checkpoint(_ bytes: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        let data = Data(bytes)
        let file: SafeTensors
        do { file = try SafeTensors(data: data) } catch let error as SafeTensorsError {
            return .rejected(error.description)
        } catch {
            throw FuzzFinding("checkpoint", "SafeTensors threw an undocumented error: \(error)")
        }
        try checkSafeTensors(file, bytes)
        var outcome = try trainingCheckpoint(data)
        if file.metadata["format"] == TrainingCheckpoint.formatTag {
            let digest = TrainingCheckpoint.dataDigest(Array(file.tensors.values))
            if file.metadata["data_sha256"] != digest {
                var fixed = file
                fixed.metadata["data_sha256"] = digest
                if let again = try? fixed.encoded() { outcome = try trainingCheckpoint(again) }
            }
        }
        return outcome
    }

    static func checkSafeTensors(_ file: SafeTensors, _ bytes: [UInt8]) throws(FuzzFinding) {
        let t = "checkpoint"
        var header: UInt64 = 0
        for i in 0..<8 { header |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        var total = 0
        for (name, tensor) in file.tensors {
            try require(name == tensor.name, t, "tensor stored under \(name) is called \(tensor.name)")
            try require(tensor.shape.allSatisfy { $0 >= 0 }, t, "tensor \(name) has shape \(tensor.shape)")
            try require(tensor.bytes.count == tensor.elementCount * tensor.dtype.byteSize, t,
                        "tensor \(name) has \(tensor.bytes.count) bytes for shape \(tensor.shape) \(tensor.dtype)")
            if let floats = try? tensor.floats() {
                try require(floats.count == tensor.elementCount, t, "tensor \(name): \(floats.count) floats")
            }
            total += tensor.bytes.count
        }
        try require(UInt64(total) + 8 + header == UInt64(bytes.count), t, "tensors do not tile the data section")
        let again: SafeTensors
        do { again = try SafeTensors(data: try file.encoded()) } catch {
            throw FuzzFinding(t, "accepted safetensors file cannot be written back: \(error)")
        }
        try require(again.tensors == file.tensors, t, "tensors changed through encode → decode")
        try require(again.metadata == file.metadata, t, "metadata changed through encode → decode")
    }

    static func trainingCheckpoint(_ data: Data) throws(FuzzFinding) -> FuzzOutcome {
        let t = "checkpoint"
        let c: TrainingCheckpoint
        do { c = try TrainingCheckpoint.decode(data) } catch {
            if let e = error as? TrainingCheckpointError { return .rejected(e.description) }
            if let e = error as? SafeTensorsError { return .rejected(e.description) }
            if let e = error as? GPTConfigError { return .rejected(e.description) }
            throw FuzzFinding(t, "TrainingCheckpoint.decode threw an undocumented error: \(error)")
        }
        do { try c.config.validate() } catch { throw FuzzFinding(t, "accepted an invalid config: \(error)") }
        try require(c.step >= 0 && c.adamT >= 0, t, "accepted step \(c.step), adam_t \(c.adamT)")
        let n = GPTParameters.layout(for: c.config).totalCount
        try require(c.parameters.count == n, t, "\(c.parameters.count) parameters, the layout has \(n)")
        for (what, buffer) in [("residual", c.residual), ("adam_m", c.adamM), ("adam_v", c.adamV)] {
            if let buffer { try require(buffer.count == n, t, "\(what) has \(buffer.count) floats, the layout \(n)") }
        }
        let back: TrainingCheckpoint
        do { back = try TrainingCheckpoint.decode(try c.encoded()) } catch {
            throw FuzzFinding(t, "decoded checkpoint does not survive encode → decode: \(error)")
        }
        try require(same(back, c), t, "checkpoint changed through encode → decode")
        return .accepted
    }

    static func same(_ a: TrainingCheckpoint, _ b: TrainingCheckpoint) -> Bool {
        func bits(_ x: [Float]?) -> [UInt32]? { x?.map(\.bitPattern) }
        return a.config == b.config && a.step == b.step && a.incarnation == b.incarnation && a.runID == b.runID
            && a.adamT == b.adamT && a.extra == b.extra && bits(a.parameters) == bits(b.parameters)
            && bits(a.residual) == bits(b.residual) && bits(a.adamM) == bits(b.adamM) && bits(a.adamV) == bits(b.adamV)
    }
}
