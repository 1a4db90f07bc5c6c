#include "forward/weights.hpp"

#include <algorithm>

#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"

namespace attnscope::forward_detail {

namespace {

// The embedding table and learned positions are read a row per token straight from the mapped
// file; only the rest is widened. A tied head is the embedding under the lm_head role, widened.
bool widened_global(const TensorSpec& s) {
  return s.role != Role::embed && s.role != Role::positions;
}

int64_t fp32_size(const TensorSpec& s) {
  return checked_mul(shape_numel(s.shape), 4, "weight bytes");
}

// Caching when the widened weights take at most this share of the memory budget leaves the rest
// for activations, captures and the logits.
constexpr double kCacheShare = 0.4;

}  // namespace

WeightStore::WeightStore(const Checkpoint& checkpoint, WeightLayout layout)
    : checkpoint_(checkpoint), layout_(std::move(layout)) {
  int64_t globals = 0;
  for (const TensorSpec& s : layout_.globals) {
    if (widened_global(s)) globals = checked_add(globals, fp32_size(s), "weight bytes");
  }
  int64_t layers = 0, largest_layer = 0;
  for (const auto& layer : layout_.layers) {
    int64_t bytes = 0;
    for (const TensorSpec& s : layer) bytes = checked_add(bytes, fp32_size(s), "weight bytes");
    layers = checked_add(layers, bytes, "weight bytes");
    largest_layer = std::max(largest_layer, bytes);
  }
  cache_bytes_ = checked_add(globals, layers, "weight bytes");
  stream_bytes_ = checked_add(globals, largest_layer, "weight bytes");
  caching_ = double(cache_bytes_) <= kCacheShare * double(memory_budget_bytes());
}

int64_t WeightStore::forward_weight_bytes() const {
  return caching_ ? cache_bytes_ : stream_bytes_;
}

Tensor WeightStore::widen(const TensorSpec& spec) const {
  return checkpoint_.load(spec.name, spec.shape);
}

void WeightStore::build_cache() const {
  std::lock_guard lock(mutex_);
  if (built_) return;
  std::vector<Tensor> cache;
  WeightSet globals;
  std::vector<WeightSet> layers(layout_.layers.size());
  // Tensors are moved into `cache` as they are made; their data pointers stay put.
  cache.reserve(layout_.globals.size() + layout_.layers.size() * 32);
  for (const TensorSpec& s : layout_.globals) {
    if (!widened_global(s)) continue;
    cache.push_back(widen(s));
    globals.ptr[size_t(s.role)] = cache.back().data();
  }
  for (size_t i = 0; i < layout_.layers.size(); ++i) {
    for (const TensorSpec& s : layout_.layers[i]) {
      cache.push_back(widen(s));
      layers[i].ptr[size_t(s.role)] = cache.back().data();
    }
  }
  cache_ = std::move(cache);
  cached_globals_ = globals;
  cached_layers_ = std::move(layers);
  built_ = true;
}

WeightStore::Session WeightStore::session() const {
  Session s;
  s.store_ = this;
  if (caching_) {
    build_cache();
    s.globals_ = cached_globals_;
    s.widened_ = cache_bytes_;
    return s;
  }
  for (const TensorSpec& spec : layout_.globals) {
    if (!widened_global(spec)) continue;
    s.owned_.push_back(widen(spec));
    s.globals_.ptr[size_t(spec.role)] = s.owned_.back().data();
    s.widened_ += s.owned_.back().bytes();
  }
  return s;
}

const WeightSet& WeightStore::Session::layer(int64_t i) {
  const WeightStore& store = *store_;
  if (store.caching_) return store.cached_layers_[size_t(i)];
  const auto& specs = store.layout_.layers[size_t(i)];
  // Layers share shapes, so the scratch made for the first serves them all.
  const bool fresh = !scratch_made_;
  const size_t first = fresh ? owned_.size() : scratch_first_;
  scratch_first_ = first;
  scratch_made_ = true;
  for (size_t j = 0; j < specs.size(); ++j) {
    const TensorSpec& spec = specs[j];
    if (spec.shape.size() == 2) {
      if (fresh) owned_.emplace_back(spec.shape);
      Tensor& t = owned_[first + j];
      store.checkpoint_.load_rows(spec.name, 0, spec.shape[0], t.data());
      widened_ += t.bytes();
    } else {
      Tensor t = store.checkpoint_.load(spec.name, spec.shape);
      widened_ += t.bytes();
      if (fresh) {
        owned_.push_back(std::move(t));
      } else {
        owned_[first + j] = std::move(t);
      }
    }
    layer_.ptr[size_t(spec.role)] = owned_[first + j].data();
  }
  return layer_;
}

}  // namespace attnscope::forward_detail
