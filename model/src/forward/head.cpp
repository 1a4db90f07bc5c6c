#include "forward/head.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "forward/ops.hpp"

namespace attnscope::forward_detail {

void next_token_nll(const float* logits, int64_t r0, int64_t r1, int64_t vocab,
                    std::span<const int32_t> ids, double* nll) {
  const int64_t last = std::min<int64_t>(r1, static_cast<int64_t>(ids.size()) - 1);
  if (last <= r0) return;
  for_rows(last - r0, vocab, [&](int64_t a, int64_t b) {
    for (int64_t r = r0 + a; r < r0 + b; ++r) {
      // Eigen's vectorized exp (about 1 ulp) over the row, its tree-shaped sum: the row's
      // log-sum-exp to ~1e-7 relative in a fraction of the time a scalar double exp per logit
      // takes (at SmolLM's 49K vocabulary that loop was most of the forward's non-GEMM time).
      const Eigen::Map<const Eigen::ArrayXf> row(logits + (r - r0) * vocab, vocab);
      const float max = row.maxCoeff();
      const double sum = static_cast<double>((row - max).exp().sum());
      const double lse = double(max) + std::log(sum);
      nll[r] = lse - double(row[ids[size_t(r + 1)]]);
    }
  });
}

}  // namespace attnscope::forward_detail
