// Helpers shared by the CUDA test files: the skip-without-device guard, the project's fp32
// comparison rule, exact index comparison, and MoBA's gate gap (inputs with near-tied gates may
// legitimately select differently in fp32, so tests regenerate them).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cuda/device.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

// Without a usable device the test is skipped (CTest shows it as Skipped) and says why.
#define REQUIRE_CUDA_DEVICE()                                               \
  do {                                                                      \
    const Support device_ = attnscope::cuda::device_available();            \
    if (!device_.ok) GTEST_SKIP() << "no CUDA device: " << device_.why_not; \
  } while (0)

namespace attnscope::cuda_test {

// The project's fp32 rule: |got - want| <= 1e-5 (1 + |want|) per element; -inf only where want
// is -inf; NaN never. Reports the worst element.
inline ::testing::AssertionResult all_close(const char* what, const Tensor& got,
                                            const Tensor& want) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << what << ": shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  }
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data()[i], w = want.data()[i];
    if (std::isinf(w) || std::isinf(g) || std::isnan(g)) {
      if (g == w) continue;
      return ::testing::AssertionFailure() << what << "[" << i << "] = " << g << ", want " << w;
    }
    const double excess = std::fabs(g - w) / (1.0 + std::fabs(w));
    if (excess > worst) worst = excess, at = i;
  }
  if (worst > 1e-5) {
    return ::testing::AssertionFailure()
           << what << "[" << at << "] = " << got.data()[at] << ", want " << want.data()[at]
           << " (error " << worst << " x (1 + |want|))";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult same(const char* what, const IndexTensor& got,
                                       const IndexTensor& want) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << what << ": shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (got.data()[i] != want.data()[i]) {
      return ::testing::AssertionFailure()
             << what << "[" << i << "] = " << got.data()[i] << ", want " << want.data()[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Smallest gap, over rows that need ranking, between the weakest selected past block and the
// strongest unselected one, in float64. fp32 gates may order blocks closer than this differently.
inline double min_gate_gap(const AttentionProblem& p, const Inputs& in) {
  const ProblemShape& s = p.shape;
  const int64_t bs = p.moba.block_size, blocks = (s.kv_len + bs - 1) / bs;
  const int64_t group = s.heads / s.kv_heads;
  const Tensor& q = in.at("q");
  const Tensor& k = in.at("k");
  double gap = INFINITY;
  std::vector<double> mean(size_t(blocks * s.head_dim));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const float* kb = k.data() + (b * s.kv_heads + h / group) * s.kv_len * s.head_dim;
      std::fill(mean.begin(), mean.end(), 0.0);
      for (int64_t c = 0; c < blocks; ++c) {
        const int64_t lo = c * bs, hi = std::min(s.kv_len, lo + bs);
        for (int64_t j = lo; j < hi; ++j) {
          for (int64_t d = 0; d < s.head_dim; ++d)
            mean[c * s.head_dim + d] += kb[j * s.head_dim + d];
        }
        for (int64_t d = 0; d < s.head_dim; ++d) mean[c * s.head_dim + d] /= double(hi - lo);
      }
      for (int64_t i = 0; i < s.q_len; ++i) {
        const int64_t pos = p.query_position(i);
        if (pos < 0) continue;
        const int64_t own = pos / bs, ranked = std::min(p.moba.top_k - 1, own);
        if (ranked == own || ranked == 0) continue;
        const float* qi = q.data() + ((b * s.heads + h) * s.q_len + i) * s.head_dim;
        std::vector<double> score(static_cast<size_t>(own), 0.0);
        for (int64_t c = 0; c < own; ++c) {
          for (int64_t d = 0; d < s.head_dim; ++d)
            score[c] += double(qi[d]) * mean[c * s.head_dim + d];
        }
        std::sort(score.begin(), score.end(), std::greater<>());
        gap = std::min(gap, score[ranked - 1] - score[ranked]);
      }
    }
  }
  return gap;
}

}  // namespace attnscope::cuda_test
