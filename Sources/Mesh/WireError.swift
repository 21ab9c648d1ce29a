/// Why a received frame was refused. Every field is checked before the body is touched;
/// a refused frame is counted and dropped, never trusted, never a crash.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The multipart message does not have the `[topic][header][body]` shape.
    case badFrameCount(Int)
    /// A fourth frame that is not a 64-byte signature.
    case badSignatureLength(Int)
    /// The header frame is not exactly `MessageHeader.size` bytes.
    case badHeaderLength(Int)
    case badMagic([UInt8])
    /// A format version this build does not speak (peers must run the same release).
    case unsupportedVersion(UInt8)
    case unknownKind(UInt8)
    /// Flag bits this version does not define, or a non-zero reserved field.
    case unknownFlags(UInt16)
    /// The message belongs to another run (different name, model or optimizer settings).
    case wrongRunID(expected: UInt64, actual: UInt64)
    case originOutOfRange(origin: PeerIndex, peerCount: Int)
    /// The body is larger than this peer accepts.
    case oversized(declared: UInt32, limit: Int)
    case bodyLengthMismatch(declared: UInt32, actual: Int)
    case crcMismatch(declared: UInt32, actual: UInt32)
    /// The topic frame does not match the header (kind or origin) or is malformed.
    case badTopic([UInt8])

    public var description: String {
        switch self {
        case .badFrameCount(let n): return "expected 3 frames [topic][header][body] (4 with [signature]), got \(n)"
        case .badSignatureLength(let n): return "signature frame is \(n) bytes, expected \(Envelope.signatureSize)"
        case .badHeaderLength(let n): return "header is \(n) bytes, expected \(MessageHeader.size)"
        case .badMagic(let bytes): return "bad magic \(bytes.map { String($0, radix: 16) }) (not a Murmur message)"
        case .unsupportedVersion(let v): return "wire format version \(v) is not \(MessageHeader.version); run the same murmur release on every peer"
        case .unknownKind(let k): return "unknown message kind \(k)"
        case .unknownFlags(let f): return "unknown flag bits 0x\(String(f, radix: 16))"
        case let .wrongRunID(expected, actual):
            return "run id 0x\(String(actual, radix: 16)) is not this run's 0x\(String(expected, radix: 16)); the sender uses another topology (run name, model or optimizer differ)"
        case let .originOutOfRange(origin, count): return "origin peer index \(origin) out of range (\(count) peers)"
        case let .oversized(declared, limit): return "body of \(declared) bytes exceeds the limit of \(limit)"
        case let .bodyLengthMismatch(declared, actual): return "header declares \(declared) body bytes, frame has \(actual)"
        case let .crcMismatch(declared, actual):
            return "body CRC-32C 0x\(String(actual, radix: 16)) does not match the header's 0x\(String(declared, radix: 16)) (corrupted in transit)"
        case .badTopic(let bytes): return "topic \(bytes) does not match the header"
        }
    }
}
