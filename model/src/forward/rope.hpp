// Rotary position embedding as transformers applies it (rotate_half: the first and second half
// of each head are the pair, not interleaved neighbours).
//
// transformers builds the angles in float32: inv_freq = 1 / theta^(2i/Dh) in fp32, rewritten by
// llama3 scaling in fp32, angle = float(pos) * inv_freq as one fp32 product. At position 2000 an
// fp32 angle is off the exact one by up to ~1e-4 rad, as much as the logit tolerance we promise,
// so the table repeats their fp32 steps instead of using ModelConfig::rope_inv_freq()'s exact
// doubles.
#pragma once

#include <cstdint>
#include <vector>

#include "attnscope/checkpoint.hpp"

namespace attnscope::forward_detail {

// inv_freq [Dh / 2] computed step by step in fp32 as transformers' rope init functions do.
std::vector<float> rope_inv_freq_fp32(const ModelConfig& config);

// cos and sin [L, Dh / 2] for positions 0..L-1: fp32 angle, cos/sin rounded to fp32.
struct RopeTable {
  int64_t half = 0;
  std::vector<float> cos, sin;
};
RopeTable rope_table(const std::vector<float>& inv_freq, int64_t tokens);

// Rotates every head of x [L, heads * Dh] in place: x' = x cos + rotate_half(x) sin.
void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const RopeTable& t);

}  // namespace attnscope::forward_detail
