// Prefill + token-by-token decode through the paged KV cache (decode.hpp): the checks and the
// cache writes every backend shares, so a backend's decode only reads pages and computes.
#include "attnscope/decode.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/slicing.hpp"

namespace attnscope {
namespace {

std::string str(int64_t x) {
  return std::to_string(x);
}

// Row b of a [B, ...] tensor, keeping a leading 1.
Tensor batch_row(const Tensor& t, int64_t b) {
  return slice_axis(t, 0, b, b + 1);
}

void check_same_model(const AttentionProblem& cache, const AttentionProblem& p) {
  const ProblemShape &a = cache.shape, &b = p.shape;
  bool same = cache.variant == p.variant && a.heads == b.heads && a.kv_heads == b.kv_heads &&
              a.head_dim == b.head_dim && a.v_head_dim == b.v_head_dim && cache.scale == p.scale;
  // Every knob that shapes the answer; the form a step computes in does not.
  for (const ParamSpec& knob : variant_info(cache.variant).params) {
    if (same && !knob.form) same = knob.get(cache) == knob.get(p);
  }
  if (!same) {
    throw Error("prefill: the problem (" + p.describe() +
                ") does not match the KV cache's model (" + cache.describe() + ")");
  }
}

}  // namespace

Cost decode_cost(const AttentionProblem& cache_problem,
                 const std::vector<int64_t>& context_lengths) {
  std::map<int64_t, int64_t> count;
  for (int64_t L : context_lengths) ++count[L];
  Cost total;
  const VariantInfo& info = variant_info(cache_problem.variant);
  for (const auto& [L, n] : count) {
    AttentionProblem p = decode_form(cache_problem);
    p.causal = true;
    p.shape.batch = 1;
    p.shape.q_len = 1;
    p.shape.kv_len = info.has_state ? 1 : L;
    Cost c = cost_of(p);
    if (info.decode_cost) info.decode_cost(p, L, c);
    total.flops += double(n) * c.flops;
    total.bytes += double(n) * c.bytes;
    total.visible_pairs += n * c.visible_pairs;
    total.kv_bytes_per_token = c.kv_bytes_per_token;
    total.kv_values_per_token = c.kv_values_per_token;
    total.kv_cache_bytes += double(n) * c.kv_cache_bytes;
  }
  return total;
}

RunResult decode_step(Backend& backend, PagedKvCache& cache, const DecodeStep& step,
                      const Probes& probes, const CancelToken& cancel) {
  const AttentionProblem& model = cache.problem();
  const VariantId var = model.variant;
  const int64_t B = int64_t(step.sequences.size());
  if (B == 0) throw Error("decode step: no sequences given");
  // The cache's pages are fp32 and every backend's decode kernel computes in fp32; a bf16/fp16
  // model would silently decode in fp32, so say so instead.
  if (model.precision != Precision::fp32) {
    throw Error("decode step: paged-KV decode computes in fp32 only (the model asks for " +
                std::string(precision_name(model.precision)) + "; use --precision fp32)");
  }
  std::set<int64_t> seen;
  for (int64_t id : step.sequences) {
    if (!cache.has_sequence(id)) throw Error("decode step: no sequence with id " + str(id));
    if (!seen.insert(id).second) {
      throw Error("decode step: sequence " + str(id) + " appears twice in one step");
    }
  }
  AttentionProblem row_problem = model;
  row_problem.shape.batch = B;
  row_problem.shape.q_len = 1;
  row_problem.shape.kv_len = 1;
  for (const TensorSpec& spec : variant_info(var).inputs(row_problem)) {
    if (spec.name == "initial_state") continue;  // the cache holds it
    if (!step.inputs.has(spec.name)) {
      throw Error("decode step: missing input tensor '" + spec.name + "' (" +
                  std::string(spec.doc) + ", one token per sequence)");
    }
    const Tensor& t = step.inputs.at(spec.name);
    if (t.shape() != spec.shape) {
      throw Error("decode step: input tensor '" + spec.name + "' has shape " +
                  shape_str(t.shape()) + " but a step of " + str(B) + " sequences needs " +
                  shape_str(spec.shape));
    }
    if (const int64_t bad = first_non_finite(t); bad >= 0) {
      throw Error("decode step: input tensor '" + spec.name +
                  "' holds a non-finite value (NaN or Inf) at flat index " + str(bad));
    }
  }
  if (auto why = variant_info(var).check_values(step.inputs)) throw Error("decode step: " + *why);
  cancel.throw_if_cancelled();

  const auto t0 = std::chrono::steady_clock::now();
  const VariantInfo& info = variant_info(var);
  const CacheSpec spec = info.cache(model);
  if (spec.layout != CacheLayout::state) {
    // A full cache must fail before any row is appended: count the rows that open a page. (A
    // window's ring reuses the pages that left it.)
    if (KeyMask::of(model).window <= 0) {
      int64_t opening = 0;
      for (int64_t id : step.sequences) opening += cache.length(id) % cache.page_size() == 0;
      const int64_t left = cache.pages_available();
      if (opening > left) {
        throw Error("KV cache is full: this step needs " + str(opening) + " new pages but only " +
                    str(left) + " are left (free a sequence or allow more pages)");
      }
    }
    // Every tensor the cache keeps (the paged parts and any side rows), row b per sequence.
    std::vector<std::string> kept{std::string(spec.key_tensor), std::string(spec.value_tensor)};
    if (spec.side_width > 0) kept.emplace_back(spec.side_tensor);
    for (int64_t b = 0; b < B; ++b) {
      Inputs row;
      for (const std::string& name : kept) row.set(name, batch_row(step.inputs.at(name), b));
      cache.append(step.sequences[size_t(b)], row);
    }
  }
  RunResult r = backend.decode(cache, step, probes, cancel);
  // A Gated DeltaNet step whose state overflowed fails here instead of answering NaN (the length
  // does not advance; the sequence's cached state holds the overflow, so release it).
  check_outputs_finite(model, r);
  std::vector<int64_t> lengths;
  for (int64_t id : step.sequences) {
    if (info.has_state) cache.advance(id, 1);
    lengths.push_back(cache.length(id));
  }
  const Cost c = decode_cost(model, lengths);
  r.counters = {c.flops, c.bytes, c.visible_pairs};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.backend.empty()) r.backend = std::string(backend.name());
  return r;
}

PrefillResult prefill(Backend& backend, PagedKvCache& cache, const AttentionProblem& problem,
                      const Inputs& prompt, const CancelToken& cancel) {
  check_same_model(cache.problem(), problem);
  if (problem.shape.batch != 1) {
    throw Error("prefill: one sequence at a time (batch must be 1, got " +
                str(problem.shape.batch) + "); sequences of a batch have their own lengths");
  }
  if (problem.shape.q_len != problem.shape.kv_len) {
    throw Error("prefill: a prompt's queries and keys are the same tokens (q_len " +
                str(problem.shape.q_len) + " != kv_len " + str(problem.shape.kv_len) + ")");
  }
  if (!problem.causal) throw Error("prefill: a prompt is causal (each token sees its past)");
  PrefillResult out;
  out.result = backend.run(problem, prompt, Probes{}, cancel);
  out.sequence = cache.add_sequence();
  try {
    const VariantInfo& info = variant_info(problem.variant);
    if (info.has_state) {
      if (!out.result.final_state) throw Error("prefill: the backend returned no final state");
      cache.set_state(out.sequence, *out.result.final_state);
      cache.advance(out.sequence, problem.shape.q_len);
    } else {
      cache.append(out.sequence, prompt);
    }
  } catch (...) {
    cache.free_sequence(out.sequence);
    throw;
  }
  return out;
}

}  // namespace attnscope
