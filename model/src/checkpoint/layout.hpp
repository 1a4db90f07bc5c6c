// The tensors a config.json implies: every weight the forward reads, by role, with the name the
// family's checkpoints use and the shape the config's sizes give it. The checkpoint checks stored
// dtypes against it at open, the model checks presence and shapes at load, the forward reads
// weights through it by role, so the three never disagree about names.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope::checkpoint_detail {

enum class Role {
  // model-wide
  embed,            // [V, d]
  positions,        // gpt2 wpe [n_positions, d]
  final_norm,       // [d]
  final_norm_bias,  // gpt2 ln_f.bias [d]
  lm_head,          // [V, d]; the embedding's name when tied
  // per layer
  in_norm,
  in_norm_bias,  // gpt2 ln_1.bias
  q,             // nn.Linear [H*Dh, d]
  q_bias,
  k,  // [Hkv*Dh, d]
  k_bias,
  v,
  v_bias,
  qkv,  // gpt2 c_attn, Conv1D [d, 3d] (y = x W + b)
  qkv_bias,
  o,  // llama [d, H*Dh] (nn.Linear); gpt2 c_proj [d, d] (Conv1D)
  o_bias,
  q_norm,  // qwen3 [Dh]
  k_norm,
  post_norm,
  post_norm_bias,  // gpt2 ln_2.bias
  gate,            // [I, d]
  gate_bias,
  up,  // llama [I, d]; gpt2 c_fc Conv1D [d, I]
  up_bias,
  down,  // llama [d, I]; gpt2 mlp.c_proj Conv1D [I, d]
  down_bias,
  count
};

struct TensorSpec {
  Role role;
  std::string name;
  Shape shape;
};

struct WeightLayout {
  std::vector<TensorSpec> globals;
  std::vector<std::vector<TensorSpec>> layers;
  // Conv1D weights (GPT-2) are stored [in, out]: y = x W. nn.Linear ones [out, in]: y = x Wᵀ.
  bool conv1d = false;

  // nullptr when the family has no such tensor.
  const TensorSpec* global(Role role) const;
  const TensorSpec* layer(int64_t index, Role role) const;
  // Every spec, globals first; a tied head appears once (as the embedding).
  std::vector<const TensorSpec*> all() const;
};

// The layout of `config`. `has` tells which names the checkpoint holds: GPT-2 files name their
// tensors with or without the "transformer." prefix, and the layout uses whichever is there.
WeightLayout weight_layout(const ModelConfig& config,
                           const std::function<bool(std::string_view)>& has);

}  // namespace attnscope::checkpoint_detail
