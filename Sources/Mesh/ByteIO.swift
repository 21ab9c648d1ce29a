/// The one little-endian byte writer of the wire formats: fixed-width integers and raw bytes.
///
/// Value type; append-only. Every wire encoder built since round protocol v2 uses it (older
/// encoders still have their own helpers and move over as they are touched).
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func put<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func put(bytes more: [UInt8]) { bytes.append(contentsOf: more) }
}

/// What a `ByteReader` found wrong: a field it could not read in full, or bytes left over.
public enum ByteReadError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(field: String)
    case trailing(bytes: Int)
    case outOfRange(field: String, value: UInt64)

    public var description: String {
        switch self {
        case .truncated(let f): return "message truncated in \(f)"
        case .trailing(let n): return "message has \(n) unexpected trailing bytes"
        case .outOfRange(let f, let v): return "\(f) = \(v) is out of range"
        }
    }
}

/// The one little-endian byte reader: every read checks the length first and throws a typed
/// error, so a decoder built on it cannot read past the end whatever the input.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    public mutating func get<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(ByteReadError) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw .truncated(field: field) }
        var v: T = 0
        for k in 0..<n { v |= T(truncatingIfNeeded: bytes[offset + k]) << (8 * k) }
        offset += n
        return v
    }

    /// Reads an unsigned integer and checks it against `limit` (inclusive) before it becomes an `Int`.
    public mutating func count<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, _ field: String, max limit: Int) throws(ByteReadError) -> Int {
        let v = try get(T.self, field)
        guard UInt64(v) <= UInt64(Swift.max(0, limit)) else { throw .outOfRange(field: field, value: UInt64(v)) }
        return Int(v)
    }

    public mutating func take(_ n: Int, _ field: String) throws(ByteReadError) -> [UInt8] {
        guard n >= 0, remaining >= n else { throw .truncated(field: field) }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    public func finish() throws(ByteReadError) { if remaining != 0 { throw .trailing(bytes: remaining) } }
}
