// What the oracle implementations share (each variant's lives in its module: plain loops, float64
// accumulation, never optimized), and the reference backend that runs them.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::reference {

// The reference backend (reference/backend.cpp), listed by the registry.
BackendInfo backend_info();

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Turns logits s (masked entries = -inf) into probabilities in place and returns the natural
// log-sum-exp. A row with no visible key stays all-zero and returns -inf (docs/conventions.md).
inline double softmax_in_place(std::vector<double>& s) {
  double m = kNegInf;
  for (double x : s) m = std::max(m, x);
  if (m == kNegInf) {
    std::fill(s.begin(), s.end(), 0.0);
    return kNegInf;
  }
  double sum = 0;
  for (double& x : s) {
    x = (x == kNegInf) ? 0.0 : std::exp(x - m);
    sum += x;
  }
  for (double& x : s) x /= sum;
  return m + std::log(sum);
}

// Turns a tile of raw scores q·k (rows [i0, i0 + rows) x keys [j0, j0 + cols), row-major) into
// probabilities exp(s·scale − lse_i) under the problem's KeyMask; masked entries and rows that saw
// nothing become 0. Shared by the map tiles of every masked-softmax variant.
void scores_to_probabilities(const AttentionProblem& p, const RunResult& res, int64_t b, int64_t h,
                             int64_t i0, int64_t rows, int64_t j0, int64_t cols, float* tile);

// o and lse tensors shaped for the problem: o [B, H, Lq, Dv], lse [B, H, Lq].
RunResult make_softmax_result(const AttentionProblem& p);

}  // namespace attnscope::reference
