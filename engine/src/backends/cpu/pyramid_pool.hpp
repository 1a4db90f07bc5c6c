// Pooling a flash task's score tiles into the map pyramid (map_pyramid.hpp) while they exist.
// A task owns rows [i0, i1) of its G heads until its end, when their lse is final; until then each
// (row, cell) keeps the cell's largest score and its exp-sum relative to the row's running max at
// the cell's last update (`ref`), rescaled only when a later tile reaches the same cell after the
// max moved. At the end P_max = exp(smax - lse) and P_sum = z * exp(ref - lse), exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attnscope/map_pyramid.hpp"

namespace attnscope::cpu {

class PyramidPool {
 public:
  // Sizes the scratch for R stacked rows of one task; every cell starts untouched.
  void begin(const MapPyramid& p, int64_t R) {
    R_ = R;
    cols_ = p.cols;
    cell_cols_ = p.cell_cols;
    const size_t n = static_cast<size_t>(R * p.cols);
    smax_.assign(n, kNegInf);
    z_.assign(n, 0.0f);
    ref_.assign(n, kNegInf);
  }
  int64_t cell_of(int64_t j) const { return j / cell_cols_; }
  int64_t cell_end(int64_t cell) const { return (cell + 1) * cell_cols_; }
  // Cell-major scratch [cell][row]: a cell's update is contiguous across the stacked rows.
  float* smax(int64_t cell) { return smax_.data() + cell * R_; }

  // One tile's part of a cell for row r: its largest raw score (before the exp)...
  void merge_max(int64_t cell, int64_t r, float tile_max) {
    float& x = smax_[static_cast<size_t>(cell * R_ + r)];
    x = std::max(x, tile_max);
  }
  // ... and its sum of exp(s - m), m being the row's running max after this tile.
  void merge_sum(int64_t cell, int64_t r, float tile_sum, float m) {
    const size_t x = static_cast<size_t>(cell * R_ + r);
    if (ref_[x] != m) z_[x] = ref_[x] == kNegInf ? 0.0f : z_[x] * std::exp(ref_[x] - m);
    z_[x] += tile_sum;
    ref_[x] = m;
  }

  // Task end: row r of the scratch is query `row` of (b, h) with final lse `lse`.
  void finish_row(MapPyramid& p, int64_t b, int64_t h, int64_t row, int64_t r, float lse) const {
    if (!std::isfinite(lse)) return;  // a row that sees nothing: P = 0, the pyramid's initial value
    const int64_t base = p.offset(b, h) + (row / p.cell_rows) * p.cols;
    for (int64_t c = 0; c < cols_; ++c) {
      const size_t x = static_cast<size_t>(c * R_ + r);
      if (smax_[x] == kNegInf) continue;
      float& mx = p.max[static_cast<size_t>(base + c)];
      mx = std::max(mx, std::exp(smax_[x] - lse));
      p.sum[static_cast<size_t>(base + c)] += z_[x] * std::exp(ref_[x] - lse);
    }
  }

 private:
  static constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  int64_t R_ = 0, cols_ = 0, cell_cols_ = 1;
  std::vector<float> smax_, z_, ref_;
};

}  // namespace attnscope::cpu
