// Roofline probes (see roofline.hpp): one call of the engine's measure_cpu_peak, so the benchmarks
// measure exactly as the calibration does (best of clean repetitions, the faster GEMM library).
#include "roofline.hpp"

#include <map>
#include <mutex>

#include "attnscope/cpu_backend.hpp"

namespace attnscope::bench {

const DevicePeak& roofline_peak(int threads) {
  static std::mutex mutex;
  static std::map<int, DevicePeak> peaks;
  const std::lock_guard lock(mutex);
  auto it = peaks.find(threads);
  if (it == peaks.end()) it = peaks.emplace(threads, measure_cpu_peak(threads)).first;
  return it->second;
}

double sgemm_gflops(int threads) {
  return roofline_peak(threads).gflops;
}

double triad_gbps(int threads) {
  return roofline_peak(threads).gbps;
}

std::string sgemm_provider(int threads) {
  return roofline_peak(threads).gemm;
}

}  // namespace attnscope::bench
