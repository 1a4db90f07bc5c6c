// The host CPU's roofline ceilings (Backend::measure_peak of "cpu" and "reference", and the
// benchmarks' roof): the faster fp32 GEMM of Eigen and OpenBLAS, and a triad's bandwidth from DRAM
// and from the last-level cache, all measured with every thread busy at once. Each ceiling is the
// best of several short repetitions that the OS did not disturb (contention is read from the
// threads' run-queue wait). docs/roofline.md explains the method.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
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

// ---- contention ----

std::atomic<double> g_contention_override{-1.0};

// The nanoseconds every thread of this process has spent runnable but waiting for a CPU (the 2nd
// field of /proc/self/task/*/schedstat); nullopt where the kernel does not say.
std::optional<double> run_queue_wait_ns() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it("/proc/self/task", ec), end;
  if (ec) return std::nullopt;
  double total = 0;
  bool any = false;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::ifstream f(it->path() / "schedstat");
    double on_cpu = 0, waiting = 0;
    if (f >> on_cpu >> waiting) {  // a thread that just exited has no file: skip it
      total += waiting;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return total;
}

// The 1-minute load average, or -1.
double load_average() {
  std::ifstream f("/proc/loadavg");
  double load = -1;
  if (!(f >> load)) return -1;
  return load;
}

// A repetition whose threads waited for a CPU longer than this fraction of their time was
// disturbed by other work: its rate says what a busy machine did, not what this one can do.
constexpr double kContended = 0.10;

// Measures how much of the team's time one repetition spent waiting for a CPU.
class ContentionMeter {
 public:
  explicit ContentionMeter(int threads) : threads_(threads) {
    // The test seam for processes a test starts (the CLI): ATTNSCOPE_TEST_CONTENTION=<fraction>.
    if (const char* env = std::getenv("ATTNSCOPE_TEST_CONTENTION"); env && *env) {
      char* end = nullptr;
      const double v = std::strtod(env, &end);
      if (end != env && v >= 0) env_override_ = v;
    }
    // Without schedstat, the load average before calibration stands in: what runs beyond the CPUs
    // the calibration leaves free (less half a CPU of background), per calibration thread.
    load_ = load_average();
    if (!run_queue_wait_ns() && load_ >= 0) {
      const double others = load_ - 0.5 - double(host::logical_cpus() - threads);
      fallback_ = std::clamp(others / threads, 0.0, 1.0);
    }
  }
  void begin() { wait0_ = run_queue_wait_ns(); }
  // The fraction of `threads` × `seconds` spent waiting since begin().
  double end(double seconds) const {
    const double forced = g_contention_override.load();
    if (forced >= 0) return forced;
    if (env_override_ >= 0) return env_override_;
    const std::optional<double> wait1 = run_queue_wait_ns();
    if (!wait0_ || !wait1 || seconds <= 0) return fallback_;
    return std::max(0.0, (*wait1 - *wait0_) * 1e-9) / (seconds * threads_);
  }
  double load() const { return load_; }
  bool from_schedstat() const { return fallback_ == 0 && run_queue_wait_ns().has_value(); }

 private:
  int threads_;
  double load_ = -1, fallback_ = 0, env_override_ = -1;
  std::optional<double> wait0_;
};

// ---- repetitions ----

// Time limits that keep a quiet calibration near two seconds on a 2-core machine, and a busy one
// bounded: a phase repeats for kPhaseBudgetS; without a clean repetition it pauses and tries again,
// kTries times in all.
constexpr int kMaxRepeats = 5;           // timed repeats per try (the best clean one counts)
constexpr int kMinRepeats = 2;           // ... but at least this many
constexpr double kPhaseBudgetS = 0.4;    // stop repeating once a try has used this much time
constexpr int kTries = 3;                // tries per phase while every repetition was contended
constexpr double kRetryPauseS = 0.25;    // between tries: let a burst of other work pass
constexpr double kLargeGemmMaxS = 0.25;  // use the larger GEMM when its predicted time is below

// What a phase measured: its best clean time, or its best disturbed one when no repetition was
// clean.
struct Phase {
  double seconds = INFINITY;
  bool clean = false;
  int repeats = 0, contended = 0, tries = 0;
  double worst = 0;  // the largest run-queue wait fraction seen
  std::string summary() const {
    std::ostringstream s;
    s << "best of " << repeats;
    if (contended > 0) s << ", " << contended << " contended";
    if (tries > 1) s << ", " << tries << " tries";
    return s.str();
  }
};

void pause_for(double seconds, const CancelToken& cancel) {
  const Clock::time_point t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    cancel.throw_if_cancelled();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Repeats `pass` (after one warm-up) and keeps the shortest time among the repetitions the OS did
// not disturb, polling cancel in between.
Phase best_of(Team& team, ContentionMeter& meter, const std::function<void(int)>& pass,
              const CancelToken& cancel, const std::function<void(double)>& progress) {
  cancel.throw_if_cancelled();
  team.run(pass);  // warm-up: caches, page tables, frequency ramp
  Phase phase;
  double best_any = INFINITY;
  for (int tri = 0; tri < kTries && !phase.clean; ++tri) {
    if (tri > 0) pause_for(kRetryPauseS, cancel);
    ++phase.tries;
    const Clock::time_point t0 = Clock::now();
    for (int r = 0; r < kMaxRepeats; ++r) {
      cancel.throw_if_cancelled();
      meter.begin();
      const double s = team.run(pass);
      const double waited = meter.end(s);
      ++phase.repeats;
      phase.worst = std::max(phase.worst, waited);
      best_any = std::min(best_any, s);
      if (waited > kContended) {
        ++phase.contended;
      } else {
        phase.clean = true;
        phase.seconds = std::min(phase.seconds, s);
      }
      progress(std::min(1.0, double(r + 1) / kMaxRepeats));
      if (r + 1 >= kMinRepeats && seconds_since(t0) > kPhaseBudgetS) break;
    }
  }
  if (!phase.clean) phase.seconds = best_any;
  return phase;
}

// ---- sizes ----

// Bytes the engine may use for a measurement: a quarter of what is available (MemAvailable, or
// ATTNSCOPE_MEMORY_LIMIT_MB when set).
int64_t memory_budget_for_probe() {
  constexpr int64_t MiB = int64_t{1} << 20;
  int64_t budget = host::memory_available_bytes();
  if (const char* env = std::getenv("ATTNSCOPE_MEMORY_LIMIT_MB")) {
    const long long mb = std::atoll(env);
    if (mb > 0) budget = std::min<int64_t>(budget > 0 ? budget : INT64_MAX, mb * MiB);
  }
  return budget > 0 ? budget / 4 : 256 * MiB;
}

// Bytes one triad array gets: 256 MiB, less when memory is short (the probe's budget for all
// three), never below 16 MiB.
int64_t triad_array_bytes() {
  constexpr int64_t MiB = int64_t{1} << 20;
  const int64_t bytes = std::min<int64_t>(256 * MiB, memory_budget_for_probe() / 3);
  return std::max<int64_t>(bytes / MiB, 16) * MiB;
}

std::string size_text(int64_t bytes) {
  if (bytes >= (int64_t{1} << 20) && bytes % (int64_t{1} << 20) == 0) {
    return std::to_string(bytes >> 20) + " MiB";
  }
  return std::to_string(bytes >> 10) + " KiB";
}

std::string rate_text(double v) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << v;
  return s.str();
}

// ---- OpenBLAS, loaded at run time ----

// The engine does not link a BLAS; the probe uses the system's OpenBLAS when it can load one, so
// the roof is the faster of the two libraries the project's GEMMs use (the model's run on
// OpenBLAS). Loading it here also lets the probe choose its kernels: Debian's 0.3.21 may not
// recognize a CPU with AVX-512, so OPENBLAS_CORETYPE=SkylakeX is set before the library is first
// loaded when the CPU has SkylakeX's AVX-512 subsets and the variable is unset.
struct OpenBlas {
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
  Sgemm sgemm = nullptr;
  void (*set_threads)(int) = nullptr;
  int (*get_threads)() = nullptr;
  std::string name;  // "OpenBLAS 0.3.21 cblas_sgemm (SkylakeX kernels)"
};

bool cpu_has_skylakex_avx512() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    int found = 0;
    for (std::string w; words >> w;) {
      found += w == "avx512f" || w == "avx512bw" || w == "avx512dq" || w == "avx512vl";
    }
    return found == 4;
  }
  return false;
}

std::optional<OpenBlas> load_openblas() {
  if (const char* off = std::getenv("ATTNSCOPE_PEAK_NO_OPENBLAS"); off && *off && *off != '0') {
    return std::nullopt;  // measure Eigen alone (comparisons, or a broken BLAS)
  }
  const char* names[] = {"libopenblas.so.0", "libopenblas.so"};
  void* h = nullptr;
  for (const char* n : names) {  // already in the process (the CLI links it): use that one
    if ((h = dlopen(n, RTLD_NOW | RTLD_NOLOAD))) break;
  }
  std::string coretype_note;
  if (!h) {
    if (!std::getenv("OPENBLAS_CORETYPE") && cpu_has_skylakex_avx512()) {
      setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
      coretype_note = ", OPENBLAS_CORETYPE=SkylakeX";
    }
    for (const char* n : names) {
      if ((h = dlopen(n, RTLD_NOW | RTLD_LOCAL))) break;
    }
  }
  if (!h) return std::nullopt;
  OpenBlas b;
  b.sgemm = reinterpret_cast<OpenBlas::Sgemm>(dlsym(h, "cblas_sgemm"));
  b.set_threads = reinterpret_cast<void (*)(int)>(dlsym(h, "openblas_set_num_threads"));
  b.get_threads = reinterpret_cast<int (*)()>(dlsym(h, "openblas_get_num_threads"));
  auto corename = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_corename"));
  auto config = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_config"));
  if (!b.sgemm || !b.set_threads || !b.get_threads) return std::nullopt;
  std::string version = "OpenBLAS";
  if (config) {  // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."
    std::istringstream words(config());
    std::string first, second;
    if (words >> first >> second) version = first + " " + second;
  }
  b.name = version + " cblas_sgemm (" + (corename ? std::string(corename()) : "default") +
           " kernels" + coretype_note + ")";
  return b;
}

const OpenBlas* openblas() {
  static const std::optional<OpenBlas> lib = load_openblas();
  return lib ? &*lib : nullptr;
}

std::string eigen_name() {
  return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." +
         std::to_string(EIGEN_MAJOR_VERSION) + "." + std::to_string(EIGEN_MINOR_VERSION);
}

// Contiguous, 16-float aligned slices of `count` floats, the last one takes the rest.
std::pair<int64_t, int64_t> slice_of(int64_t count, int threads, int t) {
  const int64_t per = (count / threads) & ~int64_t{15};
  const int64_t lo = per * t;
  return {lo, t + 1 == threads ? count : lo + per};
}

}  // namespace

void set_cpu_contention_override_for_testing(double fraction) {
  g_contention_override = fraction;
}

int64_t last_level_cache_bytes() {
  namespace fs = std::filesystem;
  int best_level = 0;
  int64_t bytes = 0;
  std::error_code ec;
  fs::directory_iterator it("/sys/devices/system/cpu/cpu0/cache", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind("index", 0) != 0) continue;
    int level = 0;
    std::string type, size;
    std::ifstream(it->path() / "level") >> level;
    std::ifstream(it->path() / "type") >> type;
    std::ifstream(it->path() / "size") >> size;  // "32768K"
    if (type == "Instruction" || size.empty() || level < best_level) continue;
    int64_t v = std::atoll(size.c_str());
    const char unit = size.back();
    if (unit == 'K') v <<= 10;
    if (unit == 'M') v <<= 20;
    if (v <= 0) continue;
    if (level > best_level || v > bytes) bytes = v;
    best_level = level;
  }
  return bytes;
}

DevicePeak measure_cpu_peak(int threads, const CancelToken& cancel) {
  if (threads < 1)
    throw Error("calibration needs at least 1 thread (got " + std::to_string(threads) + ")");
  const Clock::time_point start = Clock::now();
  Team team(threads);
  ContentionMeter meter(threads);
  const std::string on_threads = std::to_string(threads) + (threads == 1 ? " thread" : " threads");
  std::vector<Phase> phases;

  // GEMM, Eigen: each thread owns A, B, C (row-major fp32) and computes C = A B, as the fast
  // paths' tiles do.
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
  cancel.report(0.05);
  const Phase eigen =
      best_of(team, meter, gemm, cancel, [&](double f) { cancel.report(0.05 + 0.2 * f); });
  phases.push_back(eigen);
  const double eigen_gflops =
      2.0 * double(n) * double(n) * double(n) * threads / eigen.seconds / 1e9;
  const std::string eigen_text =
      eigen_name() + " " + std::to_string(n) + "^3 per thread, " + on_threads;
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
  // `passes` sweeps over the first `count` floats of each array; the scale is re-read every pass
  // so that the compiler cannot merge repeated sweeps.
  volatile float scale = 3.0f;
  auto triad_over = [&](int64_t count, int passes) {
    return std::function<void(int)>([&, count, passes](int t) {
      const auto [lo, hi] = slice_of(count, threads, t);
      float* __restrict pa = ta.get();
      const float* __restrict pb = tb.get();
      const float* __restrict pc = tc.get();
      for (int p = 0; p < passes; ++p) {
        const float s = scale;
        for (int64_t i = lo; i < hi; ++i) pa[i] = pb[i] + s * pc[i];
      }
    });
  };
  const int64_t count = array_bytes / 4;
  team.run([&](int t) {
    const auto [lo, hi] = slice_of(count, threads, t);
    std::fill(ta.get() + lo, ta.get() + hi, 0.0f);
    std::fill(tb.get() + lo, tb.get() + hi, 1.0f);
    std::fill(tc.get() + lo, tc.get() + hi, 2.0f);
  });
  cancel.report(0.3);
  const Phase dram = best_of(team, meter, triad_over(count, 1), cancel,
                             [&](double f) { cancel.report(0.3 + 0.2 * f); });
  phases.push_back(dram);

  // The same triad over a working set of half the last-level cache (all three arrays together),
  // swept many times per repetition: what a working set that stays in cache streams at.
  const int64_t llc = last_level_cache_bytes();
  double cache_gbps = 0;
  std::string cache_text;
  if (llc > 0) {
    const int64_t set_count = std::min<int64_t>(count, std::max<int64_t>(llc / 2 / 3 / 4, 1024));
    const int passes = int(std::clamp<int64_t>((int64_t{1} << 30) / (3 * 4 * set_count), 1, 4096));
    const Phase cached = best_of(team, meter, triad_over(set_count, passes), cancel,
                                 [&](double f) { cancel.report(0.5 + 0.2 * f); });
    phases.push_back(cached);
    cache_gbps = 3.0 * 4.0 * double(set_count) * passes / cached.seconds / 1e9;
    cache_text = "triad a = b + s*c, 3 x " + size_text(set_count * 4) + " in a " + size_text(llc) +
                 " last-level cache, " + on_threads;
  }
  sink = sink + ta[0] + ta[count - 1];
  ta.reset(), tb.reset(), tc.reset();

  // GEMM, OpenBLAS: one product on `threads` of its own threads (how the library runs a large
  // GEMM), measured last because its idle threads spin a while after each call.
  double gemm_gflops = eigen_gflops;
  std::string gemm_text = eigen_text;
  Phase gemm_phase = eigen;
  bool gemm_all_clean = eigen.clean;
  if (const OpenBlas* blas = openblas()) {
    const int before = blas->get_threads();
    blas->set_threads(threads);
    int bn = 1024;
    std::vector<float> ba, bb, bc;
    auto init_blas = [&] {
      ba.assign(size_t(bn) * bn, 1.0f / float(bn));
      bb.assign(size_t(bn) * bn, 0.5f);
      bc.assign(size_t(bn) * bn, 0.0f);
    };
    init_blas();
    const std::function<void(int)> product = [&](int t) {
      if (t == 0)
        blas->sgemm(101, 111, 111, bn, bn, bn, 1.0f, ba.data(), bn, bb.data(), bn, 0.0f, bc.data(),
                    bn);  // row major, no transposes
    };
    team.run(product);
    const int64_t large_bytes = 3 * int64_t{2048} * 2048 * 4;
    if (8 * team.run(product) < kLargeGemmMaxS && large_bytes <= memory_budget_for_probe()) {
      bn = 2048;
      init_blas();
    }
    cancel.report(0.75);
    Phase blas_phase;
    try {
      blas_phase =
          best_of(team, meter, product, cancel, [&](double f) { cancel.report(0.75 + 0.25 * f); });
    } catch (...) {
      blas->set_threads(before);
      throw;
    }
    blas->set_threads(before);
    sink = sink + bc.back();
    const double blas_gflops = 2.0 * double(bn) * bn * bn / blas_phase.seconds / 1e9;
    const std::string blas_text = blas->name + " " + std::to_string(bn) + "^3 on " + on_threads;
    // The faster library is the roof, the other recorded beside it. Either one disturbed makes
    // the peak unreliable (below): a disturbed loser might have won undisturbed, and a roof under
    // a rate just observed must never be remembered.
    const bool blas_wins = blas_gflops > eigen_gflops;
    gemm_all_clean = gemm_all_clean && blas_phase.clean;
    if (blas_wins) {
      gemm_gflops = blas_gflops;
      gemm_text = blas_text + "; " + eigen_text + ": " + rate_text(eigen_gflops) + " GFLOP/s";
      gemm_phase = blas_phase;
    } else {
      gemm_text += "; " + blas_text + ": " + rate_text(blas_gflops) + " GFLOP/s";
    }
    phases.push_back(blas_phase);
  }
  (void)sink;

  DevicePeak peak;
  peak.backend = "cpu";
  peak.device = host::cpu_model() + ", " + on_threads;
  peak.cpu_model = host::cpu_model();
  peak.gflops = gemm_gflops;
  peak.gbps = 3.0 * 4.0 * double(count) / dram.seconds / 1e9;
  peak.gemm = "SGEMM " + gemm_text;
  peak.copy = "triad a = b + s*c, 3 x " + size_text(array_bytes) + ", " + on_threads;
  peak.cache_gbps = cache_gbps;
  peak.cache_bytes = llc;
  peak.cache_copy = cache_text;
  // Reliable when each roof came from a repetition nobody disturbed, both GEMM libraries included.
  const Phase* cache_phase = llc > 0 ? &phases[2] : nullptr;
  peak.reliable = gemm_all_clean && dram.clean && (!cache_phase || cache_phase->clean);
  double worst = 0;
  for (const Phase& p : phases) worst = std::max(worst, p.worst);
  std::ostringstream how;
  how.setf(std::ios::fixed);
  how.precision(0);
  how << (meter.from_schedstat() ? "run-queue wait" : "estimated wait (load average)") << " up to "
      << 100 * worst << "% of thread time (over " << 100 * kContended << "% is contended); GEMM "
      << gemm_phase.summary() << ", triad " << dram.summary();
  if (cache_phase) how << ", cache triad " << cache_phase->summary();
  how.precision(2);
  if (meter.load() >= 0)
    how << "; load " << meter.load() << " on " << host::logical_cpus() << " CPUs";
  if (!peak.reliable) how << "; unreliable: no undisturbed repetition after " << kTries << " tries";
  peak.contention = how.str();
  peak.seconds = seconds_since(start);
  peak.measured_at = host::utc_now_iso8601();
  return peak;
}

}  // namespace attnscope
