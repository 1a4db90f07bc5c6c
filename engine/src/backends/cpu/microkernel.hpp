// A small AVX-512 GEMM for the CPU attention tiles: C (+)= A B with an 8 x 32 register block
// (16 accumulators; B rows loaded once per k, A broadcast). A is addressed with separate row and
// k strides, so the tiles can compute Sᵀ = K Qᵀ straight from K rows and P V straight from Sᵀ.
//
// Versions (one thread, interleaved with Eigen 3.4 in one process, S plus O += P V at
// 256 x 256 x 128, on a shared 2-vCPU Zen 5 VM):
//   v1  C = A B with A row-major and B = Kᵀ: 1.3-1.9x Eigen in isolation, but K had to be
//       transposed per tile (or copied whole per call) and lost inside the flash tiles. Dropped.
//   v2  strided A, Sᵀ = K Qᵀ (only Q is packed, once per task): 1.45x Eigen in isolation.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#define ATTNSCOPE_HAVE_MICROKERNEL 1
#endif

namespace attnscope::cpu {

#ifdef ATTNSCOPE_HAVE_MICROKERNEL

// Load/store masks of the two 16-float halves of a row of `cols` <= 32 columns.
struct ColumnMasks {
  __mmask16 lo, hi;
};
inline ColumnMasks column_masks(int64_t cols) {
  return {cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1),
          cols >= 32   ? __mmask16(0xFFFF)
          : cols <= 16 ? __mmask16(0)
                       : __mmask16((1u << (cols - 16)) - 1)};
}

// C[ROWS x cols] (+)= A[ROWS x K] B[K x cols] for cols <= 32; A(r, k) = A[r * ars + k * aks].
template <int ROWS, bool ACC>
inline void microkernel(const float* A, int64_t ars, int64_t aks, const float* B, int64_t ldb,
                        int64_t K, float* C, int64_t ldc, int64_t cols) {
  const auto [m0, m1] = column_masks(cols);
  // Every loop over ROWS is unrolled by force: left as a loop (GCC 12 does so where the kernel is
  // not inlined), the accumulator arrays live on the stack and every FMA's result is stored back,
  // which halved the tiles' speed (perf annotate: a vmovaps to %rsp after each FMA).
  __m512 c0[ROWS], c1[ROWS];
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; ++r) {
    c0[r] = ACC ? _mm512_maskz_loadu_ps(m0, C + r * ldc) : _mm512_setzero_ps();
    c1[r] = ACC ? _mm512_maskz_loadu_ps(m1, C + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, B + k * ldb + 16);
    const float* a = A + k * aks;
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * ars]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1[r]);
  }
}

// The last (fewer than 8) rows of a row-blocked product, A and C pointing at them: the kernel
// instantiated for exactly that many rows.
template <bool ACC, int ROWS = 7>
inline void microkernel_tail(int64_t rows, const float* a, int64_t ars, int64_t aks, const float* B,
                             int64_t ldb, int64_t K, float* c, int64_t ldc, int64_t cols) {
  if constexpr (ROWS > 0) {
    if (rows == ROWS) return microkernel<ROWS, ACC>(a, ars, aks, B, ldb, K, c, ldc, cols);
    microkernel_tail<ACC, ROWS - 1>(rows, a, ars, aks, B, ldb, K, c, ldc, cols);
  }
}

// C[M x N] (+)= A[M x K] B[K x N]; A(r, k) = A[r * ars + k * aks], B and C row-major.
template <bool ACC>
inline void gemm_strided(const float* A, int64_t ars, int64_t aks, const float* B, int64_t ldb,
                         float* C, int64_t ldc, int64_t M, int64_t N, int64_t K) {
  for (int64_t j = 0; j < N; j += 32) {
    const int64_t cols = N - j < 32 ? N - j : 32;
    int64_t i = 0;
    for (; i + 8 <= M; i += 8) {
      microkernel<8, ACC>(A + i * ars, ars, aks, B + j, ldb, K, C + i * ldc + j, ldc, cols);
    }
    microkernel_tail<ACC>(M - i, A + i * ars, ars, aks, B + j, ldb, K, C + i * ldc + j, ldc, cols);
  }
}

// B[K x N] copied into panels of 32 columns, panel p at Bp + p * K * 32 with rows of 32 floats
// (the last panel's rows padded). Contiguous panels keep a kernel's B stream in few L1 sets.
inline void pack_b_panels(const float* B, int64_t ldb, int64_t K, int64_t N, float* Bp) {
  for (int64_t j = 0; j < N; j += 32) {
    const int64_t cols = N - j < 32 ? N - j : 32;
    const auto [m0, m1] = column_masks(cols);
    float* dst = Bp + j * K;
    for (int64_t k = 0; k < K; ++k) {
      _mm512_storeu_ps(dst + 32 * k, _mm512_maskz_loadu_ps(m0, B + k * ldb + j));
      _mm512_storeu_ps(dst + 32 * k + 16, _mm512_maskz_loadu_ps(m1, B + k * ldb + j + 16));
    }
  }
}

// C[M x N] += A[M x K] Bp, Bp from pack_b_panels; K is walked in chunks of kc so one chunk of a
// B panel (kc x 32 floats) and the A columns it meets stay in L1 across all of C's row blocks.
inline void gemm_packed_b(const float* A, int64_t ars, int64_t aks, const float* Bp, float* C,
                          int64_t ldc, int64_t M, int64_t N, int64_t K, int64_t kc) {
  for (int64_t k0 = 0; k0 < K; k0 += kc) {
    const int64_t kn = K - k0 < kc ? K - k0 : kc;
    for (int64_t j = 0; j < N; j += 32) {
      const int64_t cols = N - j < 32 ? N - j : 32;
      const float* b = Bp + j * K + 32 * k0;
      int64_t i = 0;
      for (; i + 8 <= M; i += 8) {
        microkernel<8, true>(A + i * ars + k0 * aks, ars, aks, b, 32, kn, C + i * ldc + j, ldc,
                             cols);
      }
      microkernel_tail<true>(M - i, A + i * ars + k0 * aks, ars, aks, b, 32, kn, C + i * ldc + j,
                             ldc, cols);
    }
  }
}

#endif

}  // namespace attnscope::cpu
