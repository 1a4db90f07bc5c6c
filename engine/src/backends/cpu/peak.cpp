// The cpu backend's roofline ceilings (Backend::measure_peak of "cpu" and "reference"): the host
// CPU's GEMM rate and streaming bandwidth measured with every thread busy at once.
// docs/roofline.md explains the method.
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "attnscope/cpu_backend.hpp"
#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/large_alloc.hpp"
#include "backends/cpu/eigen_types.hpp"

namespace attnscope {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// `n` threads (the caller is thread 0) that run one job at a time, all starting together at a
// barrier, so a phase's wall time is the time until the slowest thread finished: aggregate rates
// are measured with every core busy, as attention runs.
class Team {
 public:
  explicit Team(int n) : start_(n), end_(n) {
    for (int i = 1; i < n; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~Team() {
    stop_ = true;
    start_.arrive_and_wait();
    for (std::thread& t : threads_) t.join();
  }
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  // Runs job(thread) on every thread; returns the wall seconds from the common start to the last
  // finish. Jobs must not throw.
  double run(const std::function<void(int)>& job) {
    job_ = &job;
    start_.arrive_and_wait();
    const Clock::time_point t0 = Clock::now();
    job(0);
    end_.arrive_and_wait();
    return seconds_since(t0);
  }

 private:
  void loop(int index) {
    for (;;) {
      start_.arrive_and_wait();  // the barrier orders job_ and stop_ with the caller's writes
      if (stop_) return;
      (*job_)(index);
      end_.arrive_and_wait();
    }
  }

  std::barrier<> start_, end_;
  const std::function<void(int)>* job_ = nullptr;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Time limits that keep the whole calibration near a second on a 2-core machine.
constexpr int kMaxRepeats = 5;           // timed repeats per measurement (best one counts)
constexpr int kMinRepeats = 2;           // ... but at least this many
constexpr double kPhaseBudgetS = 0.6;    // stop repeating once a phase has used this much time
constexpr double kLargeGemmMaxS = 0.25;  // use 1024^3 when its predicted time is below this

// Repeats `pass` (after one warm-up) and returns the shortest time, polling cancel in between.
double best_of(Team& team, const std::function<void(int)>& pass, const CancelToken& cancel,
               const std::function<void(double)>& progress) {
  cancel.throw_if_cancelled();
  team.run(pass);  // warm-up: caches, page tables, frequency ramp
  double best = INFINITY;
  const Clock::time_point t0 = Clock::now();
  for (int r = 0; r < kMaxRepeats; ++r) {
    cancel.throw_if_cancelled();
    best = std::min(best, team.run(pass));
    progress(double(r + 1) / kMaxRepeats);
    if (r + 1 >= kMinRepeats && seconds_since(t0) > kPhaseBudgetS) break;
  }
  return best;
}

// Bytes one triad array gets: 256 MiB, less when memory is short (a quarter of what is
// available for all three, or of ATTNSCOPE_MEMORY_LIMIT_MB), never below 16 MiB.
int64_t triad_array_bytes() {
  constexpr int64_t MiB = int64_t{1} << 20;
  int64_t budget = host::memory_available_bytes();
  if (const char* env = std::getenv("ATTNSCOPE_MEMORY_LIMIT_MB")) {
    const long long mb = std::atoll(env);
    if (mb > 0) budget = std::min<int64_t>(budget > 0 ? budget : INT64_MAX, mb * MiB);
  }
  int64_t bytes = 256 * MiB;
  if (budget > 0) bytes = std::min(bytes, budget / 4 / 3);
  return std::max<int64_t>(bytes / MiB, 16) * MiB;
}

std::string mib_text(int64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

DevicePeak measure_cpu_peak(int threads, const CancelToken& cancel) {
  if (threads < 1)
    throw Error("calibration needs at least 1 thread (got " + std::to_string(threads) + ")");
  const Clock::time_point start = Clock::now();
  Team team(threads);
  const std::string on_threads = std::to_string(threads) + (threads == 1 ? " thread" : " threads");

  // GEMM: each thread owns A, B, C (row-major fp32) and computes C = A B with Eigen.
  using cpu::MatrixR;
  std::vector<MatrixR> a(threads), b(threads), c(threads);
  Eigen::Index n = 512;
  auto init_gemm = [&](int t) {
    a[t] = MatrixR::Constant(n, n, 1.0f / float(n));
    b[t] = MatrixR::Constant(n, n, 0.5f);
    c[t] = MatrixR::Zero(n, n);
  };
  const std::function<void(int)> gemm = [&](int t) { c[t].noalias() = a[t] * b[t]; };
  team.run(init_gemm);
  // One small multiply decides the size: 1024^3 when it predicts a short run, else 512^3 (slow or
  // heavily shared machines).
  team.run(gemm);
  if (8 * team.run(gemm) < kLargeGemmMaxS) {
    n = 1024;
    team.run(init_gemm);
  }
  cancel.report(0.1);
  const double gemm_s =
      best_of(team, gemm, cancel, [&](double f) { cancel.report(0.1 + 0.3 * f); });
  const double gemm_flops = 2.0 * double(n) * double(n) * double(n) * threads;
  volatile float sink = 0;
  for (const MatrixR& m : c) sink = sink + m(n - 1, n - 1);
  a.clear(), b.clear(), c.clear();

  // Triad a = b + s*c over three large arrays; each thread touches (first) and streams its slice.
  int64_t array_bytes = triad_array_bytes();
  // The same storage as tensors and KV-cache chunks (large_alloc.hpp), so decode's fraction of
  // this bandwidth compares like with like.
  LargeFloats ta, tb, tc;
  for (;;) {
    try {
      ta = make_large_floats(size_t(array_bytes) / sizeof(float));
      tb = make_large_floats(size_t(array_bytes) / sizeof(float));
      tc = make_large_floats(size_t(array_bytes) / sizeof(float));
      break;
    } catch (const std::bad_alloc&) {
      ta.reset(), tb.reset(), tc.reset();
      if (array_bytes <= (int64_t{16} << 20)) {
        throw Error("not enough memory to measure the memory bandwidth (needs 3 x 16 MiB)");
      }
      array_bytes /= 2;
    }
  }
  const int64_t count = array_bytes / 4;
  auto slice = [&](int t) {  // 16-float aligned slices, the last one takes the rest
    const int64_t per = (count / threads) & ~int64_t{15};
    const int64_t lo = per * t;
    return std::pair<int64_t, int64_t>(lo, t + 1 == threads ? count : lo + per);
  };
  team.run([&](int t) {
    const auto [lo, hi] = slice(t);
    std::fill(ta.get() + lo, ta.get() + hi, 0.0f);
    std::fill(tb.get() + lo, tb.get() + hi, 1.0f);
    std::fill(tc.get() + lo, tc.get() + hi, 2.0f);
  });
  cancel.report(0.5);
  const std::function<void(int)> triad = [&](int t) {
    const auto [lo, hi] = slice(t);
    float* __restrict pa = ta.get();
    const float* __restrict pb = tb.get();
    const float* __restrict pc = tc.get();
    const float s = 3.0f;
    for (int64_t i = lo; i < hi; ++i) pa[i] = pb[i] + s * pc[i];
  };
  const double triad_s =
      best_of(team, triad, cancel, [&](double f) { cancel.report(0.5 + 0.5 * f); });
  sink = sink + ta[0] + ta[count - 1];
  (void)sink;

  DevicePeak peak;
  peak.backend = "cpu";
  peak.device = host::cpu_model() + ", " + on_threads;
  peak.gflops = gemm_flops / gemm_s / 1e9;
  peak.gbps = 3.0 * 4.0 * double(count) / triad_s / 1e9;
  peak.gemm = "Eigen SGEMM " + std::to_string(n) + "^3 per thread, " + on_threads;
  peak.copy = "triad a = b + s*c, 3 x " + mib_text(array_bytes) + ", " + on_threads;
  peak.seconds = seconds_since(start);
  peak.measured_at = host::utc_now_iso8601();
  return peak;
}

}  // namespace attnscope
