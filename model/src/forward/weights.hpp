// Weights as the forward reads them: fp32 pointers by role. When all widened weights fit
// comfortably in memory (<= 40% of the budget) they are widened once, on first use, and kept for
// every later forward; otherwise each layer is widened into one reusable scratch as the forward
// reaches it, so a 16-bit model larger than half of memory still runs (at the cost of widening
// every forward).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/tensor.hpp"
#include "checkpoint/layout.hpp"

namespace attnscope::forward_detail {

using checkpoint_detail::Role;
using checkpoint_detail::TensorSpec;
using checkpoint_detail::WeightLayout;

// One layer's (or the model-wide) weights: nullptr where the family has no such tensor.
struct WeightSet {
  std::array<const float*, static_cast<size_t>(Role::count)> ptr{};
  const float* operator[](Role r) const { return ptr[static_cast<size_t>(r)]; }
};

class WeightStore {
 public:
  // Decides between caching and streaming from the fp32 size and memory_budget_bytes().
  WeightStore(const Checkpoint& checkpoint, WeightLayout layout);

  const WeightLayout& layout() const { return layout_; }
  bool caching() const { return caching_; }
  // fp32 bytes a forward holds in widened weights: the whole cache, or when streaming the
  // model-wide tensors (LM head, final norm) plus one layer's scratch.
  int64_t forward_weight_bytes() const;

  // What one forward (or one lm_head call) reads weights through.
  class Session {
   public:
    // The final norm and LM head.
    const WeightSet& globals() const { return globals_; }
    // Layer i's weights; when streaming, widens them into the scratch (invalidating the previous
    // layer's pointers).
    const WeightSet& layer(int64_t i);
    // Bytes this session widened.
    int64_t widened_bytes() const { return widened_; }

   private:
    friend class WeightStore;
    const WeightStore* store_ = nullptr;
    WeightSet globals_;
    WeightSet layer_;
    std::vector<Tensor> owned_;  // streaming: the globals and the layer scratch
    int64_t widened_ = 0;
    bool scratch_made_ = false;
    size_t scratch_first_ = 0;  // owned_ index of the layer scratch's first tensor
  };
  // In caching mode the first session builds the cache; streaming sessions widen the globals now
  // and each layer when asked.
  Session session() const;

 private:
  void build_cache() const;
  Tensor widen(const TensorSpec& spec) const;

  Checkpoint checkpoint_;  // a shared handle
  WeightLayout layout_;
  bool caching_ = false;
  int64_t cache_bytes_ = 0;
  int64_t stream_bytes_ = 0;
  // The cache, built once under the mutex by the first session that needs it.
  mutable std::mutex mutex_;
  mutable bool built_ = false;
  mutable WeightSet cached_globals_;
  mutable std::vector<WeightSet> cached_layers_;
  mutable std::vector<Tensor> cache_;
};

}  // namespace attnscope::forward_detail
