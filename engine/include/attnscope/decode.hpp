// Token-by-token decode through the paged KV cache, the way a serving engine does it: prefill each
// sequence (its own length) with Backend::run, fill the cache, then decode steps that append one
// token per sequence and attend over the cache through Backend::decode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/kv_cache.hpp"

namespace attnscope {

// One decode step for a batch of sequences: row b of every tensor is the new token of
// sequences[b]. Tensors follow the variant's run() layout with B = sequences.size() and L = 1:
//   dense/swa/moba  q [B, H, 1, Dk], k [B, Hkv, 1, Dk], v [B, Hkv, 1, Dv]
//   mla             q [B, H, 1, Dn + Dr], c_kv [B, 1, Dc], k_rope [B, 1, Dr], w_uk, w_uv
//   gated_delta     q, k [B, H, 1, Dk], v [B, H, 1, Dv], g, beta [B, H, 1]
struct DecodeStep {
  std::vector<int64_t> sequences;
  Inputs inputs;
};

// Checks the step (shapes, finiteness, GDN value ranges, known distinct sequences), appends the new
// tokens' keys/values to the cache (the GDN state is advanced by the backend), then runs
// backend.decode (which, for Gated DeltaNet, only rewrites cache.state(seq); decode_step then
// advances each sequence's length by one). The result has o [B, H, 1, Dv], lse [B, H, 1] (softmax
// variants), MoBA's selection [B, H, 1, top_k]; counters sum the cost of each row at its own
// context length.
RunResult decode_step(Backend& backend, PagedKvCache& cache, const DecodeStep& step,
                      const Probes& probes = {}, const CancelToken& cancel = {});

// Prefills one new sequence from full-sequence inputs (B = 1, the variant's run() layout, q_len =
// kv_len = the prompt length): runs backend.run for the prompt's outputs, then stores its keys
// and values (GDN: the final state) in the cache. Returns the run's result and the sequence id.
struct PrefillResult {
  int64_t sequence = -1;
  RunResult result;
};
PrefillResult prefill(Backend& backend, PagedKvCache& cache, const AttentionProblem& problem,
                      const Inputs& prompt, const CancelToken& cancel = {});

// The cost of one decode step over the given context lengths (sum of per-row Lq = 1 problems).
Cost decode_cost(const AttentionProblem& cache_problem,
                 const std::vector<int64_t>& context_lengths);

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
  const Inputs& full_inputs(int64_t row) const { return full_[size_t(row)]; }
  int64_t sequence_id(int64_t row) const { return ids_[size_t(row)]; }
  int64_t length(int64_t row) const;

 private:
  DecodeSessionConfig config_;
  Backend& backend_;
  std::unique_ptr<PagedKvCache> cache_;
  std::vector<Inputs> full_;
  std::vector<int64_t> ids_;
  std::vector<bool> released_;
  std::vector<int64_t> last_rows_;
};

}  // namespace attnscope
