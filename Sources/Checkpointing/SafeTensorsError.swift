/// Why a safetensors file could not be read or written. Every malformed input maps to one of these;
/// the reader never traps on hostile bytes.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file ends before the 8-byte header length or the header.
    case truncated(expected: Int, actual: Int)
    /// The declared header length exceeds the format's bound (`SafeTensors.maxHeaderBytes`).
    case headerTooLarge(declared: UInt64)
    /// The header is not a UTF-8 JSON object of the expected form; `reason` says which part.
    case invalidHeader(reason: String)
    /// A tensor's dtype string is not one this reader knows.
    case unknownDType(tensor: String, dtype: String)
    /// A tensor's shape holds a negative or non-integer value, or its element count overflows.
    case invalidShape(tensor: String, shape: String)
    /// `data_offsets` are malformed (not two ordered non-negative integers).
    case invalidOffsets(tensor: String, reason: String)
    /// A tensor's byte range lies (partly) outside the data section.
    case offsetOutOfRange(tensor: String, end: Int, dataSize: Int)
    /// A tensor's byte range does not equal `product(shape) × dtype size`.
    case shapeMismatch(tensor: String, expectedBytes: Int, actualBytes: Int)
    /// Byte ranges overlap, leave a gap, or do not cover the data section exactly.
    case nonContiguous(tensor: String, reason: String)
    /// A requested tensor is not in the file.
    case missingTensor(String)
    /// A tensor exists but has a different dtype (or shape) than the caller asked for.
    case wrongDType(tensor: String, expected: String, actual: String)
    /// A tensor exists but its shape differs from the one the caller needs.
    case wrongShape(tensor: String, expected: [Int], actual: [Int])
    /// Writing: two tensors share a name, or a tensor's bytes disagree with its shape.
    case invalidTensor(name: String, reason: String)
    /// The file could not be read or written at all.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .truncated(let e, let a):
            return "safetensors: file truncated (needs at least \(e) bytes, has \(a)); re-copy or re-save the file"
        case .headerTooLarge(let n):
            return "safetensors: header length \(n) exceeds \(SafeTensors.maxHeaderBytes) bytes; the file is corrupt or not safetensors"
        case .invalidHeader(let r):
            return "safetensors: invalid JSON header (\(r)); the file is corrupt or not safetensors"
        case .unknownDType(let t, let d):
            return "safetensors: tensor '\(t)' has unsupported dtype '\(d)'"
        case .invalidShape(let t, let s):
            return "safetensors: tensor '\(t)' has invalid shape \(s)"
        case .invalidOffsets(let t, let r):
            return "safetensors: tensor '\(t)' has invalid data_offsets (\(r))"
        case .offsetOutOfRange(let t, let e, let n):
            return "safetensors: tensor '\(t)' ends at byte \(e) beyond the \(n)-byte data section; the file is truncated or corrupt"
        case .shapeMismatch(let t, let e, let a):
            return "safetensors: tensor '\(t)' shape needs \(e) bytes but its offsets span \(a)"
        case .nonContiguous(let t, let r):
            return "safetensors: tensor '\(t)': \(r); the file is corrupt"
        case .missingTensor(let n):
            return "safetensors: no tensor named '\(n)' in the file; check the checkpoint matches the model"
        case .wrongDType(let t, let e, let a):
            return "safetensors: tensor '\(t)' is \(a), expected \(e)"
        case .wrongShape(let t, let e, let a):
            return "safetensors: tensor '\(t)' has shape \(a), expected \(e); the checkpoint was made for a different model config"
        case .invalidTensor(let n, let r):
            return "safetensors: cannot write tensor '\(n)': \(r)"
        case .io(let p, let r):
            return "safetensors: cannot access \(p): \(r)"
        }
    }
}
