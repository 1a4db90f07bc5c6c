// Tiled online-softmax attention on the CPU (FlashAttention's algorithm): never the Lq x Lk matrix,
// the query heads of a GQA group share every K/V tile, masked-out tiles are skipped whole.
#pragma once

#include <cstdint>
#include <memory>

#include "attnscope/cancel.hpp"
#include "attnscope/map_pyramid.hpp"
#include "attnscope/mask.hpp"

namespace attnscope::cpu {

// Row-major tensors with explicit row strides, so MLA can pass its latent cache as both K and V.
struct FlashArgs {
  const float* q = nullptr;  // [B, H, Lq, Dk], rows q_ld apart
  const float* k = nullptr;  // [B, Hkv, Lk, Dk], rows k_ld apart
  const float* v = nullptr;  // [B, Hkv, Lk, Dv], rows v_ld apart
  float* o = nullptr;        // [B, H, Lq, Dv] contiguous
  float* lse = nullptr;      // [B, H, Lq]
  int64_t B = 1, H = 1, Hkv = 1, Lq = 0, Lk = 0, Dk = 0, Dv = 0;
  int64_t q_ld = 0, k_ld = 0, v_ld = 0;  // 0 = dense (Dk, Dk, Dv)
  // Distance between consecutive (batch, kv head) blocks of K and V, in floats (0 = Lk * ld).
  int64_t k_head_stride = 0, v_head_stride = 0;
  KeyMask mask;
  float scale = 1.0f;
  int threads = 1;
  PyramidRequest pyramid;  // pool P into the map overview while the tiles exist (cells > 0)
};

// Writes o and lse; returns the map pyramid when one was asked for and the plan allows it (not
// when the key range is split across tasks: then no task sees a row's final lse alone).
std::shared_ptr<const MapPyramid> flash_attention(const FlashArgs& args, const CancelToken& cancel);

}  // namespace attnscope::cpu
