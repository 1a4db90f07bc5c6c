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

// Query rows scored together, against blocks of kKeyBlock keys: the scores of a tile are one
// small float64 matrix product (Eigen) instead of rows x keys separate dot products.
inline constexpr int kTileRows = 16;
inline constexpr int64_t kKeyBlock = 128;

// Per-worker scratch: q rows in float64 [kTileRows, D], a key block [kKeyBlock, D], and t, e
// [kTileRows, L].
struct RowScratch {
  std::vector<double> qd, kd, t, e;
  void size_for(const HeadView& v) {
    qd.resize(static_cast<size_t>(kTileRows * v.D));
    kd.resize(static_cast<size_t>(kKeyBlock * v.D));
    t.resize(static_cast<size_t>(kTileRows * v.L));
    e.resize(static_cast<size_t>(kTileRows * v.L));
  }
};

// Rows i0 .. i0 + rows - 1 (rows <= kTileRows), row r at offset r * L of s.t and s.e:
// t[j] = s_ij - max_j s_ij and e[j] = exp(t[j]) for the keys j < hi[r] that row i sees (t = -inf,
// e = 0 for the others; keys j >= hi[r] are all masked), z[r] = the row's sum of e.
void tile_exp(const HeadView& v, int64_t i0, int rows, RowScratch& s, int64_t* hi, double* z);
// One row, at offset 0 of s.t and s.e; returns hi.
int64_t row_exp(const HeadView& v, int64_t i, RowScratch& s, double& z);

// Threads the statistics run on: the engine's pool, as many as a CPU run would use.
int stat_threads();

}  // namespace attnscope::analysis_detail
