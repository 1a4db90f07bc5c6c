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

}  // namespace attnscope
