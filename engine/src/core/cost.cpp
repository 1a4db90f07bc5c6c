// Analytic cost of an attention problem: FLOPs, minimal bytes, visible pairs and KV-cache size.
// Each variant's formulas live in its module (VariantInfo::cost); docs/cost-model.md derives them.
#include "attnscope/cost.hpp"

#include "attnscope/variant.hpp"
#include "core/counts.hpp"

namespace attnscope {

int64_t visible_pairs_dense(const AttentionProblem& problem) {
  return counts::saturate(
      counts::dense_pairs(KeyMask::of(problem), problem.shape.q_len, problem.shape.kv_len));
}

int64_t visible_pairs(const AttentionProblem& problem) {
  AttentionProblem one = problem;
  one.shape.batch = one.shape.heads = one.shape.kv_heads = 1;
  return cost_of(one).visible_pairs;
}

Cost cost_of(const AttentionProblem& problem, int element_bytes) {
  Cost c;
  variant_info(problem.variant).cost(problem, double(element_bytes), c);
  return c;
}

}  // namespace attnscope
