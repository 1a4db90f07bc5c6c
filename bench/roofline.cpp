// Roofline probes (see roofline.hpp). SGEMM through OpenBLAS, the peer every attention kernel is
// judged against; the triad runs on our own thread pool-free std::threads to stay independent.
#include "roofline.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#ifdef ATTNSCOPE_HAVE_OPENBLAS
#include <cblas.h>
#else
#include <Eigen/Core>
#endif

namespace attnscope::bench {

const char* sgemm_provider() {
#ifdef ATTNSCOPE_HAVE_OPENBLAS
  return "OpenBLAS cblas_sgemm";
#else
  return "Eigen GEMM";
#endif
}

double sgemm_gflops(int threads, int n) {
  std::vector<float> a(size_t(n) * n, 1.0f), b(size_t(n) * n, 0.5f), c(size_t(n) * n);
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
#ifdef ATTNSCOPE_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
#else
    (void)threads;
    using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<M>(c.data(), n, n).noalias() =
        Eigen::Map<M>(a.data(), n, n) * Eigen::Map<M>(b.data(), n, n);
#endif
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 2.0 * n * double(n) * n / s / 1e9);
  }
  return best;
}

double triad_gbps(int threads) {
  const size_t n = size_t(64) << 20;  // 64 Mi floats = 256 MiB per array
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        for (size_t i = lo; i < hi; ++i) a[i] = b[i] + 3.0f * c[i];
      });
    }
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 3.0 * n * sizeof(float) / s / 1e9);
  }
  return best;
}

}  // namespace attnscope::bench
