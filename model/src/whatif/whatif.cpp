// The what-if measurement (whatif.hpp): a dense forward whose observer runs the variant on each
// replaced layer's own q, k, v (recall, output error), then a forward with the variant in those
// layers (perplexity), and the two next-token distributions compared row block by row block.
#include "attnscope/whatif.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>

#include "attnscope/error.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

namespace attnscope {

namespace {

// A knob that changes which keys a query sees (not a tensor width, not a form choice).
bool has_mask_knob(const VariantInfo& v) {
  return std::any_of(v.params.begin(), v.params.end(),
                     [](const ParamSpec& p) { return !p.shape && !p.form; });
}

// The replacement for one layer: the variant's knobs on the layer's own shape, mask and scale.
AttentionProblem replacement(const AttentionProblem& variant, const AttentionProblem& own) {
  AttentionProblem p = variant;
  p.shape = own.shape;
  p.causal = true;
  p.scale = own.effective_scale();
  p.precision = own.precision;
  return p;
}

// Softmax variants see a subset of the scores, so a query's recall of the dense mass is the sum
// of P_own over the keys the variant sees. When the layer's own attention is dense (causal), the
// variant's visible set lies inside it and the sum is exp(lse_variant - lse_own) per query: both
// are log-sums of the same exp(scale * q.k) terms. Otherwise (Mistral's own window) the map probe
// gives P_own and P_variant tile by tile and the sum runs over the keys where P_variant > 0.
std::vector<double> recall_per_head(const LayerAttention& own, const AttentionProblem& variant,
                                    const RunResult& result) {
  const int64_t H = own.problem.shape.heads, L = own.problem.shape.q_len;
  std::vector<double> recall(static_cast<size_t>(H), 0.0);
  const bool own_dense = !has_mask_knob(variant_info(own.problem.variant));
  const float* lse_own = own.result.lse.data();
  const float* lse_var = result.lse.data();
  if (own_dense) {
    for (int64_t h = 0; h < H; ++h) {
      double sum = 0;
      for (int64_t i = 0; i < L; ++i) {
        const double r = std::exp(double(lse_var[h * L + i]) - double(lse_own[h * L + i]));
        sum += std::min(r, 1.0);  // > 1 only by fp32 rounding of two equal sums
      }
      recall[static_cast<size_t>(h)] = sum / double(L);
    }
    return recall;
  }
  constexpr int64_t kTile = 128;
  std::vector<float> p_own(kTile * kTile), p_var(kTile * kTile);
  for (int64_t h = 0; h < H; ++h) {
    double sum = 0;
    for (int64_t i0 = 0; i0 < L; i0 += kTile) {
      const int64_t i1 = std::min(L, i0 + kTile);
      for (int64_t j0 = 0; j0 < i1; j0 += kTile) {  // causal: keys past the block's last row are 0
        const int64_t j1 = std::min(L, j0 + kTile);
        attention_tile(own.problem, own.inputs, own.result, 0, h, i0, i1, j0, j1, p_own.data());
        attention_tile(variant, own.inputs, result, 0, h, i0, i1, j0, j1, p_var.data());
        const int64_t n = (i1 - i0) * (j1 - j0);
        for (int64_t t = 0; t < n; ++t) {
          if (p_var[static_cast<size_t>(t)] > 0) sum += p_own[static_cast<size_t>(t)];
        }
      }
    }
    recall[static_cast<size_t>(h)] = sum / double(L);
  }
  return recall;
}

// ||o_variant - o_own||_F / ||o_own||_F per head over its [L, Dv] block.
std::vector<double> error_per_head(const Tensor& own, const Tensor& variant) {
  const int64_t H = own.dim(1), n = own.dim(2) * own.dim(3);
  std::vector<double> err(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    const float* a = own.data() + h * n;
    const float* b = variant.data() + h * n;
    double diff = 0, norm = 0;
    for (int64_t t = 0; t < n; ++t) {
      diff += (double(b[t]) - a[t]) * (double(b[t]) - a[t]);
      norm += double(a[t]) * a[t];
    }
    err[static_cast<size_t>(h)] = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  }
  return err;
}

// KL(p || q) per row of two logit blocks [rows, V], in double.
void kl_rows(const Tensor& p_logits, const Tensor& q_logits, double* out) {
  const int64_t rows = p_logits.dim(0), V = p_logits.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = p_logits.data() + r * V;
    const float* q = q_logits.data() + r * V;
    const double pm = *std::max_element(p, p + V), qm = *std::max_element(q, q + V);
    double ps = 0, qs = 0;
    for (int64_t t = 0; t < V; ++t) {
      ps += std::exp(double(p[t]) - pm);
      qs += std::exp(double(q[t]) - qm);
    }
    const double p_lse = pm + std::log(ps), q_lse = qm + std::log(qs);
    double kl = 0;
    for (int64_t t = 0; t < V; ++t) {
      const double lp = double(p[t]) - p_lse, lq = double(q[t]) - q_lse;
      kl += std::exp(lp) * (lp - lq);
    }
    out[r] = std::max(kl, 0.0);  // >= 0 in exact arithmetic; rounding can dip below
  }
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// Forwards progress of one of the two forwards into the request's token, and its cancel back.
CancelToken stage_token(const CancelToken& outer, double base, std::shared_ptr<CancelToken>& keep) {
  keep = std::make_shared<CancelToken>();
  CancelToken* inner = keep.get();
  keep->set_progress_callback([outer, inner, base](double f) {
    if (outer.cancelled()) inner->cancel();
    outer.report(base + 0.5 * f);
  });
  if (outer.cancelled()) keep->cancel();
  return *keep;
}

}  // namespace

std::vector<const VariantInfo*> what_if_variants() {
  std::vector<const VariantInfo*> out;
  for (const VariantInfo& v : variants()) {
    if (v.map_kind == MapKind::softmax && v.input_family == InputFamily::qkv && has_mask_knob(v)) {
      out.push_back(&v);
    }
  }
  return out;
}

std::string what_if_variant_names() {
  std::string s;
  for (const VariantInfo* v : what_if_variants())
    s += (s.empty() ? "" : ", ") + std::string(v->name);
  return s;
}

double WhatIfLayer::mean_recall() const {
  return mean(recall);
}
double WhatIfLayer::mean_output_error() const {
  return mean(output_error);
}

std::pair<int64_t, int64_t> parse_layer_range(const std::string& text, int64_t layers) {
  const auto bad = [&](const std::string& why) {
    return Error("--layers '" + text + "' " + why +
                 " (give A-B or A, 0-based, inclusive; this model has " + std::to_string(layers) +
                 " layers: 0-" + std::to_string(layers - 1) + ")");
  };
  const auto number = [&](std::string_view s) {
    int64_t v = -1;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 0) {
      throw bad("is not a layer range");
    }
    return v;
  };
  const size_t dash = text.find('-');
  const int64_t a = number(std::string_view(text).substr(0, dash));
  const int64_t b = dash == std::string::npos ? a : number(std::string_view(text).substr(dash + 1));
  if (a > b) throw bad("runs backwards");
  if (b >= layers) throw bad("goes past the last layer");
  return {a, b};
}

void check_what_if(const Model& model, std::span<const int32_t> ids, const WhatIfRequest& request) {
  const VariantInfo& info = variant_info(request.variant.variant);
  const auto ok = what_if_variants();
  if (std::find(ok.begin(), ok.end(), &info) == ok.end()) {
    throw Error("'" + std::string(info.name) +
                "' cannot replace a layer's attention on its own q, k, v (it needs other inputs "
                "or is dense itself); choose from: " +
                what_if_variant_names());
  }
  const int64_t layers = model.config().layers;
  const int64_t last = request.last_layer < 0 ? layers - 1 : request.last_layer;
  if (request.first_layer < 0 || request.first_layer > last || last >= layers) {
    throw Error("layer range " + std::to_string(request.first_layer) + "-" + std::to_string(last) +
                " is outside this model's layers 0-" + std::to_string(layers - 1));
  }
  model.check_ids(ids);
  const AttentionProblem own = model.attention_problem(int64_t(ids.size()));
  if (auto why = replacement(request.variant, own).validate()) {
    throw Error("the " + std::string(info.name) + " replacement cannot run on this text: " + *why);
  }
}

WhatIfReport what_if(const Model& model, std::span<const int32_t> ids,
                     const WhatIfRequest& request) {
  check_what_if(model, ids, request);
  const int64_t first = request.first_layer;
  const int64_t last = request.last_layer < 0 ? model.config().layers - 1 : request.last_layer;
  const auto replaced = [&](int64_t layer) { return layer >= first && layer <= last; };
  std::unique_ptr<Backend> backend = make_backend(request.backend);

  WhatIfReport report;
  report.tokens = int64_t(ids.size());
  std::shared_ptr<CancelToken> keep_dense, keep_variant;

  // Dense forward; the observer measures the variant on each replaced layer's own q, k, v.
  const auto measure = [&](int64_t layer, const LayerAttention& own) {
    if (!replaced(layer)) return;
    const AttentionProblem p = replacement(request.variant, own.problem);
    if (report.variant.empty()) report.variant = p.describe();
    // Its own token: the backend's 0..1 progress must not reach the caller's bar as the forward's,
    // but the caller's cancel must reach the backend.
    CancelToken quiet;
    quiet.set_progress_callback([&request, &quiet](double) {
      if (request.cancel.cancelled()) quiet.cancel();
    });
    request.cancel.throw_if_cancelled();
    const RunResult r = backend->run(p, own.inputs, Probes{}, quiet);
    WhatIfLayer m;
    m.layer = layer;
    m.recall = recall_per_head(own, p, r);
    m.output_error = error_per_head(own.result.o, r.o);
    report.layers.push_back(std::move(m));
  };
  ForwardResult own_base;
  const ForwardResult* base_ptr = request.dense.get();
  if (base_ptr) {
    const ForwardResult& d = *base_ptr;
    if (!std::equal(d.ids.begin(), d.ids.end(), ids.begin(), ids.end()) ||
        int64_t(d.layers.size()) != model.config().layers) {
      throw Error(
          "what-if: the dense forward given is not this model's on these tokens with "
          "every layer captured");
    }
    // The first half of the progress is the dense forward's: here, the replaced layers' runs.
    CancelToken stage = stage_token(request.cancel, 0.0, keep_dense);
    for (int64_t layer = 0; layer < int64_t(d.layers.size()); ++layer) {
      measure(layer, d.layers[size_t(layer)]);
      stage.report(double(layer + 1) / double(d.layers.size()));
    }
  } else {
    ForwardOptions dense;
    dense.backend = request.backend;
    dense.keep_logits = false;
    dense.memory_budget = request.memory_budget;
    dense.cancel = stage_token(request.cancel, 0.0, keep_dense);
    dense.observe = measure;
    own_base = model.forward(ids, dense);
    base_ptr = &own_base;
  }
  const ForwardResult& base = *base_ptr;

  ForwardOptions swapped;
  swapped.backend = request.backend;
  swapped.keep_logits = false;
  swapped.memory_budget = request.memory_budget;
  swapped.cancel = stage_token(request.cancel, 0.5, keep_variant);
  swapped.observe = request.observe;
  swapped.replace = [&](int64_t layer,
                        const AttentionProblem& own) -> std::optional<AttentionProblem> {
    if (!replaced(layer)) return std::nullopt;
    return replacement(request.variant, own);
  };
  ForwardResult alt = model.forward(ids, swapped);

  report.ppl_dense = base.perplexity();
  report.ppl = alt.perplexity();
  report.dense_seconds = base.seconds;
  report.variant_seconds = alt.seconds;

  // The two distributions block by block, so [L, V] is never held twice.
  const int64_t L = report.tokens;
  report.kl.assign(static_cast<size_t>(L), 0.0);
  // Blocks of about 128 MiB of logits each: few enough lm_head calls that a model whose head is
  // widened per call (when its weights are streamed) pays for it a handful of times, not per row.
  const int64_t V = model.config().vocab_size;
  const int64_t rows =
      std::clamp<int64_t>((int64_t(128) << 20) / (V * 4), 16, std::max<int64_t>(L, 16));
  for (int64_t r0 = 0; r0 < L; r0 += rows) {
    request.cancel.throw_if_cancelled();
    const int64_t r1 = std::min(L, r0 + rows);
    kl_rows(model.lm_head(base.hidden, r0, r1), model.lm_head(alt.hidden, r0, r1),
            report.kl.data() + r0);
  }
  report.kl_mean = mean(report.kl);
  report.hidden_dense = base_ptr == &own_base ? std::move(own_base.hidden) : base.hidden;
  report.hidden = std::move(alt.hidden);
  request.cancel.report(1.0);
  return report;
}

}  // namespace attnscope
