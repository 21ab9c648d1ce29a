import Tensors

/// Per-chunk top-k selection by absolute value.
///
/// Order: larger `|v|` first; equal `|v|` (including `+0`/`-0`) → the lower flat index wins, so the
/// selection is a deterministic function of the coefficients (the reference's `torch.topk` breaks
/// ties arbitrarily). The selected indices are returned sorted ascending per chunk with their
/// signed values, which is the canonical order of the payload and the codec.
@_spi(DeMoInternals)
public enum TopK {
    /// Selects `plan.k` coefficients in each chunk of a tensor-layout coefficient array `e`
    /// (`plan.count` floats) and writes them chunk after chunk into `indices`/`values`
    /// (`plan.sentCount` entries each).
    public static func select(_ e: UnsafePointer<Float>, plan: DeMoTensorPlan,
                              indices: UnsafeMutablePointer<UInt32>, values: UnsafeMutablePointer<Float>) {
        let band = plan.chunkRows * plan.cols, perBand = plan.gridCols * plan.k
        for y in 0..<plan.gridRows {
            selectBand(e + y * band, plan: plan, indices: indices + y * perBand, values: values + y * perBand)
        }
    }

    /// `select` for the `gridCols` chunks of one band (`e` points at the band's first element;
    /// `gridCols · k` entries are written).
    public static func selectBand(_ e: UnsafePointer<Float>, plan: DeMoTensorPlan,
                                  indices: UnsafeMutablePointer<UInt32>, values: UnsafeMutablePointer<Float>) {
        let n1 = plan.chunkRows, n2 = plan.chunkCols, cols = plan.cols, k = plan.k
        var heapAbs = [Float](repeating: 0, count: k)
        var heapIdx = [Int](repeating: 0, count: k)
        var chunk = 0
        for x in 0..<plan.gridCols {
            let base = e + x * n2
            let outI = indices + chunk * k, outV = values + chunk * k
            if k == plan.totalk {
                // Everything is sent: no selection needed.
                for b in 0..<n1 { for d in 0..<n2 {
                    outI[b * n2 + d] = UInt32(b * n2 + d)
                    outV[b * n2 + d] = base[b * cols + d]
                } }
            } else {
                heapAbs.withUnsafeMutableBufferPointer { ha in
                    heapIdx.withUnsafeMutableBufferPointer { hi in
                        selectChunk(base, n1: n1, n2: n2, ld: cols, k: k, heapAbs: ha.baseAddress!,
                                    heapIdx: hi.baseAddress!)
                        hi.sort()  // the payload keeps indices ascending per chunk
                        for i in 0..<k {
                            let f = hi[i]
                            outI[i] = UInt32(f)
                            outV[i] = base[(f / n2) * cols + f % n2]
                        }
                    }
                }
            }
            chunk += 1
        }
    }

    /// True when candidate (a, ia) ranks below (b, ib): smaller magnitude, or equal magnitude and
    /// larger index.
    @inline(__always)
    static func worse(_ a: Float, _ ia: Int, _ b: Float, _ ib: Int) -> Bool {
        a < b || (a == b && ia > ib)
    }

    /// Min-heap (root = the worst kept candidate) over one chunk scanned in ascending flat index.
    /// Because the scan is ascending, a later element with the same magnitude as the root is always
    /// worse, so a strict `>` test suffices to admit a new candidate.
    static func selectChunk(_ base: UnsafePointer<Float>, n1: Int, n2: Int, ld: Int, k: Int,
                            heapAbs: UnsafeMutablePointer<Float>, heapIdx: UnsafeMutablePointer<Int>) {
        var filled = 0
        @inline(__always) func offer(_ a: Float, _ f: Int) {
            if filled < k {
                heapAbs[filled] = a; heapIdx[filled] = f
                siftUp(filled, heapAbs, heapIdx)
                filled += 1
            } else if a > heapAbs[0] {
                heapAbs[0] = a; heapIdx[0] = f
                siftDown(k, heapAbs, heapIdx)
            }
        }
        // A floor no selected element can be below: the k-th largest of the row maxima (k rows
        // hold an element at least that large, so anything smaller ranks below k others). Only
        // elements at or above it are offered, in ascending index order as before, so the heap
        // sees the same winners and ties; it just does far fewer insertions.
        var skipBelowOrAt = -Float.infinity  // offer only |x| > this
        if n1 >= k && k <= 64 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n1) { rm in
                for b in 0..<n1 { rm[b] = VectorKernels.maxAbs(base + b * ld, count: n2) }
                let t0 = kthLargest(rm.baseAddress!, n1, k)
                skipBelowOrAt = t0 > 0 ? t0.nextDown : -Float.infinity
            }
        }
        for b in 0..<n1 {
            let row = base + b * ld
            var d = 0
            while d < n2 && filled < k {
                d += VectorKernels.firstAbsAbove(row + d, count: n2 - d, skipBelowOrAt)
                if d == n2 { break }
                offer(abs(row[d]), b * n2 + d); d += 1
            }
            // Once the heap is full almost every element loses to the root: skip straight to the
            // next one that beats it (the skipped ones would all have been rejected by `offer`).
            while d < n2 {
                d += VectorKernels.firstAbsAbove(row + d, count: n2 - d, heapAbs[0])
                if d == n2 { break }
                offer(abs(row[d]), b * n2 + d)
                d += 1
            }
        }
    }

    /// The k-th largest of `v[0..<n]` (1 ≤ k ≤ n), by insertion into a small descending list.
    static func kthLargest(_ v: UnsafeMutablePointer<Float>, _ n: Int, _ k: Int) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: k) { top in
            var count = 0
            for i in 0..<n {
                let x = v[i]
                if count == k && x <= top[k - 1] { continue }
                var j = count == k ? k - 1 : count
                if count < k { count += 1 }
                while j > 0 && top[j - 1] < x { top[j] = top[j - 1]; j -= 1 }
                top[j] = x
            }
            return top[k - 1]
        }
    }

    @inline(__always)
    static func siftUp(_ start: Int, _ ha: UnsafeMutablePointer<Float>, _ hi: UnsafeMutablePointer<Int>) {
        var i = start
        while i > 0 {
            let p = (i - 1) / 2
            if worse(ha[i], hi[i], ha[p], hi[p]) {
                ha.swapAt(i, p, hi); i = p
            } else { break }
        }
    }

    @inline(__always)
    static func siftDown(_ n: Int, _ ha: UnsafeMutablePointer<Float>, _ hi: UnsafeMutablePointer<Int>) {
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && worse(ha[l], hi[l], ha[m], hi[m]) { m = l }
            if r < n && worse(ha[r], hi[r], ha[m], hi[m]) { m = r }
            if m == i { return }
            ha.swapAt(i, m, hi); i = m
        }
    }
}

private extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always)
    func swapAt(_ i: Int, _ j: Int, _ idx: UnsafeMutablePointer<Int>) {
        let a = self[i]; self[i] = self[j]; self[j] = a
        let t = idx[i]; idx[i] = idx[j]; idx[j] = t
    }
}
