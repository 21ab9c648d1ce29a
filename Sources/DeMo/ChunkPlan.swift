import Tensors

/// The chunk rule of the reference (`_get_smaller_split`): the largest divisor of `n` that is
/// `<= target`, and `n` itself when `n <= target`.
///
/// A prime `n > target` therefore gives 1 (no compression for that dimension), exactly as the
/// reference does. `n` and `target` must be >= 1.
public func demoChunkSize(_ n: Int, target: Int) -> Int {
    precondition(n >= 1 && target >= 1, "demoChunkSize: n and target must be >= 1")
    if n <= target { return n }
    // Walk the divisor pairs (d, n/d) with d <= sqrt(n): the answer is either a small divisor d
    // or a large co-divisor n/d, whichever is the largest one still <= target.
    var best = 1
    var d = 1
    while d * d <= n {
        if n % d == 0 {
            if d <= target { best = max(best, d) }
            let q = n / d
            if q <= target { best = max(best, q) }
        }
        d += 1
    }
    return best
}

/// How one tensor is cut into chunks, transformed and sparsified.
///
/// Every tensor is handled as a 2-D matrix `rows × cols` cut into `chunkRows × chunkCols` chunks:
/// * 1-D `[L]` → `1 × L` with chunks `1 × chunk(L)` (the 1-D reference transform, since the DCT of
///   size 1 is the identity and the flat index `b*n2 + d` reduces to `d`);
/// * 2-D `[R, C]` → chunks `chunk(R) × chunk(C)`, as the reference;
/// * 3-D and more `[d0, d1, …]` → `d0 × (d1·d2·…)`, chunked per size value. The reference crashes
///   on these; reshaping is the documented extension of this port;
/// * 0-D (a scalar, `shape == []`) → `1 × 1`.
///
/// Chunks are ordered row-major over the chunk grid (`y` over `gridRows`, then `x` over
/// `gridCols`), as the reference's `[Y, X, …]` layout. Within a chunk the flat coefficient index
/// is `b * chunkCols + d` (`b` = row frequency, `d` = column frequency), in `[0, totalk)`.
public struct DeMoTensorPlan: Sendable, Hashable {
    /// Tensor name (from the layout).
    public let name: String
    /// The tensor's own shape.
    public let shape: [Int]
    /// First element of this tensor in the flat buffer.
    public let offset: Int
    /// 2-D view used for the transform.
    public let rows: Int
    public let cols: Int
    /// Chunk size along rows (`n1`) and columns (`n2`).
    public let chunkRows: Int
    public let chunkCols: Int
    /// Coefficients sent per chunk: `clamp(topk, 1, totalk)`.
    public let k: Int

    /// Creates the plan of one tensor for a target chunk size and a requested top-k.
    public init(name: String, shape: [Int], offset: Int, targetChunk: Int, topk: Int) {
        precondition(targetChunk >= 1, "targetChunk must be >= 1")
        self.name = name
        self.shape = shape
        self.offset = offset
        switch shape.count {
        case 0:
            rows = 1; cols = 1
        case 1:
            rows = 1; cols = shape[0]
        default:
            rows = shape[0]; cols = shape.dropFirst().reduce(1, *)
        }
        precondition(rows >= 1 && cols >= 1, "tensor \(name) has an empty dimension")
        chunkRows = shape.count <= 1 ? 1 : demoChunkSize(rows, target: targetChunk)
        chunkCols = demoChunkSize(cols, target: targetChunk)
        k = min(max(topk, 1), chunkRows * chunkCols)
    }

    /// Number of elements.
    public var count: Int { rows * cols }
    /// Element range in the flat buffer.
    public var range: Range<Int> { offset..<(offset + count) }
    /// Chunk grid: `gridRows` (Y) × `gridCols` (X).
    public var gridRows: Int { rows / chunkRows }
    public var gridCols: Int { cols / chunkCols }
    /// Number of chunks.
    public var chunkCount: Int { gridRows * gridCols }
    /// Coefficients per chunk (`n1·n2`).
    public var totalk: Int { chunkRows * chunkCols }
    /// Coefficients this tensor sends per step.
    public var sentCount: Int { chunkCount * k }
    /// Bits per packed index: `ceil(log2(totalk))`, 0 when `totalk == 1`.
    public var indexBits: Int { totalk <= 1 ? 0 : Int.bitWidth - (totalk - 1).leadingZeroBitCount }
    /// Per-dimension chunk sizes as the reference reports them (`[n1]` for 1-D, `[n1, n2]` for
    /// 2-D, `[chunk(d0), chunk(d1·…)]` for 3-D+, `[]` for a scalar).
    public var referenceChunk: [Int] {
        switch shape.count {
        case 0: return []
        case 1: return [chunkCols]
        default: return [chunkRows, chunkCols]
        }
    }
}

/// The chunk plan of a whole `ParameterLayout`: one `DeMoTensorPlan` per slot, in layout order.
///
/// Depends only on the shapes, the target chunk and top-k, so every peer of a run computes the same
/// plan; the codec uses it to check that a payload has the expected shape.
public struct DeMoPlan: Sendable, Hashable {
    public let tensors: [DeMoTensorPlan]
    /// Total number of elements of the layout.
    public let totalCount: Int
    public let targetChunk: Int
    public let topk: Int

    public init(layout: ParameterLayout, chunk: Int, topk: Int) {
        precondition(chunk >= 1 && topk >= 1, "DeMoPlan: chunk and topk must be >= 1")
        tensors = layout.slots.map {
            DeMoTensorPlan(name: $0.name, shape: $0.shape, offset: $0.offset, targetChunk: chunk, topk: topk)
        }
        totalCount = layout.totalCount
        self.targetChunk = chunk
        self.topk = topk
    }

    /// Coefficients sent per step over the whole layout.
    public var sentCount: Int { tensors.reduce(0) { $0 + $1.sentCount } }
    /// Distinct chunk sizes used by the plan (both dimensions).
    public var chunkSizes: Set<Int> {
        var s = Set<Int>()
        for t in tensors { s.insert(t.chunkRows); s.insert(t.chunkCols) }
        return s
    }
}
