#include "core/score_range.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace attnscope::score_range {
namespace {

std::string sci(double x) {
  std::ostringstream s;
  s.precision(3);
  s << x;
  return s.str();
}

}  // namespace

double max_row_norm(const Tensor& t, int64_t col0, int64_t col1) {
  const int64_t width = t.shape().back(), rows = width ? t.numel() / width : 0;
  double best = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = t.data() + r * width;
    double sum = 0;
    for (int64_t c = col0; c < col1; ++c) sum += double(row[c]) * double(row[c]);
    best = std::max(best, sum);
  }
  return std::sqrt(best);
}
double max_row_norm(const Tensor& t) {
  return max_row_norm(t, 0, t.shape().back());
}

double max_matrix_norm(const Tensor& t) {
  const int64_t n = t.shape()[0], size = n ? t.numel() / n : 0;
  double best = 0;
  for (int64_t h = 0; h < n; ++h) {
    double sum = 0;
    for (int64_t i = 0; i < size; ++i)
      sum += double(t.data()[h * size + i]) * t.data()[h * size + i];
    best = std::max(best, sum);
  }
  return std::sqrt(best);
}

std::optional<std::string> too_large(double bound, const std::string& what) {
  if (bound <= kLimit) return std::nullopt;
  return "the inputs are too large for fp32 attention: " + what + " can reach " + sci(bound) +
         ", beyond the fp32 range (" + sci(std::numeric_limits<float>::max()) +
         "); rescale the inputs";
}

}  // namespace attnscope::score_range
