import Foundation

/// A parsed safetensors file: tensors by name plus the `__metadata__` string map.
///
/// Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// `{"__metadata__": {..}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..}`
/// (possibly padded with trailing spaces), then the data section; offsets are relative to the data
/// section. Reading validates everything (header bound, every offset and length, shape products,
/// ranges tiling the data section exactly, as the reference implementation requires) and throws
/// `SafeTensorsError` instead of trapping. Value type, `Sendable`.
public struct SafeTensors: Sendable {
    /// Largest header accepted (the reference implementation's limit: 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// Tensors by name.
    public var tensors: [String: SafeTensor]
    /// The `__metadata__` map (empty when absent).
    public var metadata: [String: String]

    /// Tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    public init(tensors: [SafeTensor], metadata: [String: String] = [:]) {
        self.tensors = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.metadata = metadata
    }

    /// Reads and validates the file at `url`.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafeTensorsError.io(path: url.path, reason: error.localizedDescription)
        }
        try self.init(data: data)
    }

    /// Parses and validates `data` (a whole file).
    public init(data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw SafeTensorsError.truncated(expected: 8, actual: bytes.count) }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(Self.maxHeaderBytes) else { throw SafeTensorsError.headerTooLarge(declared: n) }
        let headerLen = Int(n)
        guard bytes.count >= 8 + headerLen else {
            throw SafeTensorsError.truncated(expected: 8 + headerLen, actual: bytes.count)
        }
        let header = Array(bytes[8..<(8 + headerLen)])
        guard header.first == UInt8(ascii: "{") else { throw SafeTensorsError.invalidHeader(reason: "does not start with '{'") }
        guard String(validating: header, as: UTF8.self) != nil else {
            throw SafeTensorsError.invalidHeader(reason: "not UTF-8")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(header)) } catch {
            throw SafeTensorsError.invalidHeader(reason: "not JSON")
        }
        guard let dict = object as? [String: Any] else { throw SafeTensorsError.invalidHeader(reason: "not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: SafeTensorsDType, shape: [Int], begin: Int, end: Int)] = []
        let dataSize = bytes.count - 8 - headerLen
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw SafeTensorsError.invalidHeader(reason: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw SafeTensorsError.invalidHeader(reason: "__metadata__['\(k)'] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            // The writer refuses empty names, so the reader does too: every file read can be written back.
            guard !name.isEmpty else { throw SafeTensorsError.invalidHeader(reason: "a tensor has an empty name") }
            guard let info = value as? [String: Any] else { throw SafeTensorsError.invalidHeader(reason: "entry '\(name)' is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw SafeTensorsError.invalidHeader(reason: "entry '\(name)' has no dtype string") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw SafeTensorsError.unknownDType(tensor: name, dtype: dtypeName) }
            guard let rawShape = info["shape"] as? [Any] else { throw SafeTensorsError.invalidHeader(reason: "entry '\(name)' has no shape array") }
            var shape: [Int] = []
            var count = 1
            for d in rawShape {
                guard let v = Self.exactInt(d), v >= 0 else { throw SafeTensorsError.invalidShape(tensor: name, shape: "\(rawShape)") }
                let (p, overflow) = count.multipliedReportingOverflow(by: v)
                guard !overflow else { throw SafeTensorsError.invalidShape(tensor: name, shape: "\(rawShape) (element count overflows)") }
                shape.append(v)
                count = p
            }
            guard let offs = info["data_offsets"] as? [Any], offs.count == 2,
                  let begin = Self.exactInt(offs[0]), let end = Self.exactInt(offs[1]) else {
                throw SafeTensorsError.invalidOffsets(tensor: name, reason: "expected [begin, end] integers")
            }
            guard begin >= 0, end >= begin else { throw SafeTensorsError.invalidOffsets(tensor: name, reason: "[\(begin), \(end)] is not ordered and non-negative") }
            guard end <= dataSize else { throw SafeTensorsError.offsetOutOfRange(tensor: name, end: end, dataSize: dataSize) }
            let (need, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, need == end - begin else {
                throw SafeTensorsError.shapeMismatch(tensor: name, expectedBytes: overflow ? Int.max : need, actualBytes: end - begin)
            }
            entries.append((name, dtype, shape, begin, end))
        }
        // Ranges must tile the data section: sorted by start, each begins where the previous ended.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        for e in entries {
            if e.begin < cursor { throw SafeTensorsError.nonContiguous(tensor: e.name, reason: "byte range \(e.begin)..<\(e.end) overlaps the previous tensor") }
            if e.begin > cursor { throw SafeTensorsError.nonContiguous(tensor: e.name, reason: "gap of \(e.begin - cursor) bytes before it") }
            cursor = e.end
        }
        if cursor != dataSize {
            throw SafeTensorsError.nonContiguous(tensor: entries.last?.name ?? "<none>", reason: "\(dataSize - cursor) bytes after the last tensor are not described by the header")
        }
        let base = 8 + headerLen
        var tensors: [String: SafeTensor] = [:]
        for e in entries {
            tensors[e.name] = SafeTensor(name: e.name, dtype: e.dtype, shape: e.shape,
                                         bytes: Array(bytes[(base + e.begin)..<(base + e.end)]))
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// A JSON number that is exactly an integer (rejects 1.5, 1e300; Foundation cannot tell `true` from 1).
    private static func exactInt(_ any: Any) -> Int? {
        guard let n = any as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return n.intValue
    }

    /// The tensor called `name`, or `missingTensor`.
    public func tensor(_ name: String) throws -> SafeTensor {
        guard let t = tensors[name] else { throw SafeTensorsError.missingTensor(name) }
        return t
    }

    /// The values of tensor `name` as `Float` (see `SafeTensor.floats()`).
    public func floats(_ name: String) throws -> [Float] { try tensor(name).floats() }

    /// The values of tensor `name` as `Int32` (see `SafeTensor.int32s()`).
    public func int32s(_ name: String) throws -> [Int32] { try tensor(name).int32s() }
}
