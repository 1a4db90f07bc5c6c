#include "forward/gemm.hpp"

#include <cblas.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>

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

}  // namespace attnscope::forward_detail
