// Model's private state, shared by the files that implement it (loading, the forward).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "attnscope/model.hpp"
#include "forward/weights.hpp"

namespace attnscope {

struct Model::Impl {
  Checkpoint checkpoint;
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<forward_detail::WeightStore> weights;
  std::vector<float> inv_freq;  // RoPE (not GPT-2), fp32 as transformers builds it
};

}  // namespace attnscope
