// Analytic cost of a problem: FLOPs, minimal bytes moved, KV-cache footprint.
// The roofline, throughput and KV views read these; formulas are explained in docs/cost-model.md.
#pragma once

#include <cstdint>

#include "attnscope/problem.hpp"

namespace attnscope {

struct Cost {
  double flops = 0;                // multiply-adds count 2; exp/max/divide not counted
  double bytes = 0;                // read every input once + write every output once
  int64_t visible_pairs = 0;       // (query, key) pairs attended, summed over batch and heads
  double kv_bytes_per_token = 0;   // cache bytes one more token adds (all kv heads, one layer)
  double kv_cache_bytes = 0;       // cache bytes held after kv_len tokens (batch included)
  double kv_values_per_token = 0;  // the same in values rather than bytes (576 for DeepSeek-V3 MLA)
};

// element_bytes: 4 for fp32 (the host engine), 2 for bf16/fp16 device buffers.
Cost cost_of(const AttentionProblem& problem, int element_bytes = 4);

// (query, key) pairs a causal/window/sinks mask leaves visible in one head of one sequence, in
// closed form (no loop over rows), so that 1M-token shapes cost nothing to describe.
int64_t visible_pairs_dense(const AttentionProblem& problem);
// (query, key) pairs the variant attends in one head of one sequence (its mask, its selection),
// in closed form.
int64_t visible_pairs(const AttentionProblem& problem);

}  // namespace attnscope
