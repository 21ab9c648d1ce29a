import COpenBLAS

/// Whether a matrix operand of `BLAS.sgemm` is used as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed
}

/// The one Swift entry point to OpenBLAS. Every matrix is row-major `Float` storage.
///
/// Threading: OpenBLAS runs its own thread pool; `setThreads` changes it process-wide. Calls are
/// safe from any thread as long as the buffers they write are not shared.
public enum BLAS {
    /// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, all row-major.
    ///
    /// `lda`, `ldb`, `ldc` are the row strides (in elements) of the matrices *as stored*:
    /// A is stored m×k (or k×m when transposed), B is stored k×n (or n×k when transposed).
    /// Zero-sized products are a no-op apart from scaling C by beta.
    @inlinable
    public static func sgemm(
        _ transA: Transpose = .none, _ transB: Transpose = .none,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension")
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS implementations disagree on k == 0; define it: C = beta·C.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transA == .none ? CblasNoTrans : CblasTrans,
            transB == .none ? CblasNoTrans : CblasTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Number of threads OpenBLAS uses for one call (process-wide).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// Threads OpenBLAS is configured to use.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
