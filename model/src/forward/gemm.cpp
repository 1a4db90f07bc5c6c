#include "forward/gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/parallel.hpp"

namespace attnscope::forward_detail {

namespace {

// cblas takes 32-bit sizes; every model dimension is far below, but a size read from a file must
// not wrap silently.
blasint blas_size(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw Error(std::string("matrix ") + what + " " + std::to_string(v) +
                " is beyond what BLAS addresses (2^31 - 1)");
  }
  return static_cast<blasint>(v);
}

// ATTNSCOPE_THREADS caps every CPU thread the engine uses; OpenBLAS keeps its own pool, so it is
// told the same number (without the variable, both default to the hardware's).
void apply_thread_limit() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("ATTNSCOPE_THREADS")) openblas_set_num_threads(default_threads());
  });
}

void sgemm(CBLAS_TRANSPOSE trans_w, const float* x, int64_t m, int64_t k, const float* w, int64_t n,
           float* y, bool accumulate) {
  if (m == 0 || n == 0) return;
  apply_thread_limit();
  const blasint bm = blas_size(m, "rows"), bn = blas_size(n, "columns"), bk = blas_size(k, "depth");
  const blasint ldw = trans_w == CblasTrans ? bk : bn;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_w, bm, bn, bk, 1.0f, x, bk, w, ldw,
              accumulate ? 1.0f : 0.0f, y, bn);
}

}  // namespace

void linear(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y,
            bool accumulate) {
  sgemm(CblasTrans, x, m, k, w, n, y, accumulate);
}

void conv1d(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y,
            bool accumulate) {
  sgemm(CblasNoTrans, x, m, k, w, n, y, accumulate);
}

void logits_rows(const float* hidden, int64_t L, int64_t d, const float* w, int64_t V, int64_t r0,
                 int64_t r1, float* out) {
  std::vector<float> part;  // a grid block only partly inside [r0, r1)
  for (int64_t b0 = r0 / kLogitRows * kLogitRows; b0 < r1; b0 += kLogitRows) {
    const int64_t b1 = std::min(L, b0 + kLogitRows);
    if (b0 >= r0 && b1 <= r1) {
      linear(hidden + b0 * d, b1 - b0, d, w, V, out + (b0 - r0) * V);
      continue;
    }
    part.resize(static_cast<size_t>((b1 - b0) * V));
    linear(hidden + b0 * d, b1 - b0, d, w, V, part.data());
    const int64_t c0 = std::max(b0, r0), c1 = std::min(b1, r1);
    std::copy(part.begin() + (c0 - b0) * V, part.begin() + (c1 - b0) * V, out + (c0 - r0) * V);
  }
}

}  // namespace attnscope::forward_detail
