// Decode's inner loops: a handful of query rows (a GQA group, ≤ 16) against a run of key/value
// rows. Memory-bound by design, so each K and V row is streamed from memory exactly once and the
// arithmetic must stay well under the time that stream takes.
//
// Scores: S(r, c) = q_r · k_c. K is row-major, so a key's dot product runs along its row; one key
// against up to 4 rows keeps 8 accumulators live and their 4 horizontal sums are folded together
// by lane shuffles (3.5 ops a dot instead of ~8 for a full reduction per dot). Values: O += P V
// with O's 2 × 128 block in 16 accumulators across the keys (one V load feeds 2 FMAs, but O is
// never reloaded), instead of an axpy per (row, key) that loads and stores O each time.
//
// Versions (flat decode, 32 query / 8 kv heads, D = 128, 2 threads, quiet 2-vCPU Zen 5 VM,
// `attnscope_cpu_bench --benchmark_filter='^decode/'`), % of the in-run triad:
//   v1  Eigen row dots and row axpys (run 3/4)                     72–73 %
//   v2  4 keys × 4 rows dot blocks, O in registers: faster in L2, slower from DRAM
//   v3  one key × 4 rows dots (K read front to back)              74–78 % at 32K, ~100 % at 4K
//   v4  + software prefetch 16 KiB (K) / 4 KiB (V) ahead: on Run 7's Intel Xeon VM, where v3 was
//       at 64–68 %, 83–91 % (flat) and 78–83 % (paged) at 32K/128K
#pragma once

#include <cstdint>

#include "backends/cpu/microkernel.hpp"

namespace attnscope::cpu {

#ifdef ATTNSCOPE_HAVE_MICROKERNEL

namespace few_rows_detail {

// Horizontal sums of four vectors, one per lane of the result.
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // 128-bit quarters: [A0 A1 A2 A3] + … → [A0+A2, A1+A3, B0+B2, B1+B3].
  const __m512 ab =
      _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd =
      _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  // → quarter i holds four partial sums of vector i.
  __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E));  // swap pairs within each quarter
  s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xB1));  // swap neighbours
  const __m512i first = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(first, s));
}

// Software prefetch of row `row` of a row-major array (its first `bytes` bytes) into L1. Callers
// prefetch only rows they were told are read next (Readahead), so the row is inside the array.
inline void prefetch_row(const float* base, int64_t row, int64_t ld, int64_t bytes) {
  const char* p = reinterpret_cast<const char*>(base + row * ld);
  const uintptr_t first = reinterpret_cast<uintptr_t>(p);
  for (uintptr_t a = first & ~uintptr_t(63); a < first + uintptr_t(bytes); a += 64)
    _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
}

// How far ahead the streams are prefetched, in rows: on the Xeon VM of Run 7 the hardware
// prefetchers alone left a decode step ~30 % slower than with a plain read of the same K rows;
// 16 KiB ahead for K and 4 KiB for V brought decode from ~66 % to 78–91 % of the triad. (Run 5
// tried 8–32 keys ahead on a Zen 5 VM and gained nothing; at 4K context, from L2, it is neutral.)
inline int64_t rows_ahead(int64_t bytes, int64_t ld) {
  const int64_t row = ld * int64_t(sizeof(float));
  return row >= bytes ? 1 : bytes / row;
}

inline __mmask16 tail_mask(int64_t d) {
  const int64_t rem = d % 16;
  return rem == 0 ? __mmask16(0) : __mmask16((1u << rem) - 1);
}

// One key × RB rows (RB ≤ 4) with two accumulators per row (2·RB independent FMA chains). The key
// row is read front to back, so K streams from memory as one sequential run. (A block of 4 keys ×
// 4 rows loads Q a quarter as often, but interleaves four rows 512 B apart; from DRAM that ran at
// half the speed — docs/benchmarks.md run 5.) The RB sums come out of one hsum4.
template <int RB, bool ACC>
inline void dots_key(const float* Q, int64_t q_ld, const float* K, int64_t d, float* S,
                     int64_t s_ld) {
  __m512 a0[4], a1[4];
#pragma GCC unroll 8
  for (int r = 0; r < 4; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= d; k += 32) {
    const __m512 k0 = _mm512_loadu_ps(K + k), k1 = _mm512_loadu_ps(K + k + 16);
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      a0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(Q + r * q_ld + k), k0, a0[r]);
      a1[r] = _mm512_fmadd_ps(_mm512_loadu_ps(Q + r * q_ld + k + 16), k1, a1[r]);
    }
  }
  for (; k < d; k += 16) {
    const __mmask16 m = d - k >= 16 ? __mmask16(0xFFFF) : tail_mask(d);
    const __m512 k0 = _mm512_maskz_loadu_ps(m, K + k);
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r)
      a0[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, Q + r * q_ld + k), k0, a0[r]);
  }
  alignas(16) float out[4];
  _mm_store_ps(out, hsum4(_mm512_add_ps(a0[0], a1[0]), _mm512_add_ps(a0[1], a1[1]),
                          _mm512_add_ps(a0[2], a1[2]), _mm512_add_ps(a0[3], a1[3])));
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r) S[r * s_ld] = ACC ? S[r * s_ld] + out[r] : out[r];
}

// While key c is dotted, row c + ahead is prefetched if it is below `readable` (see Readahead).
template <int RB, bool ACC>
inline void dots_rows(const float* Q, int64_t q_ld, const float* K, int64_t k_ld, int64_t n,
                      int64_t d, float* S, int64_t s_ld, int64_t ahead, int64_t readable) {
  int64_t c = 0;
  for (; c < n && c + ahead < readable; ++c) {
    prefetch_row(K, c + ahead, k_ld, d * int64_t(sizeof(float)));
    dots_key<RB, ACC>(Q, q_ld, K + c * k_ld, d, S + c, s_ld);
  }
  for (; c < n; ++c) dots_key<RB, ACC>(Q, q_ld, K + c * k_ld, d, S + c, s_ld);
}

// O[RB × cols] += P[RB × n] V[n × cols], cols ≤ 16 CB (CB vectors of 16; unless FULL, the last
// one masked). FULL (cols == 16 CB, as for D = 128) has no masks at all: with a mask per vector
// GCC ran out of mask registers, reloading masks and spilling accumulators on every key.
template <int RB, int CB, bool FULL>
inline void pv_block(const float* P, int64_t p_ld, const float* V, int64_t v_ld, int64_t n,
                     float* O, int64_t o_ld, int64_t cols, int64_t ahead, int64_t readable) {
  const int64_t left = cols - 16 * (CB - 1);  // only the last vector can be partial
  const __mmask16 last = FULL || left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  auto load = [&](const float* p, int b) {
    return FULL || b < CB - 1 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(last, p);
  };
  __m512 acc[RB][CB];
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < CB; ++b) acc[r][b] = load(O + r * o_ld + 16 * b, b);
  for (int64_t c = 0; c < n; ++c) {
    if (c + ahead < readable) prefetch_row(V, c + ahead, v_ld, cols * int64_t(sizeof(float)));
    __m512 vv[CB];
#pragma GCC unroll 8
    for (int b = 0; b < CB; ++b) vv[b] = load(V + c * v_ld + 16 * b, b);
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      const __m512 p = _mm512_set1_ps(P[r * p_ld + c]);
#pragma GCC unroll 8
      for (int b = 0; b < CB; ++b) acc[r][b] = _mm512_fmadd_ps(p, vv[b], acc[r][b]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 8
    for (int b = 0; b < CB; ++b) {
      if (FULL || b < CB - 1) {
        _mm512_storeu_ps(O + r * o_ld + 16 * b, acc[r][b]);
      } else {
        _mm512_mask_storeu_ps(O + r * o_ld + 16 * b, last, acc[r][b]);
      }
    }
  }
}

// pv_block with as many 16-column vectors as `cols` needs (at most CB), picked at run time.
template <int RB, int CB>
inline void pv_block_fit(const float* P, int64_t p_ld, const float* V, int64_t v_ld, int64_t n,
                         float* O, int64_t o_ld, int64_t cols, int64_t ahead, int64_t readable) {
  if constexpr (CB > 1) {
    if (cols <= 16 * (CB - 1))
      return pv_block_fit<RB, CB - 1>(P, p_ld, V, v_ld, n, O, o_ld, cols, ahead, readable);
  }
  if (cols == 16 * CB)
    return pv_block<RB, CB, true>(P, p_ld, V, v_ld, n, O, o_ld, cols, ahead, readable);
  pv_block<RB, CB, false>(P, p_ld, V, v_ld, n, O, o_ld, cols, ahead, readable);
}

// Columns in chunks of up to 128 (a whole row for D = 128), so the first pass over a V tile reads
// each row front to back (the prefetchers see one sequential stream) and later row pairs find
// the tile in L2.
template <int RB>
inline void pv_rows(const float* P, int64_t p_ld, const float* V, int64_t v_ld, int64_t n,
                    int64_t dv, float* O, int64_t o_ld, int64_t ahead, int64_t readable) {
  for (int64_t j = 0; j < dv; j += 128) {
    pv_block_fit<RB, 8>(P, p_ld, V + j, v_ld, n, O + j, o_ld, dv - j < 128 ? dv - j : 128, ahead,
                        readable);
  }
}

}  // namespace few_rows_detail

// How many K (or V) rows, counted from a call's first, are read soon and worth prefetching: n for
// this call's rows alone, more where the rows after them are read next (the next tile of a
// contiguous head, the rest of a run of pages), 0 for no prefetch.
struct Readahead {
  int64_t rows = 0;
};

// S[r * s_ld + c] (+)= Q[r * q_ld + :d] · K[c * k_ld + :d] for r < rows, c < n; ACC adds (MLA's
// score is the sum over its latent and rotary key parts).
template <bool ACC = false>
inline void few_rows_dots(const float* Q, int64_t q_ld, int64_t rows, const float* K, int64_t k_ld,
                          int64_t n, int64_t d, float* S, int64_t s_ld, Readahead next = {}) {
  using namespace few_rows_detail;
  const int64_t ahead = rows_ahead(16384, k_ld);
  int64_t readable = next.rows;
  int64_t r = 0;
  // Only the first group of 4 rows streams K from memory; later groups find it in L2.
  for (; r + 4 <= rows; r += 4, readable = 0)
    dots_rows<4, ACC>(Q + r * q_ld, q_ld, K, k_ld, n, d, S + r * s_ld, s_ld, ahead, readable);
  const float* q = Q + r * q_ld;
  float* s = S + r * s_ld;
  switch (rows - r) {
    case 3:
      dots_rows<3, ACC>(q, q_ld, K, k_ld, n, d, s, s_ld, ahead, readable);
      break;
    case 2:
      dots_rows<2, ACC>(q, q_ld, K, k_ld, n, d, s, s_ld, ahead, readable);
      break;
    case 1:
      dots_rows<1, ACC>(q, q_ld, K, k_ld, n, d, s, s_ld, ahead, readable);
      break;
    default:
      break;
  }
}

// O[r * o_ld + :dv] += Σ_c P[r * p_ld + c] V[c * v_ld + :dv] for r < rows, c < n. Row pairs:
// 2 rows × 128 columns is 16 accumulators.
inline void few_rows_pv(const float* P, int64_t p_ld, int64_t rows, const float* V, int64_t v_ld,
                        int64_t n, int64_t dv, float* O, int64_t o_ld, Readahead next = {}) {
  using namespace few_rows_detail;
  const int64_t ahead = rows_ahead(4096, v_ld);
  int64_t readable = next.rows;
  int64_t r = 0;
  // Only the first row pair streams V from memory; later pairs find it in L2.
  for (; r + 2 <= rows; r += 2, readable = 0)
    pv_rows<2>(P + r * p_ld, p_ld, V, v_ld, n, dv, O + r * o_ld, o_ld, ahead, readable);
  if (r < rows) pv_rows<1>(P + r * p_ld, p_ld, V, v_ld, n, dv, O + r * o_ld, o_ld, ahead, readable);
}

#endif

}  // namespace attnscope::cpu
