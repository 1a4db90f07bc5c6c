// An independent float64 forward pass of the tiny models, written straight from the
// architecture descriptions (docs/MODELS.md, transformers' modeling_llama / mistral / qwen2 /
// qwen3 / gpt2): plain loops over TinyModel::weights, nothing shared with the library under test.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fixture.hpp"

namespace attnscope::test {

// One layer's attention as the forward ran it (row-major, batch dropped).
struct ReferenceLayer {
  std::vector<double> q;    // [H, L, Dh] after q/k norm and RoPE
  std::vector<double> k;    // [Hkv, L, Dh] after q/k norm and RoPE
  std::vector<double> v;    // [Hkv, L, Dh]
  std::vector<double> o;    // [H, L, Dh] softmax(q k^T * scale) v over the visible keys
  std::vector<double> lse;  // [H, L] natural-log sum of exp(scaled scores) over visible keys
};

struct ReferenceResult {
  int64_t tokens = 0, vocab = 0, hidden_size = 0, heads = 0, kv_heads = 0, head_dim = 0;
  std::vector<double> hidden;  // [L, d] after the final norm
  std::vector<double> logits;  // [L, V]
  std::vector<double> nll;     // [L - 1]: -log softmax(logits[i])[ids[i + 1]]
  double perplexity = 0;       // exp(mean nll)
  std::vector<ReferenceLayer> layers;
};

// RoPE's inverse frequencies for `spec` (llama3 band rewrite applied), [head_dim / 2].
std::vector<double> reference_inv_freq(const TinyModelSpec& spec);

// The forward of `model` on `ids` in float64. Sliding window (mistral) from the spec.
ReferenceResult reference_forward(const TinyModel& model, std::span<const int32_t> ids);

}  // namespace attnscope::test
