// COpenBLAS: OpenBLAS's CBLAS interface (Debian's libopenblas-dev). Only the Swift module Tensors imports it.
//
// Also a few small vector kernels for loops BLAS does not cover, compiled for AVX2 with target
// attributes (so the binary still runs on any x86-64: Tensors calls them only after
// murmur_cpu_has_avx2_fma() said yes, and uses Swift loops otherwise). None of them changes the
// arithmetic of its Swift counterpart: multiplies and adds stay separate (no contraction) unless a
// fused multiply-add is the specified operation, so results are bit-identical on every machine.
#ifndef MURMUR_COPENBLAS_SHIM_H
#define MURMUR_COPENBLAS_SHIM_H
#include <cblas.h>
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <cpuid.h>
#include <immintrin.h>

/// 1 when the CPU has AVX2 and FMA and the OS saves the YMM registers, else 0.
static inline int murmur_cpu_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!((c >> 12) & 1) || !((c >> 27) & 1) || !((c >> 28) & 1)) return 0; // FMA, OSXSAVE, AVX
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0; // XMM and YMM state enabled by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1; // AVX2
}

/// r[i] = fma(g[i], lr, r[i] * decay): one rounding for the multiply, one for the fused add, as
/// Swift's `(r * decay).addingProduct(g, lr)`.
__attribute__((target("avx2,fma")))
static inline void murmur_momentum_avx2(float *r, const float *g, float decay, float lr, long n) {
#pragma clang fp contract(off)
    const __m256 vd = _mm256_set1_ps(decay), vl = _mm256_set1_ps(lr);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(r + i), vd);
        _mm256_storeu_ps(r + i, _mm256_fmadd_ps(_mm256_loadu_ps(g + i), vl, x));
    }
    for (; i < n; i++) {
        __m128 x = _mm_mul_ss(_mm_set_ss(r[i]), _mm_set_ss(decay));
        r[i] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(g[i]), _mm_set_ss(lr), x));
    }
}

/// The first i in [0, n) with |x[i]| > t (compared as floats), or n.
__attribute__((target("avx2")))
static inline long murmur_first_abs_above_avx2(const float *x, long n, float t) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), vt = _mm256_set1_ps(t);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), mask);
        __m256 b = _mm256_and_ps(_mm256_loadu_ps(x + i + 8), mask);
        int m = _mm256_movemask_ps(_mm256_cmp_ps(a, vt, _CMP_GT_OQ))
              | (_mm256_movemask_ps(_mm256_cmp_ps(b, vt, _CMP_GT_OQ)) << 8);
        if (m) return i + __builtin_ctz((unsigned)m);
    }
    for (; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > t) return i;
    }
    return n;
}

/// max |x[i]| over i < n (0 for n = 0; NaNs are not propagated).
__attribute__((target("avx2")))
static inline float murmur_max_abs_avx2(const float *x, long n) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = m0;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(m0, _mm256_and_ps(_mm256_loadu_ps(x + i), mask));
        m1 = _mm256_max_ps(m1, _mm256_and_ps(_mm256_loadu_ps(x + i + 8), mask));
    }
    m0 = _mm256_max_ps(m0, m1);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) { float a = x[i] < 0 ? -x[i] : x[i]; if (a > r) r = a; }
    return r;
}

/// out[h*ld + w] = (((0 + cols[0][h]*rows[0][w]) + cols[1][h]*rows[1][w]) + ...) over `terms` terms,
/// for h < n1, w < n2: the sum of outer products col(g) ⊗ row(g), accumulated in g order with
/// separate multiplies and adds (AVX only, no FMA: the same bits as the scalar loop).
__attribute__((target("avx2")))
static inline void murmur_rank_update_avx2(float *out, long ld, long n1, long n2, long terms,
                                           const float *const *cols, const float *const *rows) {
#pragma clang fp contract(off)
    for (long h = 0; h < n1; h++) {
        float *o = out + h * ld;
        long w = 0;
        for (; w + 32 <= n2; w += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (long g = 0; g < terms; g++) {
                const __m256 s = _mm256_set1_ps(cols[g][h]);
                const float *r = rows[g] + w;
                a0 = _mm256_add_ps(a0, _mm256_mul_ps(s, _mm256_loadu_ps(r)));
                a1 = _mm256_add_ps(a1, _mm256_mul_ps(s, _mm256_loadu_ps(r + 8)));
                a2 = _mm256_add_ps(a2, _mm256_mul_ps(s, _mm256_loadu_ps(r + 16)));
                a3 = _mm256_add_ps(a3, _mm256_mul_ps(s, _mm256_loadu_ps(r + 24)));
            }
            _mm256_storeu_ps(o + w, a0); _mm256_storeu_ps(o + w + 8, a1);
            _mm256_storeu_ps(o + w + 16, a2); _mm256_storeu_ps(o + w + 24, a3);
        }
        for (; w + 8 <= n2; w += 8) {
            __m256 a0 = _mm256_setzero_ps();
            for (long g = 0; g < terms; g++)
                a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_set1_ps(cols[g][h]), _mm256_loadu_ps(rows[g] + w)));
            _mm256_storeu_ps(o + w, a0);
        }
        for (; w < n2; w++) {
            __m128 a = _mm_setzero_ps();
            for (long g = 0; g < terms; g++)
                a = _mm_add_ss(a, _mm_mul_ss(_mm_set_ss(cols[g][h]), _mm_set_ss(rows[g][w])));
            o[w] = _mm_cvtss_f32(a);
        }
    }
}
#else
static inline int murmur_cpu_has_avx2_fma(void) { return 0; }
static inline void murmur_momentum_avx2(float *r, const float *g, float decay, float lr, long n) {
    (void)r; (void)g; (void)decay; (void)lr; (void)n;
}
static inline long murmur_first_abs_above_avx2(const float *x, long n, float t) { (void)x; (void)t; return n; }
static inline float murmur_max_abs_avx2(const float *x, long n) { (void)x; (void)n; return 0; }
static inline void murmur_rank_update_avx2(float *out, long ld, long n1, long n2, long terms,
                                           const float *const *cols, const float *const *rows) {
    (void)out; (void)ld; (void)n1; (void)n2; (void)terms; (void)cols; (void)rows;
}
#endif
#endif
