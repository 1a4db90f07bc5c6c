// Device helpers shared by the attention kernels: warp reductions, the visibility rule of
// attnscope::KeyMask, and the online-softmax / log-sum-exp merge arithmetic.
#pragma once

#include <cuda_runtime.h>

#include "launchers.hpp"

namespace attnscope::cuda {

inline constexpr unsigned kFullMask = 0xffffffffu;
// -inf usable in host and device code alike (CUDART_INF_F is device-only).
#define ATTNSCOPE_NEG_INF (-__builtin_inff())

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(kFullMask, x, off);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, off));
  return x;
}

// The same rule as KeyMask::visible (engine/include/attnscope/mask.hpp): query row i sits at key
// position p = i + offset; causal hides j > p; a window keeps p - window < j, sinks keep j < sinks.
__device__ __forceinline__ bool key_visible(const DeviceMask& m, int64_t i, int64_t j) {
  if (!m.causal) return true;
  const int64_t pos = i + m.offset;
  if (j > pos) return false;
  if (m.window <= 0) return true;
  return j > pos - m.window || j < m.sinks;
}

// Rescale factor exp(m_old - m_new) of the online softmax (Milakov & Gimelshein 2018;
// FlashAttention 2, Dao 2023). m_old = -inf (nothing seen yet) gives 0, never NaN, because m_new is
// finite here.
__device__ __forceinline__ float rescale(float m_old, float m_new) {
  return m_old == ATTNSCOPE_NEG_INF ? 0.0f : expf(m_old - m_new);
}

// Weights of two partial results (lse_a, lse_b) in their union, by log-sum-exp. Both -inf (no key
// seen by either part) gives weights 0 and lse -inf, so the merged row stays o = 0, lse = -inf.
struct LseMerge {
  float wa, wb, lse;
};
__device__ __forceinline__ LseMerge lse_merge(float lse_a, float lse_b) {
  const float m = fmaxf(lse_a, lse_b);
  if (m == ATTNSCOPE_NEG_INF) return {0.0f, 0.0f, ATTNSCOPE_NEG_INF};
  const float ea = lse_a == ATTNSCOPE_NEG_INF ? 0.0f : expf(lse_a - m);
  const float eb = lse_b == ATTNSCOPE_NEG_INF ? 0.0f : expf(lse_b - m);
  const float sum = ea + eb;
  return {ea / sum, eb / sum, m + logf(sum)};
}

}  // namespace attnscope::cuda
