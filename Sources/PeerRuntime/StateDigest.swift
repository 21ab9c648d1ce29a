import Crypto

/// The digest peers compare and report for their replicated state: the first 64 bits
/// (little-endian) of SHA-256 over the state's bytes in a fixed order. 64 bits keep the wire
/// formats (heartbeats, UPDATE bases, catch-up end markers); SHA-256 makes it infeasible for a
/// donor to make up a different state with the digest the majority reports (a second preimage
/// costs ~2^64 hashes), which the FNV digest used before allowed in one step (issue 16).
///
/// Cost: swift-crypto's SHA-256 (BoringSSL, SHA-NI where the CPU has it) runs at GB/s, a few ms
/// per step for `small` (0.8 M parameters; ×3 with AdamW's moments).
public enum StateDigest {
    /// Digest of `parts`, hashed one after another.
    public static func of(_ parts: [UnsafeRawBufferPointer]) -> UInt64 {
        var hasher = Crypto.SHA256()
        for p in parts { hasher.update(bufferPointer: p) }
        let bytes = Array(hasher.finalize())
        var d: UInt64 = 0
        for i in 0..<8 { d |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        return d
    }

    /// Digest of one Float buffer's exact bits.
    public static func of(_ values: UnsafeBufferPointer<Float>) -> UInt64 { of([UnsafeRawBufferPointer(values)]) }
}
