#include "forward/head.hpp"

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
      const float* row = logits + (r - r0) * vocab;
      double max = -INFINITY;
      for (int64_t j = 0; j < vocab; ++j) max = std::max(max, double(row[j]));
      double sum = 0;
      for (int64_t j = 0; j < vocab; ++j) sum += std::exp(double(row[j]) - max);
      const double lse = max + std::log(sum);
      nll[r] = lse - double(row[ids[size_t(r + 1)]]);
    }
  });
}

}  // namespace attnscope::forward_detail
