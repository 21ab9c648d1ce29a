/// Bodies of the catch-up messages (DESIGN §7), carried point-to-point over ROUTER/DEALER.
///
/// - request (`catchUpRequest`, header.step = first step wanted): `[want snapshot: u8]`
/// - replay (`catchUpReplay`, header.step = the step): `[count u16]` then per contribution
///   `[peer u16][length u32][engine body]`, in peer order
/// - snapshot (`catchUpSnapshot`, header.step = donor's last applied step):
///   `[chunk index u32][chunk count u32][bytes]`
/// - end (`catchUpEnd`, header.step = last step covered): `[digest u64][mode u8]`, mode 0 replay,
///   1 snapshot, 2 refused (the donor is not in a position to help)
///
/// Every decoder checks every count and length first and throws; nothing a donor sends can crash
/// the requester.
public enum CatchUpWire {
    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case truncated(what: String)
        case badPeer(Int)
        case trailing(Int)
        case badChunk(index: UInt32, count: UInt32)

        public var description: String {
            switch self {
            case .truncated(let w): return "catch-up message truncated in \(w)"
            case .badPeer(let p): return "catch-up replay names unknown peer \(p)"
            case .trailing(let n): return "catch-up message has \(n) unexpected trailing bytes"
            case .badChunk(let i, let c): return "snapshot chunk \(i) of \(c) is out of range"
            }
        }
    }

    public enum EndMode: UInt8, Sendable { case replay = 0, snapshot = 1, refused = 2 }

    static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    struct Reader {
        let b: [UInt8]
        var i = 0
        mutating func get<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(DecodeError) -> T {
            let n = MemoryLayout<T>.size
            guard b.count - i >= n else { throw .truncated(what: what) }
            var v: T = 0
            for k in 0..<n { v |= T(truncatingIfNeeded: b[i + k]) << (8 * k) }
            i += n
            return v
        }
        mutating func bytes(_ n: Int, _ what: String) throws(DecodeError) -> [UInt8] {
            guard n >= 0, b.count - i >= n else { throw .truncated(what: what) }
            defer { i += n }
            return Array(b[i..<(i + n)])
        }
        func finish() throws(DecodeError) { if i != b.count { throw .trailing(b.count - i) } }
    }

    public static func encodeReplay(_ contributions: [(peer: Int, body: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        put(UInt16(contributions.count), &out)
        for c in contributions {
            put(UInt16(c.peer), &out)
            put(UInt32(c.body.count), &out)
            out += c.body
        }
        return out
    }

    public static func decodeReplay(_ b: [UInt8], peerCount: Int) throws(DecodeError) -> [(peer: Int, body: [UInt8])] {
        var r = Reader(b: b)
        let n = Int(try r.get(UInt16.self, "count"))
        guard n <= peerCount else { throw .badPeer(n) }
        var out: [(peer: Int, body: [UInt8])] = []
        for _ in 0..<n {
            let p = Int(try r.get(UInt16.self, "peer"))
            guard p < peerCount else { throw .badPeer(p) }
            let len = Int(try r.get(UInt32.self, "length"))
            out.append((p, try r.bytes(len, "contribution")))
        }
        try r.finish()
        return out
    }

    public static func encodeChunk(index: Int, count: Int, _ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        put(UInt32(index), &out)
        put(UInt32(count), &out)
        out += bytes
        return out
    }

    public static func decodeChunk(_ b: [UInt8], maxChunks: Int = 1 << 20) throws(DecodeError) -> (index: Int, count: Int, bytes: [UInt8]) {
        var r = Reader(b: b)
        let i = try r.get(UInt32.self, "chunk index"), c = try r.get(UInt32.self, "chunk count")
        guard c > 0, i < c, c <= UInt32(maxChunks) else { throw .badChunk(index: i, count: c) }
        return (Int(i), Int(c), try r.bytes(b.count - 8, "chunk"))
    }

    public static func encodeEnd(digest: UInt64, mode: EndMode) -> [UInt8] {
        var out: [UInt8] = []
        put(digest, &out)
        out.append(mode.rawValue)
        return out
    }

    public static func decodeEnd(_ b: [UInt8]) throws(DecodeError) -> (digest: UInt64, mode: EndMode) {
        var r = Reader(b: b)
        let d = try r.get(UInt64.self, "digest")
        let m = try r.get(UInt8.self, "mode")
        try r.finish()
        return (d, EndMode(rawValue: m) ?? .refused)
    }

    /// Bytes the peer loop puts before the engine's UPDATE payload (`Contribution.encodeBody`).
    public static let updatePrefix = Contribution.prefixSize
}

/// The contributions a peer applied for its last `capacity` steps, so a rejoining or lagging peer
/// can replay them and land on exactly the same parameters (the parameters are a deterministic
/// function of the applied stream). Bounded: older steps are forgotten.
public struct ReplayLog: Sendable {
    public let capacity: Int
    private var steps: [Int: [(peer: Int, body: [UInt8])]] = [:]

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public mutating func record(step: Int, _ contributions: [(peer: Int, body: [UInt8])]) {
        steps[step] = contributions
        if steps.count > capacity { steps = steps.filter { $0.key > step - capacity } }
    }

    /// Contributions of every step in `from...to`, or nil when any is no longer retained.
    public func range(_ from: Int, _ to: Int) -> [[(peer: Int, body: [UInt8])]]? {
        guard from <= to else { return [] }
        var out: [[(peer: Int, body: [UInt8])]] = []
        for s in from...to {
            guard let c = steps[s] else { return nil }
            out.append(c)
        }
        return out
    }

    public var oldest: Int? { steps.keys.min() }
}
