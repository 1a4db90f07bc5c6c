// The float64 row softmax every head statistic reads (row_softmax.hpp). The dot products keep four
// partial sums: a single float64 chain is latency-bound and the text statistics cost L^2 of them
// per head; the reordering moves a score by a few ulps, far below what the statistics resolve.
#include "analysis/row_softmax.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "attnscope/error.hpp"
#include "attnscope/parallel.hpp"

namespace attnscope::analysis_detail {

namespace {

double dot(const double* q, const float* k, int64_t D) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t d = 0;
  for (; d + 4 <= D; d += 4) {
    a0 += q[d] * double(k[d]);
    a1 += q[d + 1] * double(k[d + 1]);
    a2 += q[d + 2] * double(k[d + 2]);
    a3 += q[d + 3] * double(k[d + 3]);
  }
  for (; d < D; ++d) a0 += q[d] * double(k[d]);
  return (a0 + a1) + (a2 + a3);
}

}  // namespace

void check_layer(const LayerAttention& la) {
  const AttentionProblem& p = la.problem;
  if (p.variant != VariantId::dense && p.variant != VariantId::swa) {
    throw Error("head statistics read dense or sliding-window softmax attention; this layer ran " +
                p.describe());
  }
  const ProblemShape& s = p.shape;
  if (s.batch != 1 || s.q_len != s.kv_len || s.kv_heads < 1 || s.heads % s.kv_heads != 0) {
    throw Error(
        "head statistics read a model layer's own attention (batch 1, as many queries as "
        "keys, heads a multiple of kv heads); this layer ran " +
        p.describe());
  }
  if (!la.inputs.has("q") || !la.inputs.has("k")) {
    throw Error("head statistics need the layer's captured q and k (ForwardOptions::capture)");
  }
  const Shape want_q{1, s.heads, s.q_len, s.head_dim}, want_k{1, s.kv_heads, s.kv_len, s.head_dim};
  if (la.inputs.at("q").shape() != want_q || la.inputs.at("k").shape() != want_k) {
    throw Error("the captured q " + shape_str(la.inputs.at("q").shape()) + " and k " +
                shape_str(la.inputs.at("k").shape()) + " do not have the layer's shapes " +
                shape_str(want_q) + " and " + shape_str(want_k));
  }
}

HeadView head_view(const LayerAttention& la, int64_t head) {
  const ProblemShape& s = la.problem.shape;
  HeadView v;
  v.L = s.q_len;
  v.D = s.head_dim;
  v.q = la.inputs.at("q").data() + head * v.L * v.D;
  v.k = la.inputs.at("k").data() + (head / (s.heads / s.kv_heads)) * v.L * v.D;
  v.scale = la.problem.effective_scale();
  v.mask = KeyMask::of(la.problem);
  return v;
}

int64_t row_exp(const HeadView& v, int64_t i, double* qd, double* t, double* e, double& z) {
  const int64_t D = v.D;
  for (int64_t d = 0; d < D; ++d) qd[d] = double(v.q[i * D + d]);
  const int64_t hi = v.mask.hi(i);
  // The keys row i sees are [lo, hi) plus, under a window with sinks, [0, min(sinks, lo)).
  const int64_t lo = std::min(v.mask.window_lo(i), hi);
  const int64_t sink_end = v.mask.window > 0 ? std::min(v.mask.sinks, lo) : 0;
  double m = -INFINITY;
  for (int64_t j = 0; j < hi; ++j) {
    if (j >= sink_end && j < lo) {
      t[j] = -INFINITY;
      continue;
    }
    t[j] = dot(qd, v.k + j * D, D) * v.scale;
    m = std::max(m, t[j]);
  }
  z = 0;
  for (int64_t j = 0; j < hi; ++j) {
    if (t[j] == -INFINITY) {
      e[j] = 0;
      continue;
    }
    t[j] -= m;
    e[j] = std::exp(t[j]);
    z += e[j];
  }
  return hi;
}

int stat_threads() {
  return std::min(default_threads(), ThreadPool::global().size());
}

}  // namespace attnscope::analysis_detail
