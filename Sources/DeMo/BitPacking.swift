/// Little-endian byte writer with an LSB-first bit packer, for the DeMo codec.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }

    /// Packs `values` (each < 2^bits) LSB-first into ⌈count·bits/8⌉ bytes; padding bits are 0.
    /// `bits == 0` writes nothing.
    mutating func packed(_ values: UnsafePointer<UInt32>, count: Int, bits: Int) {
        if bits == 0 { return }
        var acc: UInt64 = 0
        var filled = 0
        for i in 0..<count {
            acc |= UInt64(values[i]) << UInt64(filled)
            filled += bits
            while filled >= 8 {
                bytes.append(UInt8(truncatingIfNeeded: acc))
                acc >>= 8
                filled -= 8
            }
        }
        if filled > 0 { bytes.append(UInt8(truncatingIfNeeded: acc)) }
    }
}

/// Bounds-checked little-endian reader. Every read checks the remaining length first and throws
/// `DeMoCodecError.truncated` instead of reading past the end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(DeMoCodecError) {
        guard n >= 0, n <= remaining else {
            throw .truncated(offset: offset, needed: n, available: remaining, reading: what())
        }
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(DeMoCodecError) -> UInt8 {
        try need(1, what())
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16(_ what: @autoclosure () -> String) throws(DeMoCodecError) -> UInt16 {
        try need(2, what())
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(DeMoCodecError) -> UInt32 {
        try need(4, what())
        defer { offset += 4 }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << UInt32(8 * i) }
        return v
    }

    mutating func f32(_ what: @autoclosure () -> String) throws(DeMoCodecError) -> Float {
        Float(bitPattern: try u32(what()))
    }

    /// Unpacks `count` values of `bits` bits (LSB-first) into `out`; the bits past the last value
    /// in the final byte must be zero (one canonical encoding per payload).
    mutating func unpacked(into out: UnsafeMutablePointer<UInt32>, count: Int, bits: Int,
                           _ what: @autoclosure () -> String) throws(DeMoCodecError) {
        if bits == 0 { for i in 0..<count { out[i] = 0 }; return }
        let nbytes = (count * bits + 7) / 8
        try need(nbytes, what())
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        var acc: UInt64 = 0
        var filled = 0
        var p = offset
        for i in 0..<count {
            while filled < bits {
                acc |= UInt64(bytes[p]) << UInt64(filled)
                p += 1
                filled += 8
            }
            out[i] = UInt32(acc & mask)
            acc >>= UInt64(bits)
            filled -= bits
        }
        if acc != 0 { throw .nonZeroPadding(offset: p - 1) }
        offset += nbytes
    }
}
