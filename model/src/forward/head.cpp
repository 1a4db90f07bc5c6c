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
      // Eigen's vectorized exp (about 1 ulp) into an aligned scratch row, summed in double: the
      // row's log-sum-exp as accurate as a scalar double loop, in a fraction of its time (at
      // SmolLM's 49K vocabulary that loop was most of the forward's non-GEMM time). The scratch
      // keeps the packet/scalar split independent of where the row lies in memory, so the same
      // logits give the same nll whether they were kept whole or computed in chunks.
      thread_local Eigen::ArrayXf e;
      const Eigen::Map<const Eigen::ArrayXf> row(logits + (r - r0) * vocab, vocab);
      const float max = row.maxCoeff();
      e.resize(vocab);
      e = (row - max).exp();
      const double lse = double(max) + std::log(e.cast<double>().sum());
      nll[r] = lse - double(row[ids[size_t(r + 1)]]);
    }
  });
}

}  // namespace attnscope::forward_detail
