import Tensors

/// Wire codec of a `DeMoPayload` (the UPDATE body), little-endian, version 1:
///
/// ```
/// header   "DeMo" (4 bytes) | version u8 = 1 | format u8 | flags u16 = 0 | tensor count u32
/// tensor   chunk count u32 | k u32 | totalk u32
///          per chunk: k indices, ⌈log2(totalk)⌉ bits each (0 bits when totalk == 1), LSB-first,
///                     zero-padded to a byte
///                     values: f32 (4k B) | bf16 (2k B, round-to-nearest-even)
///                           | int8 (f32 scale + k B) | sign (f32 scale + ⌈k/8⌉ B, bit set = negative,
///                             zero-padded)
///                           | 2bit (f32 scale + ⌈k/4⌉ B, 2-bit codes LSB-first, zero-padded; codes
///                             0…3 = {-1.5, -0.5, +0.5, +1.5}·scale, all 2 under a zero scale)
/// ```
/// The per-tensor counts repeat the plan so a payload from a differently configured peer is
/// recognised as such. `decode` checks every field, length, index (range, strictly ascending per
/// chunk), value (finite, and only codes the encoder writes) and padding against the plan before
/// returning, so `encode(decode(bytes)) == bytes` for every accepted input, and rejects trailing
/// bytes; it never reads out of bounds and never traps on hostile input. Stateless, thread-safe.
public enum DeMoCodec {
    public static let magic: [UInt8] = Array("DeMo".utf8)
    public static let version: UInt8 = 1
    static let headerBytes = 12
    static let tensorHeaderBytes = 12

    /// Serialises `payload`, which must fit `plan` (see `DeMoPayload.validate`); values are written
    /// in `payload.format` (bf16 rounds f32 values; int8/sign use `payload.scales`).
    public static func encode(_ payload: DeMoPayload, plan: DeMoPlan) throws(DeMoCodecError) -> [UInt8] {
        do { try payload.validate(against: plan) } catch { throw .invalidPayload(error) }
        for tp in plan.tensors where tp.indexBits > 32 { throw .unsupportedPlan(tensor: tp.name) }
        let format = payload.format
        var w = ByteWriter(capacity: encodedSize(plan: plan, format: format))
        for b in magic { w.u8(b) }
        w.u8(version); w.u8(format.rawValue); w.u16(0)
        w.u32(UInt32(plan.tensors.count))
        for (tp, tpay) in zip(plan.tensors, payload.tensors) {
            w.u32(UInt32(tp.chunkCount)); w.u32(UInt32(tp.k)); w.u32(UInt32(tp.totalk))
            let k = tp.k
            tpay.indices.withUnsafeBufferPointer { ip in
                for c in 0..<tp.chunkCount {
                    w.packed(ip.baseAddress! + c * k, count: k, bits: tp.indexBits)
                    let vals = tpay.values[(c * k)..<((c + 1) * k)]
                    switch format {
                    case .f32: for v in vals { w.f32(v) }
                    case .bf16: for v in vals { w.u16(BF16.bits(v)) }
                    case .int8:
                        let s = tpay.scales[c]
                        w.f32(s)
                        for v in vals { w.u8(UInt8(bitPattern: Int8Quant.code(v, scale: s))) }
                    case .sign:
                        w.f32(tpay.scales[c])
                        var byte: UInt8 = 0, nbits = 0
                        for v in vals {
                            if v.sign == .minus { byte |= 1 << UInt8(nbits) }
                            nbits += 1
                            if nbits == 8 { w.u8(byte); byte = 0; nbits = 0 }
                        }
                        if nbits > 0 { w.u8(byte) }
                    case .twoBit:
                        let s = tpay.scales[c]
                        w.f32(s)
                        var byte: UInt8 = 0, nbits = 0
                        for v in vals {
                            byte |= TwoBitQuant.code(v, scale: s) << UInt8(nbits)
                            nbits += 2
                            if nbits == 8 { w.u8(byte); byte = 0; nbits = 0 }
                        }
                        if nbits > 0 { w.u8(byte) }
                    }
                }
            }
        }
        return w.bytes
    }

    /// Parses and fully validates an UPDATE body against the run's plan. Throws `DeMoCodecError`.
    public static func decode(_ bytes: [UInt8], plan: DeMoPlan) throws(DeMoCodecError) -> DeMoPayload {
        // Array.withUnsafeBytes is untyped-rethrows: carry the typed error out in a Result.
        let result: Result<DeMoPayload, DeMoCodecError> = bytes.withUnsafeBytes { raw in
            do throws(DeMoCodecError) { return .success(try decode(raw, plan: plan)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// `decode` over raw bytes (e.g. a ZeroMQ frame), without copying them first.
    public static func decode(_ raw: UnsafeRawBufferPointer, plan: DeMoPlan) throws(DeMoCodecError) -> DeMoPayload {
        var r = ByteReader(raw)
        try r.need(headerBytes, "header")
        for b in magic {
            let got = try r.u8("magic")
            if got != b { throw .badMagic }
        }
        let v = try r.u8("version")
        guard v == version else { throw .unsupportedVersion(v) }
        let fb = try r.u8("format")
        guard let format = DeMoValueFormat(rawValue: fb) else { throw .unknownFormat(fb) }
        let flags = try r.u16("flags")
        guard flags == 0 else { throw .unknownFlags(flags) }
        let nt = try r.u32("tensor count")
        guard Int(nt) == plan.tensors.count else {
            throw .invalidPayload(.tensorCount(expected: plan.tensors.count, got: Int(nt)))
        }
        var tensors: [DeMoTensorPayload] = []
        tensors.reserveCapacity(plan.tensors.count)
        for tp in plan.tensors {
            let cc = Int(try r.u32("chunk count of \(tp.name)"))
            let k = Int(try r.u32("k of \(tp.name)"))
            let totalk = Int(try r.u32("totalk of \(tp.name)"))
            guard cc == tp.chunkCount, k == tp.k, totalk == tp.totalk else {
                throw .invalidPayload(.shape(tensor: tp.name, expectedChunks: tp.chunkCount, expectedK: tp.k,
                                             gotChunks: cc, gotK: k))
            }
            guard tp.indexBits <= 32 else { throw .unsupportedPlan(tensor: tp.name) }
            // Check the whole tensor body fits before allocating anything sized by it.
            let perChunk = (k * tp.indexBits + 7) / 8 + format.valueBytes(k: k)
            try r.need(perChunk * cc, "body of \(tp.name)")
            var idx = [UInt32](repeating: 0, count: cc * k)
            var val = [Float](repeating: 0, count: cc * k)
            var scales: [Float] = []
            if format.hasChunkScale { scales.reserveCapacity(cc) }
            for c in 0..<cc {
                try idx.withUnsafeMutableBufferPointer { (ip) throws(DeMoCodecError) in
                    let p = ip.baseAddress! + c * k
                    try r.unpacked(into: p, count: k, bits: tp.indexBits, "indices of \(tp.name)")
                    for i in 0..<k {
                        guard Int(p[i]) < totalk else {
                            throw .invalidPayload(.indexOutOfRange(tensor: tp.name, chunk: c, index: Int(p[i]), totalk: totalk))
                        }
                        if i > 0 && p[i] <= p[i - 1] {
                            throw .invalidPayload(.indicesNotAscending(tensor: tp.name, chunk: c))
                        }
                    }
                }
                let base = c * k
                switch format {
                case .f32:
                    for i in 0..<k { val[base + i] = try r.f32("values of \(tp.name)") }
                case .bf16:
                    for i in 0..<k { val[base + i] = BF16.float(try r.u16("values of \(tp.name)")) }
                case .int8:
                    let s = try scale(&r, tp.name, c)
                    scales.append(s)
                    for i in 0..<k {
                        // Only codes the encoder can write: [-127, 127], and 0 under a zero scale.
                        let q = Int8(bitPattern: try r.u8("values of \(tp.name)"))
                        if q == -128 { throw .nonCanonical(offset: r.offset - 1, reason: "int8 code -128 (codes are -127…127)") }
                        if s == 0 && q != 0 { throw .nonCanonical(offset: r.offset - 1, reason: "non-zero int8 code under a zero chunk scale") }
                        val[base + i] = Float(q) * s
                    }
                case .sign:
                    let s = try scale(&r, tp.name, c)
                    scales.append(s)
                    var byte: UInt8 = 0
                    for i in 0..<k {
                        if i % 8 == 0 { byte = try r.u8("signs of \(tp.name)") }
                        val[base + i] = (byte >> UInt8(i % 8)) & 1 == 1 ? -s : s
                    }
                    if k % 8 != 0 && byte >> UInt8(k % 8) != 0 { throw .nonZeroPadding(offset: r.offset - 1) }
                case .twoBit:
                    let s = try scale(&r, tp.name, c)
                    // The encoder writes only zero or normal scales (a subnormal one would make
                    // 0.5·s round to a value that re-encodes differently).
                    guard s == 0 || s.isNormal else { throw .invalidPayload(.badScale(tensor: tp.name, chunk: c)) }
                    scales.append(s)
                    var byte: UInt8 = 0
                    for i in 0..<k {
                        if i % 4 == 0 { byte = try r.u8("2-bit codes of \(tp.name)") }
                        let q = (byte >> UInt8(2 * (i % 4))) & 3
                        if s == 0 && q != 2 { throw .nonCanonical(offset: r.offset - 1, reason: "2-bit code \(q) under a zero chunk scale (the encoder writes 2)") }
                        val[base + i] = TwoBitQuant.value(q, scale: s)
                    }
                    if k % 4 != 0 && byte >> UInt8(2 * (k % 4)) != 0 { throw .nonZeroPadding(offset: r.offset - 1) }
                }
                for i in base..<(base + k) where !val[i].isFinite {
                    throw .invalidPayload(.nonFiniteValue(tensor: tp.name, chunk: c))
                }
            }
            tensors.append(DeMoTensorPayload(chunkCount: cc, k: k, indices: idx, values: val, scales: scales))
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
        return DeMoPayload(format: format, tensors: tensors)
    }

    private static func scale(_ r: inout ByteReader, _ name: String, _ c: Int) throws(DeMoCodecError) -> Float {
        let s = try r.f32("scale of \(name)")
        // `sign == .plus` also refuses -0.0, which would decode to values the encoder never writes.
        guard s.isFinite, s.sign == .plus else { throw .invalidPayload(.badScale(tensor: name, chunk: c)) }
        return s
    }

    /// Exact encoded size in bytes of any payload for `plan` in `format`.
    public static func encodedSize(plan: DeMoPlan, format: DeMoValueFormat) -> Int {
        plan.tensors.reduce(headerBytes) { acc, tp in
            acc + tensorHeaderBytes + tp.chunkCount * ((tp.k * tp.indexBits + 7) / 8 + format.valueBytes(k: tp.k))
        }
    }

    /// Bytes per step of a run's layout and optimizer config.
    public static func accounting(layout: ParameterLayout, config: DeMoConfig) -> DeMoByteAccounting {
        accounting(plan: DeMoPlan(layout: layout, chunk: config.chunk, topk: config.topk), format: config.valueFormat)
    }

    /// Bytes per step for `plan`: real (this codec), the reference's accounting and dense fp32.
    public static func accounting(plan: DeMoPlan, format: DeMoValueFormat) -> DeMoByteAccounting {
        DeMoByteAccounting(realBytes: encodedSize(plan: plan, format: format),
                           referenceBytes: 12 * plan.sentCount,
                           denseFP32Bytes: 4 * plan.totalCount,
                           coefficients: plan.sentCount)
    }
}

/// Bytes one peer sends per step.
public struct DeMoByteAccounting: Sendable, Equatable, CustomStringConvertible {
    /// Size of the encoded UPDATE body (`DeMoCodec.encode`).
    public var realBytes: Int
    /// The reference's count: int64 index + f32 value = 12 bytes per transmitted coefficient.
    public var referenceBytes: Int
    /// Sending every parameter as fp32: 4 bytes per element.
    public var denseFP32Bytes: Int
    /// Transmitted coefficients.
    public var coefficients: Int

    public var description: String {
        "real \(realBytes) B, reference \(referenceBytes) B, dense fp32 \(denseFP32Bytes) B (\(coefficients) coefficients)"
    }
}

/// Why an UPDATE body was rejected. The message says what was wrong and where.
public enum DeMoCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(offset: Int, needed: Int, available: Int, reading: String)
    case badMagic
    case unsupportedVersion(UInt8)
    case unknownFormat(UInt8)
    case unknownFlags(UInt16)
    case nonZeroPadding(offset: Int)
    /// A value the encoder never writes (so one payload has exactly one encoding), e.g. int8 code -128.
    case nonCanonical(offset: Int, reason: String)
    case trailingBytes(Int)
    case unsupportedPlan(tensor: String)
    case invalidPayload(DeMoPayloadIssue)

    public var description: String {
        switch self {
        case .truncated(let o, let n, let a, let w):
            return "DeMo payload truncated at byte \(o) reading \(w): \(n) bytes needed, \(a) left"
        case .badMagic: return "not a DeMo payload (magic is not \"DeMo\")"
        case .unsupportedVersion(let v):
            return "DeMo payload version \(v) is not supported (this build reads \(DeMoCodec.version)): upgrade the older peer"
        case .unknownFormat(let f): return "unknown DeMo value format \(f)"
        case .unknownFlags(let f): return "unknown DeMo payload flags 0x\(String(f, radix: 16))"
        case .nonZeroPadding(let o): return "non-zero padding bits in byte \(o) of the DeMo payload"
        case .nonCanonical(let o, let why): return "non-canonical DeMo payload at byte \(o): \(why)"
        case .trailingBytes(let n): return "\(n) unexpected bytes after the DeMo payload"
        case .unsupportedPlan(let t): return "tensor \(t) has more than 2^32 coefficients per chunk: lower the chunk size"
        case .invalidPayload(let i): return "invalid DeMo payload: \(i)"
        }
    }
}
