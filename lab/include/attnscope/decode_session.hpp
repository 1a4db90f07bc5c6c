// A seeded decode workload driven through the engine's decode layer (decode.hpp): part of the
// measurement lab, since it makes its own synthetic inputs (workload.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/decode.hpp"

namespace attnscope {

// A synthetic, seeded decode workload (the GUI's live KV view, `attnscope-cli bench --mode decode`
// and the tests drive it): a batch of sequences with their own prompt lengths, prefilled, then
// stepped. Token t of sequence b is the same whether it is produced by prefill or by a step, so
// a decode can be compared with the full computation of the whole sequence.
struct DecodeSessionConfig {
  AttentionProblem problem;  // variant, heads, dims, params (batch/q_len/kv_len ignored)
  std::vector<int64_t> prompt_lengths{128};  // one sequence each
  int64_t max_length = 0;  // tokens per sequence the session may reach (inputs are made for it)
  int64_t page_size = 0;   // 0 = default_page_size
  int64_t max_pages = 0;   // 0 = memory-bound
  std::string pattern = "random";
  uint64_t seed = 0;
  // Prefill computes the prompt's outputs with the backend; false only fills the cache (benchmarks
  // that time decode alone).
  bool compute_prefill = true;
};

class DecodeSession {
 public:
  DecodeSession(DecodeSessionConfig config, Backend& backend);  // throws Error on bad config
  // Prefills every sequence (reports progress through cancel). Call once before step().
  void prefill(const CancelToken& cancel = {});
  // One token for every sequence still below max_length; returns the step's result (B = rows
  // stepped, in the order of last_rows()). Throws Error when every sequence has reached max_length.
  RunResult step(const CancelToken& cancel = {});
  // The session rows (indices into prompt_lengths) the last step() decoded, one per result row.
  const std::vector<int64_t>& last_rows() const { return last_rows_; }
  bool finished() const;
  // Frees a sequence's pages (a finished request leaving the batch).
  void release(int64_t row);

  const PagedKvCache& cache() const { return *cache_; }
  PagedKvCache& cache() { return *cache_; }
  const DecodeSessionConfig& config() const { return config_; }
  // The whole sequence b as full inputs (B = 1, L = max_length): what decode must reproduce.
  // Without compute_prefill its query-side tensors cover only the tokens after the shortest
  // prompt (query_offset() of them are left out, bottom-right aligned).
  const Inputs& full_inputs(int64_t row) const { return full_[size_t(row)]; }
  int64_t query_offset() const { return query_offset_; }
  int64_t sequence_id(int64_t row) const { return ids_[size_t(row)]; }
  int64_t length(int64_t row) const;

 private:
  DecodeSessionConfig config_;
  Backend& backend_;
  std::unique_ptr<PagedKvCache> cache_;
  // Whether `t` (token axis `axis`) has a row per token of the sequence (keys, values, latents)
  // rather than per decoded token (queries, with the lean inputs).
  bool key_side(const Tensor& t, int axis) const;

  std::vector<Inputs> full_;
  int64_t query_offset_ = 0;
  std::vector<int64_t> ids_;
  std::vector<bool> released_;
  std::vector<int64_t> last_rows_;
};

}  // namespace attnscope
