/// Element types of the safetensors format (the header's `dtype` strings).
public enum SafeTensorsDType: String, Sendable, CaseIterable, Codable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor: name, dtype, row-major shape and its raw little-endian bytes.
public struct SafeTensor: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// `elementCount × dtype.byteSize` bytes, little-endian (the writer checks the length).
    public var bytes: [UInt8]

    /// Product of `shape` (1 for a scalar `[]`).
    public var elementCount: Int { shape.reduce(1, *) }

    public init(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// An F32 tensor from `values` in row-major order.
    public init<C: Collection>(name: String, shape: [Int], floats values: C) where C.Element == Float {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        self.init(name: name, dtype: .f32, shape: shape, bytes: bytes)
    }

    /// An I32 tensor from `values` in row-major order.
    public init<C: Collection>(name: String, shape: [Int], int32s values: C) where C.Element == Int32 {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * 4, as: Int32.self) }
        }
        self.init(name: name, dtype: .i32, shape: shape, bytes: bytes)
    }

    /// The values as `Float`: F32 as is, F64 narrowed, F16/BF16 widened; other dtypes throw `wrongDType`.
    public func floats() throws -> [Float] {
        switch dtype {
        case .f32: return load(UInt32.self) { Float(bitPattern: $0) }
        case .f64: return load(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .bf16: return load(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .f16: return load(UInt16.self) { halfToFloat($0) }
        default: throw SafeTensorsError.wrongDType(tensor: name, expected: "F32", actual: dtype.rawValue)
        }
    }

    /// The values as `Int32`: I32 as is, I64 when every value fits; other dtypes throw `wrongDType`.
    public func int32s() throws -> [Int32] {
        switch dtype {
        case .i32: return load(UInt32.self) { Int32(bitPattern: $0) }
        case .i64:
            let wide = load(UInt64.self) { Int64(bitPattern: $0) }
            guard wide.allSatisfy({ $0 >= Int64(Int32.min) && $0 <= Int64(Int32.max) }) else {
                throw SafeTensorsError.wrongDType(tensor: name, expected: "I32", actual: "I64 outside the Int32 range")
            }
            return wide.map { Int32($0) }
        default: throw SafeTensorsError.wrongDType(tensor: name, expected: "I32", actual: dtype.rawValue)
        }
    }

    private func load<W: FixedWidthInteger, R>(_: W.Type, _ convert: (W) -> R) -> [R] {
        let size = MemoryLayout<W>.size
        let n = bytes.count / size
        return bytes.withUnsafeBytes { raw in
            (0..<n).map { convert(W(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * size, as: W.self))) }
        }
    }
}

/// IEEE binary16 → binary32, without relying on `Float16` (unavailable on some x86 toolchains).
func halfToFloat(_ h: UInt16) -> Float {
    let sign: Float = (h & 0x8000) != 0 ? -1 : 1
    let exp = Int((h >> 10) & 0x1F)
    let frac = Float(h & 0x3FF)
    if exp == 0 { return sign * frac * 0x1p-24 }
    if exp == 31 { return frac == 0 ? sign * .infinity : .nan }
    return sign * (1 + frac / 1024) * Float(sign: .plus, exponent: exp - 15, significand: 1)
}
