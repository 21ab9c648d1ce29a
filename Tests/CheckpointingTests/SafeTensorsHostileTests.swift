import Checkpointing
import Foundation
import Testing

/// Malformed and hostile inputs: each must produce a `SafeTensorsError`, never a trap or another
/// error type.
@Suite struct SafeTensorsHostileTests {
    /// A file from a header string and data bytes (the header length prefix is computed).
    static func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        let h = Array(header.utf8)
        var out = Data()
        var n = (declaredLength ?? UInt64(h.count)).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: data)
        return out
    }

    /// Parses `data`, returning the SafeTensorsError (nil when it parsed); any other error fails.
    static func parseError(_ data: Data) -> SafeTensorsError? {
        do {
            _ = try SafeTensors(data: data)
            return nil
        } catch let e as SafeTensorsError {
            return e
        } catch {
            Issue.record("non-SafeTensorsError \(error)")
            return nil
        }
    }

    static let valid = try! SafeTensors(tensors: [
        SafeTensor(name: "a", shape: [2, 2], floats: [1, 2, 3, 4]),
        SafeTensor(name: "b", shape: [3], int32s: [7, 8, 9]),
    ], metadata: ["k": "v"]).encoded()

    @Test func everyTruncationFails() {
        #expect(Self.parseError(Self.valid) == nil)
        for len in 0..<Self.valid.count {
            #expect(Self.parseError(Self.valid.prefix(len)) != nil, "prefix of \(len) bytes parsed")
        }
    }

    @Test func hugeOrOverlongHeaderLength() {
        #expect(Self.parseError(Self.file(header: "{}", declaredLength: .max)) == .headerTooLarge(declared: .max))
        #expect(Self.parseError(Self.file(header: "{}", declaredLength: 1 << 40)) == .headerTooLarge(declared: 1 << 40))
        #expect(Self.parseError(Self.file(header: "{}", declaredLength: 1000)) == .truncated(expected: 1008, actual: 10))
    }

    @Test func offsetsOutOfRangeOrMalformed() {
        let data = [UInt8](repeating: 0, count: 16)
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#, data: data))
                == .offsetOutOfRange(tensor: "x", end: 32, dataSize: 16))
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}"#, data: data))
                == .invalidOffsets(tensor: "x", reason: "[16, 0] is not ordered and non-negative"))
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[-4,12]}}"#, data: data)) != nil)
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0]}}"#, data: data))
                == .invalidOffsets(tensor: "x", reason: "expected [begin, end] integers"))
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,1e300]}}"#, data: data)) != nil)
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,"16"]}}"#, data: data)) != nil)
    }

    @Test func shapeAndOffsetsDisagree() {
        let data = [UInt8](repeating: 0, count: 16)
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, data: data))
                == .shapeMismatch(tensor: "x", expectedBytes: 12, actualBytes: 16))
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, data: data))
                == .invalidShape(tensor: "x", shape: "[-4]"))
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}}"#, data: data)) != nil)
        // Element count overflow.
        let big = #"{"x":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#
        #expect(Self.parseError(Self.file(header: big, data: data)) != nil)
        #expect(Self.parseError(Self.file(header: #"{"x":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}}"#, data: data))
                == .unknownDType(tensor: "x", dtype: "Q4"))
    }

    @Test func overlappingGappedOrUncoveredRanges() {
        let data = [UInt8](repeating: 0, count: 16)
        let overlap = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}"#
        guard case .nonContiguous(let t, _)? = Self.parseError(Self.file(header: overlap, data: data)) else {
            Issue.record("overlap not rejected"); return
        }
        #expect(t == "y")
        let gap = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        #expect(Self.parseError(Self.file(header: gap, data: data)) != nil)
        let trailing = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(Self.parseError(Self.file(header: trailing, data: data)) != nil)
        let duplicateRange = #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"y":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        #expect(Self.parseError(Self.file(header: duplicateRange, data: data)) != nil)
    }

    @Test func badJSONAndBadStructure() {
        for header in ["", "not json", "{", "[1,2]", "{\"x\":5}", "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
                       "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "{\"__metadata__\":{\"k\":1}}",
                       "{\"__metadata__\":[1]}", String(repeating: "[", count: 10_000)] {
            #expect(Self.parseError(Self.file(header: header, data: [0, 0, 0, 0])) != nil, "\(header.prefix(40))")
        }
        var invalidUTF8 = Self.file(header: "{\"x\":1}")
        invalidUTF8[10] = 0xFF
        #expect(Self.parseError(invalidUTF8) != nil)
    }

    @Test func seededRandomGarbageNeverTraps() {
        var state: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        // Pure noise, sometimes with a plausible small header length.
        for _ in 0..<300 {
            var bytes = (0..<Int(next() % 200)).map { _ in UInt8(truncatingIfNeeded: next()) }
            if bytes.count >= 8, next() % 2 == 0 {
                let n = UInt64(next() % UInt64(bytes.count))
                for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
            }
            _ = Self.parseError(Data(bytes))
        }
        // Valid file with a few bytes flipped (header and data): parses or fails cleanly.
        for _ in 0..<500 {
            var bytes = [UInt8](Self.valid)
            for _ in 0..<Int(1 + next() % 3) {
                bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next())
            }
            _ = Self.parseError(Data(bytes))
        }
    }
}
