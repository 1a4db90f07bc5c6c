// One query row of a layer's attention in float64, recomputed from the captured q, k under the
// layer's own mask and scale: what every head statistic is built from, so all of them agree on
// what p_ij is (and none needs an L x L buffer).
#pragma once

#include <cstdint>
#include <vector>

#include "attnscope/mask.hpp"
#include "attnscope/model.hpp"

namespace attnscope::analysis_detail {

// Head h of a captured layer: its q rows, its kv head's k rows, the mask and the scale.
struct HeadView {
  const float* q = nullptr;  // [L, D]
  const float* k = nullptr;  // [L, D]
  int64_t L = 0, D = 0;
  double scale = 1;
  KeyMask mask;
};

// Checks that `la` is one the statistics can read (batch 1, q_len = kv_len, q and k present with
// the problem's shape, a dense or sliding-window softmax) and throws Error saying why not.
void check_layer(const LayerAttention& la);
HeadView head_view(const LayerAttention& la, int64_t head);

// Row i: t[j] = s_ij - max_j s_ij and e[j] = exp(t[j]) for the keys j < hi that row i sees
// (t = -inf, e = 0 for the others); both buffers hold at least L doubles, `qd` at least D.
// Returns hi (keys j >= hi are all masked) and the row's sum of e in `z`.
int64_t row_exp(const HeadView& v, int64_t i, double* qd, double* t, double* e, double& z);

// Per-worker scratch for row_exp.
struct RowScratch {
  std::vector<double> qd, t, e;
  void size_for(const HeadView& v) {
    qd.resize(static_cast<size_t>(v.D));
    t.resize(static_cast<size_t>(v.L));
    e.resize(static_cast<size_t>(v.L));
  }
};

// Threads the statistics run on: the engine's pool, as many as a CPU run would use.
int stat_threads();

}  // namespace attnscope::analysis_detail
