// Launchers of Gated DeltaNet's kernels (gated_delta.cu): the recurrent and the chunked form.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "attnscope/cancel.hpp"

namespace attnscope::cuda {

inline constexpr int kGatedDeltaMaxHeadDim = 256;  // Dk bound: 8 state values per lane (recurrent)
inline constexpr int kGatedDeltaMaxChunk = 64;     // chunk bound of the chunked kernel

struct GatedDeltaArgs {
  const float* q = nullptr;              // [B, H, L, Dk]
  const float* k = nullptr;              // [B, H, L, Dk]
  const float* v = nullptr;              // [B, H, L, Dv]
  const float* g = nullptr;              // [B, H, L] log decay
  const float* beta = nullptr;           // [B, H, L]
  const float* initial_state = nullptr;  // [B, H, Dk, Dv] or null (zeros)
  float* o = nullptr;                    // [B, H, L, Dv]
  float* final_state = nullptr;          // [B, H, Dk, Dv]
  int B = 0, H = 0, L = 0, Dk = 0, Dv = 0;
  float scale = 1.0f;
  bool qk_l2norm = false;
  bool recurrent = false;
  int chunk_size = 64;
};
size_t gated_delta_chunk_smem_bytes(int Dk, int chunk_size);
void gated_delta_forward(const GatedDeltaArgs& a, cudaStream_t stream, const CancelToken& cancel);

}  // namespace attnscope::cuda
