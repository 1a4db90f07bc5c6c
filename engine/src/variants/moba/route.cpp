// MoBA's decode routing on the cpu backend: the shared paged softmax decode asks it which blocks a
// query attends to (VariantInfo::route).
#include <algorithm>
#include <cmath>
#include <utility>

#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "variants/moba/moba.hpp"

namespace attnscope::cpu {

// MoBA's routing for one head at context L: the own block plus the top_k - 1 best complete past
// blocks by q · mean (ties to the lower block), ascending. Scores are float64 from the cached fp32
// means; where the cut falls between near-equal scores the candidates are re-scored from the keys
// themselves in float64, as the reference does, so decode routes exactly like the full run.
std::vector<int64_t> moba_route(const PagedKvCache& cache, const AttentionProblem& p,
                                std::span<const int32_t> pages, std::span<const float> means,
                                const float* q, int64_t g, int64_t L) {
  const int64_t bs = p.moba.block_size, Dk = p.shape.head_dim, Hkv = p.shape.kv_heads;
  const int64_t own = (L - 1) / bs;
  const int64_t want = std::min(p.moba.top_k - 1, own);
  std::vector<int64_t> chosen;
  if (want > 0) {
    std::vector<std::pair<double, int64_t>> score(static_cast<size_t>(own));
    for (int64_t c = 0; c < own; ++c) {
      const float* mean = means.data() + (c * Hkv + g) * Dk;
      double s = 0;
      for (int64_t d = 0; d < Dk; ++d) s += double(q[d]) * mean[d];
      score[size_t(c)] = {s, c};
    }
    auto better = [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    std::sort(score.begin(), score.end(), better);
    if (want < own) {
      const double cut = score[size_t(want - 1)].first, next = score[size_t(want)].first;
      const double tol = 1e-5 * (std::abs(cut) + std::abs(next) + 1e-30);
      if (cut - next <= tol) {
        const int64_t ps = cache.page_size();
        for (auto& [s, c] : score) {
          if (std::abs(s - cut) > 4 * tol) continue;
          double exact = 0;
          for (int64_t d = 0; d < Dk; ++d) {
            double sum = 0;
            for (int64_t j = c * bs; j < (c + 1) * bs; ++j) {
              sum += cache.rows(pages[size_t(j / ps)], 0, g)[(j % ps) * Dk + d];
            }
            exact += double(q[d]) * (sum / double(bs));
          }
          s = exact;
        }
        std::sort(score.begin(), score.end(), better);
      }
    }
    for (int64_t i = 0; i < want; ++i) chosen.push_back(score[size_t(i)].second);
  }
  chosen.push_back(own);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace attnscope::cpu
