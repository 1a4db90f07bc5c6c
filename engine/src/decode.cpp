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
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "memory_budget.hpp"
#include "slicing.hpp"

namespace attnscope {
namespace {

std::string str(int64_t x) {
  return std::to_string(x);
}

// Row b of a [B, ...] tensor, keeping a leading 1.
Tensor batch_row(const Tensor& t, int64_t b) {
  return slice_axis(t, 0, b, b + 1);
}

// Token axis of each input a variant takes (weights have none: -1).
int token_axis(VariantId v, const std::string& name) {
  if (name == "w_uk" || name == "w_uv" || name == "initial_state") return -1;
  if (v == VariantId::mla && (name == "c_kv" || name == "k_rope")) return 1;
  return 2;  // q, k, v [B, heads, L, D]; g, beta [B, H, L]
}

bool is_softmax(VariantId v) {
  return v != VariantId::gated_delta;
}

void check_same_model(const AttentionProblem& cache, const AttentionProblem& p) {
  const ProblemShape &a = cache.shape, &b = p.shape;
  const bool same =
      cache.variant == p.variant && a.heads == b.heads && a.kv_heads == b.kv_heads &&
      a.head_dim == b.head_dim && a.v_head_dim == b.v_head_dim && cache.scale == p.scale &&
      cache.swa.window == p.swa.window && cache.swa.sinks == p.swa.sinks &&
      cache.mla.kv_lora_rank == p.mla.kv_lora_rank && cache.mla.rope_dim == p.mla.rope_dim &&
      cache.mla.nope_dim == p.mla.nope_dim && cache.moba.block_size == p.moba.block_size &&
      cache.moba.top_k == p.moba.top_k && cache.gdn.qk_l2norm == p.gdn.qk_l2norm;
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
  for (const auto& [L, n] : count) {
    AttentionProblem p = cache_problem;
    p.causal = true;
    p.shape.batch = 1;
    p.shape.q_len = 1;
    p.shape.kv_len = p.variant == VariantId::gated_delta ? 1 : L;
    p.mla.absorbed = true;  // decode always reads the latent pages
    p.gdn.recurrent = true;
    Cost c = cost_of(p);
    const double e = 4;
    const double H = double(p.shape.heads), Hkv = double(p.shape.kv_heads);
    const double Dk = double(p.shape.head_dim), Dv = double(p.shape.v_head_dim);
    if (p.variant == VariantId::moba) {
      // The block means are cached (computed once as blocks fill), so the step neither re-reads
      // every key nor re-averages; it reads q, the means, the selected keys and writes o.
      const double bs = double(p.moba.block_size);
      const double blocks = std::floor(double(L) / bs);
      const double keys = std::min(double(L), double(p.moba.top_k) * bs);
      c.flops -= Hkv * double(L) * Dk;
      c.bytes = e * (H * Dk + Hkv * blocks * Dk + Hkv * keys * (Dk + Dv) + H * Dv) +
                4 * H * (1 + double(p.moba.top_k));
    } else if (p.variant == VariantId::gated_delta) {
      c.bytes += 4 * H * Dk * Dv;  // the state is read as well as written
    }
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
  if (is_softmax(var)) {
    // A full cache must fail before any row is appended: count the rows that open a page.
    if (var != VariantId::swa) {
      int64_t opening = 0;
      for (int64_t id : step.sequences) opening += cache.length(id) % cache.page_size() == 0;
      const int64_t left = cache.pages_available();
      if (opening > left) {
        throw Error("KV cache is full: this step needs " + str(opening) + " new pages but only " +
                    str(left) + " are left (free a sequence or allow more pages)");
      }
    }
    const bool mla = var == VariantId::mla;
    const Tensor& k = step.inputs.at(mla ? "c_kv" : "k");
    const Tensor& v = step.inputs.at(mla ? "k_rope" : "v");
    for (int64_t b = 0; b < B; ++b)
      cache.append(step.sequences[size_t(b)], batch_row(k, b), batch_row(v, b));
  }
  RunResult r = backend.decode(cache, step, probes, cancel);
  // A Gated DeltaNet step whose state overflowed fails here instead of answering NaN (the length
  // does not advance; the sequence's cached state holds the overflow, so release it).
  check_outputs_finite(model, r);
  std::vector<int64_t> lengths;
  for (int64_t id : step.sequences) {
    if (var == VariantId::gated_delta) cache.advance(id, 1);
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
    switch (problem.variant) {
      case VariantId::dense:
      case VariantId::swa:
      case VariantId::moba:
        cache.append(out.sequence, prompt.at("k"), prompt.at("v"));
        break;
      case VariantId::mla:
        cache.append(out.sequence, prompt.at("c_kv"), prompt.at("k_rope"));
        break;
      case VariantId::gated_delta:
        if (!out.result.final_state) throw Error("prefill: the backend returned no final state");
        cache.set_state(out.sequence, *out.result.final_state);
        cache.advance(out.sequence, problem.shape.q_len);
        break;
    }
  } catch (...) {
    cache.free_sequence(out.sequence);
    throw;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

DecodeSession::DecodeSession(DecodeSessionConfig config, Backend& backend)
    : config_(std::move(config)), backend_(backend) {
  if (config_.prompt_lengths.empty()) throw Error("decode session: no sequences (prompt_lengths)");
  int64_t longest = 0;
  for (int64_t L : config_.prompt_lengths) {
    if (L < 1)
      throw Error("decode session: every prompt needs at least 1 token (got " + str(L) + ")");
    longest = std::max(longest, L);
  }
  if (config_.max_length == 0) config_.max_length = longest + 128;
  if (config_.max_length < longest) {
    throw Error("decode session: max_length " + str(config_.max_length) +
                " is below the longest prompt (" + str(longest) + ")");
  }
  config_.problem.causal = true;
  config_.problem.shape.batch = 1;
  config_.problem.shape.q_len = config_.problem.shape.kv_len = config_.max_length;
  if (auto why = config_.problem.validate()) throw Error("decode session: " + *why);
  // The session keeps every sequence's whole input (what decode must reproduce): bound it.
  double floats = 0;
  for (const TensorSpec& spec : variant_info(config_.problem.variant).inputs(config_.problem)) {
    if (spec.optional) continue;
    double n = 1;
    for (int64_t d : spec.shape) n *= double(d);
    floats += n;
  }
  const double bytes = 4 * floats * double(config_.prompt_lengths.size());
  if (bytes > double(memory_budget_bytes()) / 2) {
    throw Error("decode session: the inputs of " + str(int64_t(config_.prompt_lengths.size())) +
                " sequences of " + str(config_.max_length) + " tokens need " +
                str(int64_t(bytes / (1 << 20))) +
                " MiB, more than half the memory; use fewer sequences, fewer tokens or smaller "
                "heads");
  }
  cache_ = std::make_unique<PagedKvCache>(
      KvCacheConfig{config_.problem, config_.page_size, config_.max_pages});
  for (size_t row = 0; row < config_.prompt_lengths.size(); ++row) {
    full_.push_back(make_inputs(config_.problem, config_.pattern, config_.seed + 7919 * row));
    // Weights belong to the model, not to a sequence: every row uses the first row's.
    for (const char* w : {"w_uk", "w_uv"}) {
      if (row > 0 && full_[0].has(w)) full_[row].set(w, full_[0].at(w));
    }
  }
  released_.assign(config_.prompt_lengths.size(), false);
}

void DecodeSession::prefill(const CancelToken& cancel) {
  if (!ids_.empty()) throw Error("decode session: already prefilled");
  const size_t rows = config_.prompt_lengths.size();
  for (size_t row = 0; row < rows; ++row) {
    cancel.throw_if_cancelled();
    const int64_t P = config_.prompt_lengths[row];
    AttentionProblem p = config_.problem;
    p.shape.q_len = p.shape.kv_len = P;
    Inputs prompt;
    for (const auto& [name, t] : full_[row].tensors) {
      const int axis = token_axis(p.variant, name);
      prompt.set(name, axis < 0 ? t : slice_axis(t, axis, 0, P));
    }
    if (config_.compute_prefill || p.variant == VariantId::gated_delta) {
      ids_.push_back(attnscope::prefill(backend_, *cache_, p, prompt, cancel).sequence);
    } else {
      const int64_t id = cache_->add_sequence();
      const bool mla = p.variant == VariantId::mla;
      cache_->append(id, prompt.at(mla ? "c_kv" : "k"), prompt.at(mla ? "k_rope" : "v"));
      ids_.push_back(id);
    }
    cancel.report(double(row + 1) / double(rows));
  }
}

int64_t DecodeSession::length(int64_t row) const {
  if (released_[size_t(row)]) return config_.max_length;
  return cache_->length(ids_[size_t(row)]);
}

bool DecodeSession::finished() const {
  for (size_t row = 0; row < ids_.size(); ++row) {
    if (!released_[row] && cache_->length(ids_[row]) < config_.max_length) return false;
  }
  return true;
}

void DecodeSession::release(int64_t row) {
  if (row < 0 || row >= int64_t(ids_.size())) {
    throw Error("decode session: no row " + str(row));
  }
  if (released_[size_t(row)]) return;
  cache_->free_sequence(ids_[size_t(row)]);
  released_[size_t(row)] = true;
}

RunResult DecodeSession::step(const CancelToken& cancel) {
  if (ids_.empty()) throw Error("decode session: prefill() first");
  DecodeStep s;
  std::vector<size_t> rows;
  for (size_t row = 0; row < ids_.size(); ++row) {
    if (!released_[row] && cache_->length(ids_[row]) < config_.max_length) rows.push_back(row);
  }
  if (rows.empty()) throw Error("decode session: every sequence has reached max_length");
  const int64_t B = int64_t(rows.size());
  for (const auto& [name, t0] : full_[0].tensors) {
    const int axis = token_axis(config_.problem.variant, name);
    if (axis < 0) {
      s.inputs.set(name, t0);  // weights shared by all rows
      continue;
    }
    Shape shape = t0.shape();
    shape[0] = B;
    shape[size_t(axis)] = 1;
    Tensor batch(shape);
    const int64_t per_row = batch.numel() / B;
    for (int64_t b = 0; b < B; ++b) {
      const size_t row = rows[size_t(b)];
      const int64_t t = cache_->length(ids_[row]);
      const Tensor tok = slice_axis(full_[row].at(name), axis, t, t + 1);
      std::memcpy(batch.data() + b * per_row, tok.data(), size_t(per_row) * sizeof(float));
    }
    s.inputs.set(name, std::move(batch));
  }
  for (size_t row : rows) s.sequences.push_back(ids_[row]);
  last_rows_.assign(rows.begin(), rows.end());
  return decode_step(backend_, *cache_, s, Probes{}, cancel);
}

}  // namespace attnscope
