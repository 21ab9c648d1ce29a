import Checkpointing
import Foundation
import Testing

@Suite struct SafeTensorsRoundTripTests {
    static func sample() -> SafeTensors {
        SafeTensors(tensors: [
            SafeTensor(name: "weights", shape: [2, 3], floats: [1, -2, 3.5, .pi, 0, -0]),
            SafeTensor(name: "ids", shape: [4], int32s: [0, -1, .max, .min]),
            SafeTensor(name: "scalar", shape: [], floats: [42]),
            SafeTensor(name: "empty", shape: [0, 3], floats: []),
            SafeTensor(name: "odd \"name\"\n", dtype: .u8, shape: [3], bytes: [1, 2, 3]),
        ], metadata: ["format": "pt", "step": "12", "note": "tab\there"])
    }

    @Test func roundTripPreservesEverything() throws {
        let original = Self.sample()
        let data = try original.encoded()
        let back = try SafeTensors(data: data)
        #expect(back.metadata == original.metadata)
        #expect(back.names == original.names)
        for name in original.names { #expect(back.tensors[name] == original.tensors[name], "\(name)") }
        #expect(try back.floats("weights") == [1, -2, 3.5, .pi, 0, -0])
        #expect(try back.int32s("ids") == [0, -1, .max, .min])
        #expect(try back.tensor("scalar").shape == [])
        #expect(try back.floats("empty").isEmpty)
    }

    @Test func encodingIsDeterministicAndAligned() throws {
        let a = try Self.sample().encoded()
        // Same tensors given in another order encode to the same bytes.
        let shuffled = SafeTensors(tensors: Self.sample().tensors.values.sorted { $0.name > $1.name },
                                   metadata: Self.sample().metadata)
        #expect(try shuffled.encoded() == a)
        let headerLen = a.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLen) % 8 == 0)
        let header = String(decoding: a[8..<(8 + headerLen)], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":"))
        #expect(header.trimmingCharacters(in: .whitespaces).hasSuffix("}"))
        // Tensors sorted by name, data laid out in that order.
        let names = ["empty", "ids", "odd", "scalar", "weights"]
        let positions = names.map { header.range(of: "\"\($0)")!.lowerBound }
        #expect(positions == positions.sorted())
    }

    @Test func writeAndReadFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("murmur-st-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Self.sample().write(to: url)
        let back = try SafeTensors(contentsOf: url)
        #expect(try back.floats("weights") == [1, -2, 3.5, .pi, 0, -0])
        #expect(throws: SafeTensorsError.self) { _ = try SafeTensors(contentsOf: url.appendingPathExtension("missing")) }
    }

    @Test func writerRejectsInconsistentTensors() {
        let bad = SafeTensors(tensors: [SafeTensor(name: "x", dtype: .f32, shape: [2, 2], bytes: [0, 0, 0, 0])])
        #expect(throws: SafeTensorsError.invalidTensor(name: "x", reason: "shape [2, 2] needs 16 bytes, has 4")) { _ = try bad.encoded() }
        let reserved = SafeTensors(tensors: [SafeTensor(name: "__metadata__", shape: [1], floats: [1])])
        #expect(throws: SafeTensorsError.self) { _ = try reserved.encoded() }
    }

    @Test func accessorsCheckDTypeAndNames() throws {
        let st = try SafeTensors(data: Self.sample().encoded())
        #expect(throws: SafeTensorsError.wrongDType(tensor: "ids", expected: "F32", actual: "I32")) { _ = try st.floats("ids") }
        #expect(throws: SafeTensorsError.wrongDType(tensor: "weights", expected: "I32", actual: "F32")) { _ = try st.int32s("weights") }
        #expect(throws: SafeTensorsError.missingTensor("nope")) { _ = try st.tensor("nope") }
        #expect("\(SafeTensorsError.missingTensor("nope"))".contains("nope"))
    }

    @Test func otherFloatDTypesWiden() throws {
        // bf16 1.0 = 0x3F80, f16 -2.0 = 0xC000, f64 0.5.
        let st = SafeTensors(tensors: [
            SafeTensor(name: "b", dtype: .bf16, shape: [1], bytes: [0x80, 0x3F]),
            SafeTensor(name: "h", dtype: .f16, shape: [1], bytes: [0x00, 0xC0]),
            SafeTensor(name: "d", dtype: .f64, shape: [1], bytes: Array(withUnsafeBytes(of: (0.5).bitPattern.littleEndian) { Array($0) })),
        ])
        let back = try SafeTensors(data: st.encoded())
        #expect(try back.floats("b") == [1])
        #expect(try back.floats("h") == [-2])
        #expect(try back.floats("d") == [0.5])
    }

    /// The shared golden file (when present) parses and has the documented tensors.
    @Test func readsTheSharedGoldenFile() throws {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        let file = dir.appendingPathComponent("../shared/golden/gpt/gpt_l2_h2_c32.safetensors").standardizedFileURL
        guard FileManager.default.fileExists(atPath: file.path) else {
            print("CheckpointingTests golden file check not run: ../shared absent")
            return
        }
        let st = try SafeTensors(contentsOf: file)
        #expect(try st.tensor("transformer.wte.weight").shape == [256, 32])
        #expect(try st.tensor("inputs").dtype == .i32)
        #expect(try st.tensor("transformer.h.1.attn.c_attn.weight").shape == [32, 96])
    }
}

@Suite struct SafeTensorsFlatBufferTests {
    @Test func flatBufferRoundTripAndShapeChecks() throws {
        let entries: [(name: String, shape: [Int])] = [("w", [2, 3]), ("b", [3])]
        let src: [Float] = (0..<9).map(Float.init)
        let tensors = src.withUnsafeBufferPointer { SafeTensors.floatTensors(entries, from: $0, prefix: "m.") }
        let st = try SafeTensors(data: SafeTensors(tensors: tensors).encoded())
        #expect(st.names == ["m.b", "m.w"])
        var dst = [Float](repeating: -1, count: 9)
        try dst.withUnsafeMutableBufferPointer { try st.copyFloats(entries, into: $0, prefix: "m.") }
        #expect(dst == src)
        var untouched = [Float](repeating: -1, count: 9)
        #expect(throws: SafeTensorsError.wrongShape(tensor: "m.w", expected: [3, 2], actual: [2, 3])) {
            try untouched.withUnsafeMutableBufferPointer { try st.copyFloats([("w", [3, 2]), ("b", [3])], into: $0, prefix: "m.") }
        }
        #expect(throws: SafeTensorsError.missingTensor("w")) {
            try untouched.withUnsafeMutableBufferPointer { try st.copyFloats(entries, into: $0) }
        }
        #expect(untouched.allSatisfy { $0 == -1 })
    }
}
