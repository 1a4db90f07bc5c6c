// DecodeSession (decode_session.hpp): a seeded synthetic decode workload, prefilled and stepped
// through the engine's decode layer.
#include "attnscope/decode_session.hpp"

#include <algorithm>
#include <set>
#include <string>

#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/slicing.hpp"
#include "attnscope/variant.hpp"
#include "attnscope/workload.hpp"

namespace attnscope {
namespace {

std::string str(int64_t x) {
  return std::to_string(x);
}

}  // namespace

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
  // A prompt that is only cached (not computed) needs its keys but not its queries: the inputs
  // are then made for the queries of the tokens decode adds (bottom-right aligned), which keeps a
  // 128K-token DeepSeek-V3 context from holding 128K x 128 heads of queries it never reads.
  AttentionProblem made = config_.problem;
  if (!config_.compute_prefill && !variant_info(made.variant).has_state) {
    query_offset_ = *std::min_element(config_.prompt_lengths.begin(), config_.prompt_lengths.end());
    made.shape.q_len = config_.max_length - query_offset_;
    if (made.shape.q_len < 1) query_offset_ = 0, made.shape.q_len = config_.max_length;
  }
  // The session keeps every sequence's input (what decode must reproduce): bound it.
  double floats = 0;
  for (const TensorSpec& spec : variant_info(made.variant).inputs(made)) {
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
    full_.push_back(make_inputs(made, config_.pattern, config_.seed + 7919 * row));
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
      if (axis >= 0 && !key_side(t, axis)) continue;  // queries of decoded tokens only
      prompt.set(name, axis < 0 ? t : slice_axis(t, axis, 0, P));
    }
    // A state can only come from running the prompt; pages can be filled from the prompt's keys.
    const VariantInfo& info = variant_info(p.variant);
    if (config_.compute_prefill || info.has_state) {
      ids_.push_back(attnscope::prefill(backend_, *cache_, p, prompt, cancel).sequence);
    } else {
      const int64_t id = cache_->add_sequence();
      cache_->append(id, prompt);  // the tensors the variant's CacheSpec names
      ids_.push_back(id);
    }
    cancel.report(double(row + 1) / double(rows));
  }
}

bool DecodeSession::key_side(const Tensor& t, int axis) const {
  return query_offset_ == 0 || t.dim(axis) == config_.max_length;
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
      const Tensor& all = full_[row].at(name);
      const int64_t t = cache_->length(ids_[row]) - (key_side(all, axis) ? 0 : query_offset_);
      const Tensor tok = slice_axis(all, axis, t, t + 1);
      std::memcpy(batch.data() + b * per_row, tok.data(), size_t(per_row) * sizeof(float));
    }
    s.inputs.set(name, std::move(batch));
  }
  for (size_t row : rows) s.sequences.push_back(ids_[row]);
  last_rows_.assign(rows.begin(), rows.end());
  return decode_step(backend_, *cache_, s, Probes{}, cancel);
}

}  // namespace attnscope
