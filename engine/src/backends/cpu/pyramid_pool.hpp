// Pooling a flash task's score tiles into the map pyramid (map_pyramid.hpp) while they exist.
// A task owns rows [i0, i1) of its G heads until its end, when their lse is final; until then each
// (cell, row) keeps the cell's largest score and its exp-sum relative to the row's running max at
// the cell's last update (`ref`), rescaled only when a later tile reaches the same cell after the
// max moved. At the end P_max = exp(smax - lse) and P_sum = z * exp(ref - lse), exactly.
//
// Cost: a cell's scratch is initialized on its first touch and only touched cells are finished,
// both as vectors across the task's rows, so a causal task pays for the cells it sees, not 2048.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attnscope/map_pyramid.hpp"

namespace attnscope::cpu {

class PyramidPool {
 public:
  using Row = Eigen::Map<Eigen::Array<float, 1, Eigen::Dynamic>>;

  // Sizes the scratch for R stacked rows of one task; every cell starts untouched.
  void begin(const MapPyramid& p, int64_t R) {
    R_ = R;
    cell_cols_ = p.cell_cols;
    const size_t n = static_cast<size_t>(R * p.cols);
    if (smax_.size() < n) {
      smax_.resize(n);
      z_.resize(n);
      ref_.resize(n);
    }
    state_.assign(static_cast<size_t>(p.cols), kUntouched);
    lo_ = p.cols;
    hi_ = 0;
  }
  int64_t cell_of(int64_t j) const { return j / cell_cols_; }
  int64_t cell_end(int64_t cell) const { return (cell + 1) * cell_cols_; }

  // The cell's largest scores across the rows (cell-major scratch: contiguous over rows), -inf
  // until a tile raises them.
  Row smax(int64_t cell) {
    if (state_[cell] == kUntouched) {
      Row(smax_.data() + cell * R_, R_).setConstant(kNegInf);
      state_[cell] = kMax;
      lo_ = std::min(lo_, cell);
      hi_ = std::max(hi_, cell + 1);
    }
    return Row(smax_.data() + cell * R_, R_);
  }
  // One row's part: its largest raw score in the cell (before the exp).
  void merge_max(int64_t cell, int64_t r, float tile_max) {
    float& x = smax(cell)[r];
    x = std::max(x, tile_max);
  }
  // The tile's exp-sums of a cell for all rows, relative to the rows' running max m after the
  // tile. The first contribution is a copy; a later one rescales what the cell held.
  void merge_sums(int64_t cell, const float* tile_sum, const float* m) {
    float* z = z_.data() + cell * R_;
    float* ref = ref_.data() + cell * R_;
    if (state_[cell] != kSum) {
      std::copy(tile_sum, tile_sum + R_, z);
      std::copy(m, m + R_, ref);
      state_[cell] = kSum;
      return;
    }
    for (int64_t r = 0; r < R_; ++r) merge_one(z[r], ref[r], tile_sum[r], m[r]);
  }
  // One row's part (the few-rows path, row by row); merge_sums' rule for a single row.
  void merge_sum(int64_t cell, int64_t r, float tile_sum, float m) {
    float* z = z_.data() + cell * R_;
    float* ref = ref_.data() + cell * R_;
    if (state_[cell] != kSum) {
      std::fill(z, z + R_, 0.0f);
      std::fill(ref, ref + R_, kNegInf);
      state_[cell] = kSum;
    }
    merge_one(z[r], ref[r], tile_sum, m);
  }

  // Task end. Stacked row r is query i0 + r % nr of head kvh * G + r / nr; `lse` holds the R
  // rows' final lse. The task owns whole cell rows (cell_rows divides its row blocks), so each
  // block of (up to) cell_rows stacked rows pools into one pyramid cell per touched column: the
  // block's max of smax - lse (one exp per block) and its sum of z * exp(ref - lse) (vectorized
  // exps).
  void finish(MapPyramid& p, int64_t b, int64_t kvh, int64_t G, int64_t i0, int64_t nr,
              const float* lse) {
    lse_.resize(static_cast<size_t>(R_));
    psum_.resize(static_cast<size_t>(R_));
    // A row that saw nothing has P = 0: +inf makes every exp below 0.
    for (int64_t r = 0; r < R_; ++r) lse_[r] = std::isfinite(lse[r]) ? lse[r] : kPosInf;
    // Blocks of up to cell_rows stacked rows, per head (the last row block may end early).
    const int64_t cr = p.cell_rows;
    block_.clear();
    dst_.clear();
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t start = 0; start < nr; start += cr) {
        block_.push_back(g * nr + start);
        dst_.push_back(p.offset(b, kvh * G + g) + ((i0 + start) / cr) * p.cols);
      }
      block_.push_back(g * nr + nr);  // end marker of this head's last block
      dst_.push_back(-1);
    }
    const Row l(lse_.data(), R_);
    Row psum(psum_.data(), R_);
    float* const max_out = p.max.data();
    float* const sum_out = p.sum.data();
    for (int64_t c = lo_; c < hi_; ++c) {
      if (state_[c] == kUntouched) continue;
      const float* sm = smax_.data() + c * R_;
      const bool sums = state_[c] == kSum;  // else every score in it was masked
      if (sums) psum = Row(z_.data() + c * R_, R_) * (Row(ref_.data() + c * R_, R_) - l).exp();
      for (size_t k = 0; k + 1 < block_.size(); ++k) {
        if (dst_[k] < 0) continue;  // a head's end marker
        const int64_t r0 = block_[k], n = std::min(block_[k + 1], r0 + cr) - r0;
        const float mx = (Row(const_cast<float*>(sm) + r0, n) - l.segment(r0, n)).maxCoeff();
        const float sum = sums ? psum.segment(r0, n).sum() : 0.0f;
        const int64_t x = dst_[k] + c;
        if (mx != kNegInf) max_out[x] = std::max(max_out[x], std::exp(mx));
        sum_out[x] += sum;
      }
    }
  }

 private:
  static constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  static constexpr float kPosInf = std::numeric_limits<float>::infinity();
  enum : char { kUntouched, kMax, kSum };

  static void merge_one(float& z, float& ref, float tile_sum, float m) {
    if (ref != m) z = ref == kNegInf ? 0.0f : z * std::exp(ref - m);
    z += tile_sum;
    ref = m;
  }

  int64_t R_ = 0, cell_cols_ = 1, lo_ = 0, hi_ = 0;
  std::vector<float> smax_, z_, ref_, lse_, psum_;
  std::vector<int64_t> block_, dst_;  // finish's row blocks: first stacked row, pyramid row
  std::vector<char> state_;
};

}  // namespace attnscope::cpu
