// Launchers of MoBA's kernels (moba.cu): the full-sequence gate/top-k and block attention, and the
// decode gate over a paged cache's block means.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "attnscope/cancel.hpp"

namespace attnscope::cuda {

inline constexpr int kMobaMaxDv = 256;     // output accumulators per lane (8 x 32)
inline constexpr int kMobaMaxRanked = 32;  // top_k - 1 bound when ranking is needed

struct MobaArgs {
  const float* q = nullptr;      // [B, H, Lq, Dk]
  const float* k = nullptr;      // [B, Hkv, Lk, Dk]
  const float* v = nullptr;      // [B, Hkv, Lk, Dv]
  float* o = nullptr;            // [B, H, Lq, Dv]
  float* lse = nullptr;          // [B, H, Lq]
  int32_t* selection = nullptr;  // [B, H, Lq, top_k] ascending, -1 padded
  int B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, Dk = 0, Dv = 0;
  int block_size = 0, top_k = 0;
  float scale = 1.0f;
};
void moba_forward(const MobaArgs& a, cudaStream_t stream, const CancelToken& cancel);

// Decode selection: one warp per (sequence, head) gates q against the sequence's block means
// (means[b] points at [blocks][Hkv][Dk] on the device) and writes selection [B, H, top_k].
void launch_paged_moba_select(const float* q, const float* const* means, const int32_t* lengths,
                              int B, int H, int Hkv, int Dk, int block_size, int top_k,
                              int32_t* selection, cudaStream_t stream);

}  // namespace attnscope::cuda
