/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, one byte at a time.
///
/// Chosen over CRC-32 (IEEE) for its better error detection on long messages; check value:
/// `CRC32C.checksum("123456789".utf8) == 0xE3069283`.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
        return crc
    }

    /// CRC-32C of `bytes`.
    public static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        finish(update(start, bytes))
    }

    /// Running state before any byte; feed with `update`, close with `finish`.
    public static let start: UInt32 = 0xFFFF_FFFF

    /// Feeds `bytes` into a running CRC state (for bodies spread over several buffers).
    public static func update<S: Sequence>(_ state: UInt32, _ bytes: S) -> UInt32 where S.Element == UInt8 {
        var crc = state
        table.withUnsafeBufferPointer { t in
            for byte in bytes {
                crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        return crc
    }

    /// The checksum of a running state.
    public static func finish(_ state: UInt32) -> UInt32 { state ^ 0xFFFF_FFFF }
}
