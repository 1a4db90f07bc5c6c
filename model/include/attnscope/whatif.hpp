// What if this model used another attention? The model's own per-layer q, k, v go through a
// registered softmax variant (SWA with sinks, MoBA, ...) instead of dense attention, in every layer
// or a range, and the answer is measured against dense on the same text (docs/models.md):
//   - perplexity with the variant vs dense (mean next-token NLL over positions 0..L-2),
//   - mean KL(dense || variant) of the next-token distributions over all L positions,
//   - per (layer, head), on that layer's own dense-forward q, k, v: the recall of the dense
//     attention mass (the share of each query's dense probability that falls on keys the variant
//     lets it see, averaged over queries) and the relative error of the attention output.
// Training-free: no weight changes, the same text, two forwards.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attnscope/cancel.hpp"
#include "attnscope/model.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {

// Variants that can replace a layer's dense attention on its own q, k, v: softmax maps over the
// q/k/v input family that run causally, dense itself excluded (swa, moba, ...).
std::vector<const VariantInfo*> what_if_variants();
std::string what_if_variant_names();  // "swa, moba"

struct WhatIfRequest {
  // The variant and its knobs (window, sinks, block_size, top_k, ...); the shape, mask and scale
  // are each layer's own.
  AttentionProblem variant;
  int64_t first_layer = 0;  // replaced layers: [first_layer, last_layer], 0-based
  int64_t last_layer = -1;  // -1: the last layer
  std::string backend = "cpu";
  CancelToken cancel;  // progress: the dense forward is the first half, the variant's the rest
  int64_t memory_budget = 0;  // as ForwardOptions::memory_budget
  // Called like ForwardOptions::observe during the forward with the variant in place.
  std::function<void(int64_t layer, const LayerAttention&)> observe;
  // The model's own forward on these ids with every layer captured (ForwardOptions::capture), run
  // on `backend`: when given it stands in for the dense forward, so a sweep of a knob runs one
  // forward per point instead of two. Checked against the ids and the model's layer count.
  std::shared_ptr<const ForwardResult> dense;
};

struct WhatIfLayer {
  int64_t layer = 0;
  std::vector<double> recall;        // [H]: mean over queries of the dense mass the variant sees
  std::vector<double> output_error;  // [H]: ||o_variant - o_dense||_F / ||o_dense||_F
  double mean_recall() const;
  double mean_output_error() const;
};

struct WhatIfReport {
  std::string variant;  // AttentionProblem::describe()-like line of the replacement
  int64_t tokens = 0;
  double ppl = 0;                   // with the variant in the chosen layers
  double ppl_dense = 0;             // the model as it is
  double kl_mean = 0;               // mean over positions of KL(dense || variant), nats
  std::vector<double> kl;           // [L] per position
  std::vector<WhatIfLayer> layers;  // the replaced layers, in order
  ForwardTimes dense_seconds, variant_seconds;
  Tensor hidden_dense, hidden;  // [L, d] final hidden states: Model::lm_head gives their logits
};

// Parses "a-b" or "a" (0-based, inclusive) against `layers`; throws Error naming --layers.
std::pair<int64_t, int64_t> parse_layer_range(const std::string& text, int64_t layers);

// Checks the request (a what-if variant, a valid layer range, knobs the variant accepts at this
// length) before any forward runs; throws Error with the reason.
void check_what_if(const Model& model, std::span<const int32_t> ids, const WhatIfRequest& request);

// Runs the two forwards and measures. Throws Error / Cancelled like Model::forward.
WhatIfReport what_if(const Model& model, std::span<const int32_t> ids,
                     const WhatIfRequest& request);

}  // namespace attnscope
