// The forward's elementwise and per-row steps, each computed the way transformers computes it in
// float32 (same formula, same order of the rounding steps), so our activations track theirs to
// fp32 rounding rather than to an approximation. Row loops run on the engine's thread pool.
#pragma once

#include <cstdint>
#include <functional>

#include "attnscope/tensor.hpp"

namespace attnscope::forward_detail {

// fn(r0, r1) over row blocks of [0, rows), on the pool when rows x cols is large enough to pay
// for waking it. Blocks write disjoint rows, so results do not depend on the thread count.
void for_rows(int64_t rows, int64_t cols, const std::function<void(int64_t, int64_t)>& fn);

// out[r] = w * (x[r] * rsqrt(mean(x[r]^2) + eps)) over `cols`-wide rows (LlamaRMSNorm).
// x and out may alias.
void rms_norm(const float* x, float* out, int64_t rows, int64_t cols, const float* weight,
              double eps);
// LayerNorm with weight and bias, biased variance (torch.nn.LayerNorm).
void layer_norm(const float* x, float* out, int64_t rows, int64_t cols, const float* weight,
                const float* bias, double eps);

// Per-head RMSNorm of x [L, heads * Dh] with weight [Dh] (qwen3's q_norm / k_norm).
void head_rms_norm(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const float* weight,
                   double eps);

// gate = silu(gate) * up, elementwise over n values.
void silu_mul(float* gate, const float* up, int64_t rows, int64_t cols);
// x = gelu_new(x) (tanh approximation) or gelu(x) (erf) in place.
void gelu(float* x, int64_t rows, int64_t cols, bool tanh_approximation);
// y[r] += bias over rows.
void add_bias(float* y, int64_t rows, int64_t cols, const float* bias);

// Columns [col0, col0 + heads * Dh) of src [L, stride] as a head-major [1, heads, L, Dh] tensor,
// written into `reuse` when it has that many elements (a previous layer's, so no fresh pages).
Tensor to_heads(const float* src, int64_t tokens, int64_t stride, int64_t col0, int64_t heads,
                int64_t head_dim, Tensor reuse = {});
// [1, heads, L, Dh] back to token-major dst [L, heads * Dh].
void from_heads(const Tensor& src, float* dst);

}  // namespace attnscope::forward_detail
