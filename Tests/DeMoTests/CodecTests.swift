import Testing
@_spi(DeMoInternals) @testable import DeMo
import Tensors

/// A payload straight from `prepare` with the given format (so lossy values are already quantized).
func samplePayload(_ format: DeMoValueFormat, seed: UInt64 = 21) throws -> (DeMoPayload, DeMoPlan) {
    var o = try makeOptimizer(format)
    return (try prepare(&o, randomFloats(testLayout.totalCount, seed: seed)), o.plan)
}

/// Decoding must either throw a `DeMoCodecError` or return a payload that fits the plan.
func decodeIsSafe(_ bytes: [UInt8], _ plan: DeMoPlan) -> Bool {
    do {
        let p = try DeMoCodec.decode(bytes, plan: plan)
        try p.validate(against: plan)
        return true
    } catch is DeMoCodecError {
        return false
    } catch {
        Issue.record("unexpected error type \(error)")
        return false
    }
}

@Suite struct CodecTests {
    @Test(arguments: DeMoValueFormat.allCases)
    func roundTripOfPreparedPayloadIsExact(format: DeMoValueFormat) throws {
        let (payload, plan) = try samplePayload(format)
        let bytes = try DeMoCodec.encode(payload, plan: plan)
        #expect(bytes.count == DeMoCodec.encodedSize(plan: plan, format: format))
        #expect(try DeMoCodec.decode(bytes, plan: plan) == payload)
    }

    /// Unquantized f32 values encoded in each format come back within that format's resolution.
    @Test(arguments: DeMoValueFormat.allCases)
    func quantisationError(format: DeMoValueFormat) throws {
        var (payload, plan) = try samplePayload(.f32)
        let original = payload
        payload.format = format
        for t in payload.tensors.indices {
            let tp = plan.tensors[t]
            payload.tensors[t].scales = []
            for c in 0..<tp.chunkCount {
                let s = payload.tensors[t].values.withUnsafeMutableBufferPointer { format.quantize($0.baseAddress! + c * tp.k, count: tp.k) }
                if format.hasChunkScale { payload.tensors[t].scales.append(s) }
                // quantize() is only used to get the scales; encode the unquantized values.
            }
            payload.tensors[t].values = original.tensors[t].values
        }
        let back = try DeMoCodec.decode(try DeMoCodec.encode(payload, plan: plan), plan: plan)
        for (t, tp) in plan.tensors.enumerated() {
            let v = original.tensors[t].values, d = back.tensors[t].values
            #expect(back.tensors[t].indices == original.tensors[t].indices)
            for c in 0..<tp.chunkCount {
                let r = (c * tp.k)..<((c + 1) * tp.k)
                let maxAbs = r.map { abs(v[$0]) }.max()!
                let meanAbs = r.map { abs(v[$0]) }.reduce(0, +) / Float(tp.k)
                for i in r {
                    switch format {
                    case .f32: #expect(d[i] == v[i])
                    case .bf16: #expect(abs(d[i] - v[i]) <= abs(v[i]) * 0x1p-8)
                    case .int8: #expect(abs(d[i] - v[i]) <= maxAbs / 127 * 0.5001)
                    case .sign:
                        #expect(abs(abs(d[i]) - meanAbs) <= 1e-6 * meanAbs)
                        #expect(v[i] == 0 || (d[i] < 0) == (v[i] < 0))
                    case .twoBit:
                        // ±0.5 or ±1.5 × mean|v|, the sign kept, the larger level iff |v| ≥ mean|v|.
                        let s = back.tensors[t].scales[c]
                        #expect(abs(s - meanAbs) <= 1e-5 * meanAbs)
                        #expect(abs(d[i]) == (abs(v[i]) >= s ? 1.5 * s : 0.5 * s))
                        #expect(v[i] == 0 || (d[i] < 0) == (v[i] < 0))
                    }
                }
            }
        }
    }

    @Test func byteAccounting() throws {
        let plan = DeMoPlan(layout: ParameterLayout([(name: "w", shape: [64, 64])]), chunk: 64, topk: 32)
        let a = DeMoCodec.accounting(plan: plan, format: .f32)
        #expect(a.referenceBytes == 384 && a.denseFP32Bytes == 16384 && a.coefficients == 32)
        // 12 + 12 header bytes, 32 × 12-bit indices = 48 B, 32 × 4 B values.
        #expect(a.realBytes == 24 + 48 + 128)
        #expect(DeMoCodec.accounting(plan: plan, format: .sign).realBytes == 24 + 48 + 4 + 4)
    }

    @Test func truncatedAtEveryLength() throws {
        for format in DeMoValueFormat.allCases {
            let (payload, plan) = try samplePayload(format)
            let bytes = try DeMoCodec.encode(payload, plan: plan)
            for n in 0..<bytes.count {
                #expect(throws: DeMoCodecError.self) { _ = try DeMoCodec.decode(Array(bytes[0..<n]), plan: plan) }
            }
            #expect(throws: DeMoCodecError.trailingBytes(1)) { _ = try DeMoCodec.decode(bytes + [0], plan: plan) }
        }
    }

    @Test func hostileHeaders() throws {
        let (payload, plan) = try samplePayload(.f32)
        let good = try DeMoCodec.encode(payload, plan: plan)
        func patched(_ at: Int, _ b: [UInt8]) -> [UInt8] { var x = good; x.replaceSubrange(at..<(at + b.count), with: b); return x }
        #expect(throws: DeMoCodecError.badMagic) { _ = try DeMoCodec.decode(patched(0, [0x58]), plan: plan) }
        #expect(throws: DeMoCodecError.unsupportedVersion(2)) { _ = try DeMoCodec.decode(patched(4, [2]), plan: plan) }
        #expect(throws: DeMoCodecError.unknownFormat(9)) { _ = try DeMoCodec.decode(patched(5, [9]), plan: plan) }
        #expect(throws: DeMoCodecError.unknownFlags(1)) { _ = try DeMoCodec.decode(patched(6, [1]), plan: plan) }
        // Tensor count, chunk count and k far too large.
        #expect(throws: DeMoCodecError.invalidPayload(.tensorCount(expected: 6, got: -1 & 0xFFFF_FFFF))) {
            _ = try DeMoCodec.decode(patched(8, [0xFF, 0xFF, 0xFF, 0xFF]), plan: plan)
        }
        #expect(throws: DeMoCodecError.self) { _ = try DeMoCodec.decode(patched(12, [0xFF, 0xFF, 0xFF, 0x7F]), plan: plan) }
        #expect(throws: DeMoCodecError.self) { _ = try DeMoCodec.decode(patched(16, [0xFF, 0xFF, 0xFF, 0xFF]), plan: plan) }
        #expect(throws: DeMoCodecError.self) { _ = try DeMoCodec.decode([], plan: plan) }
    }

    /// Tensor 0 is [24] → chunks of 12, k = 4, 4-bit indices: its first chunk's indices are the two
    /// bytes at offset 24.
    @Test func hostileIndicesAndValues() throws {
        let (payload, plan) = try samplePayload(.f32)
        let good = try DeMoCodec.encode(payload, plan: plan)
        func patched(_ at: Int, _ b: [UInt8]) -> [UInt8] { var x = good; x.replaceSubrange(at..<(at + b.count), with: b); return x }
        #expect(plan.tensors[0].indexBits == 4)
        // index 15 >= totalk 12
        #expect(throws: DeMoCodecError.invalidPayload(.indexOutOfRange(tensor: "a", chunk: 0, index: 15, totalk: 12))) {
            _ = try DeMoCodec.decode(patched(24, [0x1F, 0x32]), plan: plan)
        }
        // duplicate (1, 1) and unsorted (2, 1)
        #expect(throws: DeMoCodecError.invalidPayload(.indicesNotAscending(tensor: "a", chunk: 0))) {
            _ = try DeMoCodec.decode(patched(24, [0x11, 0x32]), plan: plan)
        }
        #expect(throws: DeMoCodecError.invalidPayload(.indicesNotAscending(tensor: "a", chunk: 0))) {
            _ = try DeMoCodec.decode(patched(24, [0x12, 0x43]), plan: plan)
        }
        // NaN and Inf as f32 values (the first value follows the 2 index bytes).
        for bits: UInt32 in [0x7FC0_0000, 0x7F80_0000, 0xFF80_0000] {
            let le = (0..<4).map { UInt8((bits >> (8 * $0)) & 0xFF) }
            #expect(throws: DeMoCodecError.invalidPayload(.nonFiniteValue(tensor: "a", chunk: 0))) {
                _ = try DeMoCodec.decode(patched(26, le), plan: plan)
            }
        }
        // bf16 NaN, and a negative int8 scale.
        let (pb, _) = try samplePayload(.bf16)
        var b = try DeMoCodec.encode(pb, plan: plan); b[26] = 0xC0; b[27] = 0x7F
        #expect(throws: DeMoCodecError.invalidPayload(.nonFiniteValue(tensor: "a", chunk: 0))) { _ = try DeMoCodec.decode(b, plan: plan) }
        let (pi, _) = try samplePayload(.int8)
        var i8 = try DeMoCodec.encode(pi, plan: plan); i8[29] |= 0x80
        #expect(throws: DeMoCodecError.invalidPayload(.badScale(tensor: "a", chunk: 0))) { _ = try DeMoCodec.decode(i8, plan: plan) }
        // A payload for another plan is refused.
        let other = DeMoPlan(layout: testLayout, chunk: 8, topk: 4)
        #expect(throws: DeMoCodecError.self) { _ = try DeMoCodec.decode(good, plan: other) }
    }

    @Test func randomBytesNeverCrash() {
        let plan = DeMoPlan(layout: testLayout, chunk: 16, topk: 4)
        var rng = SeededRNG(seed: 0xDEC0DE)
        var accepted = 0
        for n in 0..<5000 {
            var bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n % 2 == 0 { bytes = Array("DeMo".utf8) + [1, UInt8(rng.next() % 4), 0, 0, 6, 0, 0, 0] + bytes }
            if decodeIsSafe(bytes, plan) { accepted += 1 }
        }
        #expect(accepted == 0, "random bytes should not form a full valid payload")
    }

    @Test(arguments: DeMoValueFormat.allCases)
    func randomMutationsNeverCrash(format: DeMoValueFormat) throws {
        let (payload, plan) = try samplePayload(format)
        let good = try DeMoCodec.encode(payload, plan: plan)
        var rng = SeededRNG(seed: 77 + UInt64(format.rawValue))
        var rejected = 0
        for _ in 0..<1500 {
            var b = good
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 4 {
                case 0: b[at] ^= UInt8(1 << (rng.next() % 8))
                case 1: b[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2: b.remove(at: at)
                default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
                if b.isEmpty { break }
            }
            if !decodeIsSafe(b, plan) { rejected += 1 }
        }
        #expect(rejected > 0)
    }
}

@Suite struct QuantisationTests {
    @Test func bf16RoundsToNearestEven() {
        #expect(BF16.float(BF16.bits(1.0)) == 1.0)
        #expect(BF16.float(BF16.bits(1 + 0x1p-8)) == 1.0)                  // tie → even (down)
        #expect(BF16.float(BF16.bits(1 + 3 * 0x1p-8)) == 1 + 0x1p-6)       // tie → even (up)
        #expect(BF16.float(BF16.bits(1 + 0x1p-8 + 0x1p-20)) == 1 + 0x1p-7) // above the tie → up
        #expect(BF16.float(BF16.bits(-2.5)) == -2.5)
        #expect(BF16.float(BF16.bits(.greatestFiniteMagnitude)).isFinite)   // never rounds to infinity
    }

    @Test func int8AndSignChunks() {
        var v: [Float] = [0.5, -1.27, 0.01, 0]
        let s = v.withUnsafeMutableBufferPointer { DeMoValueFormat.int8.quantize($0.baseAddress!, count: 4) }
        #expect(s == Float(1.27) / 127)
        #expect(v == [Float(50) * s, Float(-127) * s, Float(1) * s, 0])
        var w: [Float] = [0.5, -1.5, 1, -1]
        let m = w.withUnsafeMutableBufferPointer { DeMoValueFormat.sign.quantize($0.baseAddress!, count: 4) }
        #expect(m == 1)
        #expect(w == [1, -1, 1, -1])
    }
}
