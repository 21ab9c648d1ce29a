/// What one peer transmits for one tensor in one step: `k` coefficients per chunk.
///
/// Flat arrays, chunk after chunk in the plan's chunk order: entries `[c·k, (c+1)·k)` belong to
/// chunk `c`. Indices are chunk-local flat coefficient indices (`b·n2 + d`), strictly ascending
/// within a chunk. Values are signed DCT coefficients (already quantized to the payload's format).
public struct DeMoTensorPayload: Sendable, Equatable {
    public var chunkCount: Int
    public var k: Int
    public var indices: [UInt32]
    public var values: [Float]
    /// One scale per chunk for `int8` and `sign` formats (see `DeMoValueFormat`), else empty.
    public var scales: [Float]

    public init(chunkCount: Int, k: Int, indices: [UInt32], values: [Float], scales: [Float] = []) {
        self.chunkCount = chunkCount
        self.k = k
        self.indices = indices
        self.values = values
        self.scales = scales
    }
}

/// One step's UPDATE body of one peer: a `DeMoTensorPayload` per tensor, in layout order.
public struct DeMoPayload: Sendable, Equatable {
    public var format: DeMoValueFormat
    public var tensors: [DeMoTensorPayload]

    public init(format: DeMoValueFormat, tensors: [DeMoTensorPayload]) {
        self.format = format
        self.tensors = tensors
    }

    /// Checks the payload against the plan every peer of the run shares: tensor count, chunk count,
    /// `k`, array lengths, indices in range and strictly ascending per chunk, finite values and
    /// scales. Call before using a payload received from another peer.
    public func validate(against plan: DeMoPlan) throws(DeMoPayloadIssue) {
        guard tensors.count == plan.tensors.count else {
            throw .tensorCount(expected: plan.tensors.count, got: tensors.count)
        }
        for (tp, pl) in zip(tensors, plan.tensors) {
            guard tp.chunkCount == pl.chunkCount, tp.k == pl.k else {
                throw .shape(tensor: pl.name, expectedChunks: pl.chunkCount, expectedK: pl.k,
                             gotChunks: tp.chunkCount, gotK: tp.k)
            }
            let n = pl.sentCount
            guard tp.indices.count == n, tp.values.count == n,
                  tp.scales.count == (format.hasChunkScale ? pl.chunkCount : 0) else {
                throw .arrayLength(tensor: pl.name)
            }
            let totalk = UInt32(pl.totalk)
            for c in 0..<pl.chunkCount {
                var prev: UInt32? = nil
                for i in (c * pl.k)..<((c + 1) * pl.k) {
                    let ix = tp.indices[i]
                    guard ix < totalk else {
                        throw .indexOutOfRange(tensor: pl.name, chunk: c, index: Int(ix), totalk: pl.totalk)
                    }
                    if let p = prev, ix <= p { throw .indicesNotAscending(tensor: pl.name, chunk: c) }
                    prev = ix
                    guard tp.values[i].isFinite else { throw .nonFiniteValue(tensor: pl.name, chunk: c) }
                }
            }
            for (c, s) in tp.scales.enumerated() where !(s.isFinite && s >= 0) {
                throw .badScale(tensor: pl.name, chunk: c)
            }
        }
    }
}

/// A peer's payload tagged with its peer index; `apply` sorts contributions by `peer`.
public struct DeMoContribution: Sendable, Equatable {
    public var peer: Int
    public var payload: DeMoPayload

    public init(peer: Int, payload: DeMoPayload) {
        self.peer = peer
        self.payload = payload
    }
}

/// Why a payload does not fit the run's plan.
public enum DeMoPayloadIssue: Error, Sendable, Equatable, CustomStringConvertible {
    case tensorCount(expected: Int, got: Int)
    case shape(tensor: String, expectedChunks: Int, expectedK: Int, gotChunks: Int, gotK: Int)
    case arrayLength(tensor: String)
    case indexOutOfRange(tensor: String, chunk: Int, index: Int, totalk: Int)
    case indicesNotAscending(tensor: String, chunk: Int)
    case nonFiniteValue(tensor: String, chunk: Int)
    case badScale(tensor: String, chunk: Int)

    public var description: String {
        switch self {
        case .tensorCount(let e, let g):
            return "payload has \(g) tensors, the layout has \(e): the sender runs another model or optimizer config"
        case .shape(let t, let ec, let ek, let gc, let gk):
            return "tensor \(t): payload has \(gc) chunks × k=\(gk), expected \(ec) × k=\(ek): check that all peers use the same topk/chunk"
        case .arrayLength(let t):
            return "tensor \(t): index/value/scale array lengths do not match chunks × k"
        case .indexOutOfRange(let t, let c, let i, let n):
            return "tensor \(t) chunk \(c): index \(i) is outside [0, \(n))"
        case .indicesNotAscending(let t, let c):
            return "tensor \(t) chunk \(c): indices are not strictly ascending (duplicate or unsorted)"
        case .nonFiniteValue(let t, let c):
            return "tensor \(t) chunk \(c): a value is NaN or infinite"
        case .badScale(let t, let c):
            return "tensor \(t) chunk \(c): the chunk scale is negative, NaN or infinite"
        }
    }
}
