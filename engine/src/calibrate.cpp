// Device peaks for the roofline (calibrate.hpp): the host CPU's GEMM rate and streaming bandwidth
// measured with every thread busy at once, and a per-device JSON cache so that a machine is
// calibrated once, not at every start. docs/roofline.md explains the method and the cache.
#include "attnscope/calibrate.hpp"

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/large_alloc.hpp"
#include "cpu/eigen_types.hpp"
#include "host_info.hpp"
#include "io_detail.hpp"

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

std::string peak_cache_path() {
  namespace fs = std::filesystem;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  fs::path dir;
  if (const std::string d = env("ATTNSCOPE_CACHE_DIR"); !d.empty()) {
    dir = d;
  } else if (const std::string x = env("XDG_CACHE_HOME"); !x.empty() && fs::path(x).is_absolute()) {
    dir = fs::path(x) / "attnscope";  // the XDG spec ignores relative paths
  } else if (const std::string home = env("HOME"); !home.empty()) {
    dir = fs::path(home) / ".cache" / "attnscope";
  } else {
    std::error_code ec;
    dir = fs::temp_directory_path(ec) / "attnscope-cache";
  }
  return (dir / "peaks.json").string();
}

namespace {

using nlohmann::json;

constexpr const char* kCacheFormat = "attnscope device peaks";

json peak_to_json(const DevicePeak& p) {
  return {{"backend", p.backend}, {"device", p.device},
          {"gflops", p.gflops},   {"gbps", p.gbps},
          {"gemm", p.gemm},       {"copy", p.copy},
          {"seconds", p.seconds}, {"measured_at", p.measured_at}};
}

// nullopt for an entry that is not a complete, plausible peak (it is then dropped on rewrite).
std::optional<DevicePeak> peak_from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
  auto positive = [&](const char* k) {
    return j.contains(k) && j[k].is_number() && std::isfinite(j[k].get<double>()) &&
           j[k].get<double>() > 0;
  };
  if (!text("backend") || !text("device") || !positive("gflops") || !positive("gbps")) {
    return std::nullopt;
  }
  DevicePeak p;
  p.backend = j["backend"].get<std::string>();
  p.device = j["device"].get<std::string>();
  p.gflops = j["gflops"].get<double>();
  p.gbps = j["gbps"].get<double>();
  if (text("gemm")) p.gemm = j["gemm"].get<std::string>();
  if (text("copy")) p.copy = j["copy"].get<std::string>();
  if (j.contains("seconds") && j["seconds"].is_number()) p.seconds = j["seconds"].get<double>();
  if (text("measured_at")) p.measured_at = j["measured_at"].get<std::string>();
  return p;
}

// The valid entries of the cache file; an absent, unreadable or malformed file reads as empty.
std::vector<DevicePeak> read_cache(const std::string& path) {
  std::vector<DevicePeak> peaks;
  std::ifstream f(path, std::ios::binary);
  if (!f) return peaks;
  std::stringstream text;
  text << f.rdbuf();
  const json root = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!root.is_object() || !root.contains("peaks") || !root["peaks"].is_array()) return peaks;
  for (const json& e : root["peaks"]) {
    if (auto p = peak_from_json(e)) peaks.push_back(std::move(*p));
  }
  return peaks;
}

void write_cache(const std::string& path, const std::vector<DevicePeak>& peaks) {
  json list = json::array();
  for (const DevicePeak& p : peaks) list.push_back(peak_to_json(p));
  const json root = {{"format", kCacheFormat}, {"version", 1}, {"peaks", list}};
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  io::detail::write_atomically(path, [&](std::ostream& out) { out << root.dump(2) << "\n"; });
}

}  // namespace

std::vector<DevicePeak> cached_peaks() {
  std::vector<DevicePeak> peaks = read_cache(peak_cache_path());
  for (DevicePeak& p : peaks) p.cached = true;
  return peaks;
}

DevicePeak device_peak(Backend& backend, bool remeasure, const CancelToken& cancel) {
  const std::string path = peak_cache_path();
  const std::string name(backend.name());
  const std::string device = backend.device();
  auto same_key = [&](const DevicePeak& p) { return p.backend == name && p.device == device; };
  if (!remeasure) {
    for (DevicePeak& p : read_cache(path)) {
      if (!same_key(p)) continue;
      p.cached = true;
      return p;
    }
  }
  DevicePeak peak = backend.measure_peak(cancel);
  peak.backend = name;  // the cache key is what the backend says now, whatever measured it
  peak.device = device;
  peak.cached = false;
  // Re-read just before writing so that peaks another process cached meanwhile survive.
  std::vector<DevicePeak> peaks = read_cache(path);
  std::erase_if(peaks, same_key);
  peaks.push_back(peak);
  try {
    write_cache(path, peaks);
  } catch (const Error&) {
    // A read-only or missing cache directory costs a re-measurement next time, nothing more.
  }
  return peak;
}

std::string describe(const DevicePeak& peak) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << peak.backend << " (" << peak.device << "): " << peak.gflops << " GFLOP/s fp32 GEMM, "
    << peak.gbps << " GB/s copy";
  if (!peak.measured_at.empty()) {
    s << (peak.cached ? ", cached from " : ", measured ") << peak.measured_at;
  }
  return s.str();
}

}  // namespace attnscope
