/// How the transmitted DCT coefficient values are encoded on the wire.
///
/// * `f32`: exact, 4 bytes per value.
/// * `bf16`: the upper half of the float32, rounded to nearest even; 2 bytes per value.
/// * `int8`: per chunk, a float32 scale `s = max|v| / 127` and `q = round(v/s)` in [-127, 127];
///   value `= Float(q)·s`. 1 byte per value + 4 bytes per chunk.
/// * `sign`: per chunk, a float32 magnitude `s = mean|v|`, and 1 bit per value (set = negative);
///   value `= ±s`. ⌈k/8⌉ bytes + 4 bytes per chunk.
/// * `2bit`: per chunk, a float32 scale `s = mean|v|` (0 when that is subnormal or 1.5·s would
///   overflow) and a 2-bit code per value for four levels `{-1.5, -0.5, +0.5, +1.5}·s`: the sign,
///   and whether `|v| >= s`. ⌈k/4⌉ bytes + 4 bytes per chunk. Under a zero scale every code is 2
///   (value +0). The idea of a per-chunk scale and 4 levels is SparseLoCo's (arXiv 2508.15706);
///   the level set here is ours: it keeps the chunk's sign pattern and roughly its L1 mass.
///
/// Lossy formats are applied in `prepare` **before** the error feedback: a peer subtracts from its
/// residual, and later applies for itself, exactly the quantized values every other peer decodes.
/// The quantisation error therefore stays in the residual (it is sent later, not lost) and all
/// peers apply identical contributions.
public enum DeMoValueFormat: UInt8, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case bf16 = 1
    case int8 = 2
    case sign = 3
    case twoBit = 4

    /// Whether the format carries one float32 scale per chunk.
    public var hasChunkScale: Bool { self == .int8 || self == .sign || self == .twoBit }

    public var description: String {
        switch self {
        case .f32: return "f32"
        case .bf16: return "bf16"
        case .int8: return "int8"
        case .sign: return "sign"
        case .twoBit: return "2bit"
        }
    }

    /// Parses `f32`, `bf16`, `int8`, `sign`, `2bit` (as written in topology files).
    public init?(name: String) {
        guard let f = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = f
    }

    /// Bytes of one chunk's values (scale included) for `k` values.
    public func valueBytes(k: Int) -> Int {
        switch self {
        case .f32: return 4 * k
        case .bf16: return 2 * k
        case .int8: return 4 + k
        case .sign: return 4 + (k + 7) / 8
        case .twoBit: return 4 + (k + 3) / 4
        }
    }

    /// Replaces one chunk's `k` finite values by what a decoder will reconstruct, and returns the
    /// chunk scale (0 for formats without one). Deterministic; the decoder computes the same
    /// expressions (`Float(q) * s`, `±s`), so encode ∘ decode is exact on quantized values.
    @discardableResult
    public func quantize(_ v: UnsafeMutablePointer<Float>, count k: Int) -> Float {
        switch self {
        case .f32:
            return 0
        case .bf16:
            for i in 0..<k { v[i] = BF16.float(BF16.bits(v[i])) }
            return 0
        case .int8:
            var m: Float = 0
            for i in 0..<k { m = max(m, abs(v[i])) }
            let s = m / 127
            for i in 0..<k { v[i] = Float(Int8Quant.code(v[i], scale: s)) * s }
            return s
        case .sign:
            // Mean magnitude keeps the chunk's L1 mass; summed in Double so it is order-stable.
            var sum = 0.0
            for i in 0..<k { sum += Double(abs(v[i])) }
            let s = k > 0 ? Float(sum / Double(k)) : 0
            for i in 0..<k { v[i] = v[i].sign == .minus ? -s : s }
            return s
        case .twoBit:
            var sum = 0.0
            for i in 0..<k { sum += Double(abs(v[i])) }
            var s = k > 0 ? Float(sum / Double(k)) : 0
            // A scale the decoder refuses (subnormal) or whose top level overflows sends zeros; the
            // error feedback keeps what was not sent.
            if !s.isNormal || !(TwoBitQuant.levels[3] * s).isFinite { s = 0 }
            for i in 0..<k { v[i] = TwoBitQuant.value(TwoBitQuant.code(v[i], scale: s), scale: s) }
            return s
        }
    }
}

/// bfloat16 conversions.
enum BF16 {
    /// Round-to-nearest-even to the upper 16 bits. Finite inputs whose rounding would overflow
    /// to infinity are truncated instead, so a finite value never becomes infinite.
    @inline(__always)
    static func bits(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        let rounded = u &+ 0x7FFF &+ ((u >> 16) & 1)
        let r = UInt16(truncatingIfNeeded: rounded >> 16)
        if f.isFinite && !float(r).isFinite { return UInt16(truncatingIfNeeded: u >> 16) }
        return r
    }

    @inline(__always)
    static func float(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}

enum Int8Quant {
    /// `round(v / s)` clamped to [-127, 127]; 0 when `s == 0`.
    @inline(__always)
    static func code(_ v: Float, scale s: Float) -> Int8 {
        if s == 0 { return 0 }
        let q = (v / s).rounded(.toNearestOrEven)
        return Int8(max(-127, min(127, q)))
    }
}


/// The `2bit` value format's codes: 0…3 → `{-1.5, -0.5, +0.5, +1.5}·s`.
enum TwoBitQuant {
    static let levels: [Float] = [-1.5, -0.5, 0.5, 1.5]

    /// The code of `v` under scale `s`: 2 when `s == 0`; otherwise the sign (−0 counts as
    /// negative) and whether `|v| >= s`.
    @inline(__always)
    static func code(_ v: Float, scale s: Float) -> UInt8 {
        if s == 0 { return 2 }
        let big = abs(v) >= s
        return v.sign == .minus ? (big ? 0 : 1) : (big ? 3 : 2)
    }

    /// The value code `q` (0…3) stands for under scale `s`.
    @inline(__always)
    static func value(_ q: UInt8, scale s: Float) -> Float { levels[Int(q & 3)] * s }
}
