// Log-sum-exp merge of partial attention results (see merge.hpp).
#include "attnscope/merge.hpp"

#include <cmath>
#include <limits>

#include "attnscope/error.hpp"

namespace attnscope {

void merge_row(std::span<float> o_acc, float& lse_acc, std::span<const float> o_part,
               float lse_part) {
  // An empty part (-inf) changes nothing; this also keeps -inf - (-inf) = NaN out of the math.
  if (lse_part == -std::numeric_limits<float>::infinity()) return;
  if (lse_acc == -std::numeric_limits<float>::infinity()) {
    std::copy(o_part.begin(), o_part.end(), o_acc.begin());
    lse_acc = lse_part;
    return;
  }
  const float m = std::max(lse_acc, lse_part);
  const float wa = std::exp(lse_acc - m);
  const float wb = std::exp(lse_part - m);
  const float inv = 1.0f / (wa + wb);
  for (size_t d = 0; d < o_acc.size(); ++d) o_acc[d] = (wa * o_acc[d] + wb * o_part[d]) * inv;
  lse_acc = m + std::log(wa + wb);
}

void merge_partials(Tensor& o_acc, Tensor& lse_acc, const Tensor& o_part, const Tensor& lse_part) {
  if (o_acc.shape() != o_part.shape() || lse_acc.shape() != lse_part.shape() ||
      lse_acc.numel() == 0 || o_acc.numel() % lse_acc.numel() != 0) {
    throw Error("merge_partials: mismatched partial shapes " + shape_str(o_acc.shape()) + " / " +
                shape_str(o_part.shape()));
  }
  const int64_t rows = lse_acc.numel();
  const int64_t dv = o_acc.numel() / rows;
  for (int64_t r = 0; r < rows; ++r) {
    merge_row(std::span<float>(o_acc.data() + r * dv, static_cast<size_t>(dv)), lse_acc.data()[r],
              std::span<const float>(o_part.data() + r * dv, static_cast<size_t>(dv)),
              lse_part.data()[r]);
  }
}

}  // namespace attnscope
