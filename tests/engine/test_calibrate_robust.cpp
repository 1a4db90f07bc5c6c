// An honest roofline: a calibration disturbed by other work is not remembered as the roof (under
// injected contention and under a real load of spinning processes), the cache is keyed by CPU
// model and reads old formats without trusting them, and a run is placed against the roof that
// applies to its working set (DRAM or last-level cache) and flagged when it lies above it. No
// timing is asserted: contention comes from a test seam or from a load that keeps every core's
// run queue twice as long as its CPUs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "attnscope/calibrate.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "env_guard.hpp"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using test::EnvGuard;

fs::path fresh_dir(const std::string& name) {
  const fs::path d =
      fs::path(ATTNSCOPE_TEST_TMP) / "calibrate_robust" / (name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return nlohmann::json::parse(s.str());
}

// Replaces the measured run-queue wait for the test's duration.
struct ContentionOverride {
  explicit ContentionOverride(double fraction) {
    set_cpu_contention_override_for_testing(fraction);
  }
  ~ContentionOverride() { set_cpu_contention_override_for_testing(-1); }
};

// A backend whose measurement is instant: a given peak, counted.
class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(DevicePeak next) : next_(std::move(next)) {}
  std::string_view name() const override { return "fake"; }
  std::string device() const override { return "fake device"; }
  Support supports(const AttentionProblem&) const override { return Support::yes(); }
  RunResult run(const AttentionProblem&, const Inputs&, const Probes&,
                const CancelToken&) override {
    throw Error("not used");
  }
  DevicePeak measure_peak(const CancelToken&) override {
    ++measured;
    return next_;
  }
  DevicePeak next_;
  int measured = 0;
};

DevicePeak fake_peak(double gflops, bool reliable) {
  DevicePeak p;
  p.gflops = gflops;
  p.gbps = 10;
  p.cache_gbps = 40;
  p.cache_bytes = 32 << 20;
  p.reliable = reliable;
  p.contention = reliable ? "quiet" : "busy";
  p.measured_at = "2026-01-02T03:04:05Z";
  return p;
}

// The backend's (wrapped) CPU measurement, so that device_peak runs the real probe.
class CpuProbeBackend final : public Backend {
 public:
  explicit CpuProbeBackend(int threads) : threads_(threads) {}
  std::string_view name() const override { return "probe"; }
  std::string device() const override { return "probe device"; }
  Support supports(const AttentionProblem&) const override { return Support::yes(); }
  RunResult run(const AttentionProblem&, const Inputs&, const Probes&,
                const CancelToken&) override {
    throw Error("not used");
  }
  DevicePeak measure_peak(const CancelToken& cancel) override {
    return measure_cpu_peak(threads_, cancel);
  }

 private:
  int threads_;
};

TEST(CalibrateRobust, InjectedContentionMakesTheMeasurementUnreliable) {
  const EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "128");
  {
    const ContentionOverride busy(0.5);  // every repetition waited half its time for a CPU
    const DevicePeak p = measure_cpu_peak(1);
    EXPECT_FALSE(p.reliable);
    EXPECT_NE(p.contention.find("unreliable"), std::string::npos) << p.contention;
    EXPECT_NE(p.contention.find("3 tries"), std::string::npos) << p.contention;  // it retried
    EXPECT_NE(describe(p).find("unreliable"), std::string::npos) << describe(p);
    EXPECT_GT(p.gflops, 0);  // still a number to show, for this session only
  }
  const ContentionOverride quiet(0.0);
  const DevicePeak p = measure_cpu_peak(1);
  EXPECT_TRUE(p.reliable) << p.contention;
  EXPECT_EQ(p.contention.find("unreliable"), std::string::npos) << p.contention;
  EXPECT_EQ(p.contention.find("contended,"), std::string::npos) << p.contention;
}

TEST(CalibrateRobust, ProbeSaysWhatItMeasured) {
  const EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "128");
  const ContentionOverride quiet(0.0);
  const DevicePeak p = measure_cpu_peak(1);
  // Both libraries are measured and named; the winner comes first.
  EXPECT_NE(p.gemm.find("Eigen"), std::string::npos) << p.gemm;
  const bool blas = p.gemm.find("OpenBLAS") != std::string::npos;
  if (blas) {
    EXPECT_NE(p.gemm.find("kernels"), std::string::npos) << p.gemm;
  }
  EXPECT_NE(p.contention.find("best of"), std::string::npos) << p.contention;
  EXPECT_EQ(p.cpu_model, host::cpu_model());
  if (last_level_cache_bytes() > 0) {
    EXPECT_EQ(p.cache_bytes, last_level_cache_bytes());
    EXPECT_GT(p.cache_gbps, 0);
    EXPECT_NE(p.cache_copy.find("last-level cache"), std::string::npos) << p.cache_copy;
  }
}

TEST(CalibrateRobust, LastLevelCacheIsReadFromSysfs) {
  const fs::path index = "/sys/devices/system/cpu/cpu0/cache";
  if (!fs::exists(index)) GTEST_SKIP() << "no " << index;
  const int64_t llc = last_level_cache_bytes();
  EXPECT_GT(llc, 0);
  EXPECT_EQ(llc % 1024, 0);
}

TEST(CalibrateRobust, UnreliableMeasurementIsReturnedButNotCached) {
  const fs::path dir = fresh_dir("unreliable");
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", dir.string());
  FakeBackend fake(fake_peak(5, /*reliable=*/false));
  const DevicePeak p = device_peak(fake);
  EXPECT_FALSE(p.reliable);
  EXPECT_DOUBLE_EQ(p.gflops, 5);
  EXPECT_FALSE(fs::exists(dir / "peaks.json"));
  EXPECT_FALSE(device_peak(fake).cached);  // nothing remembered: measured again
  EXPECT_EQ(fake.measured, 2);

  // A reliable roof is remembered; a later busy re-measurement does not replace it.
  fake.next_ = fake_peak(100, true);
  EXPECT_DOUBLE_EQ(device_peak(fake, true).gflops, 100);
  fake.next_ = fake_peak(7, false);
  EXPECT_DOUBLE_EQ(device_peak(fake, true).gflops, 7);
  const DevicePeak kept = device_peak(fake);
  EXPECT_TRUE(kept.cached);
  EXPECT_TRUE(kept.reliable);
  EXPECT_DOUBLE_EQ(kept.gflops, 100);
  EXPECT_DOUBLE_EQ(kept.cache_gbps, 40);  // the cache roof round-trips
  EXPECT_EQ(kept.cache_bytes, 32 << 20);
}

// Child processes that spin until killed: other work on every CPU, twice over, so that any
// thread of ours waits for a CPU about half the time. Processes, not threads, so that the
// calibration's own run-queue wait is what it measures, as with a build beside it.
class SpinningLoad {
 public:
  explicit SpinningLoad(int n) {
    for (int i = 0; i < n; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        volatile unsigned long x = 0;
        for (;;) x = x + 1;
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~SpinningLoad() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  size_t size() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

TEST(CalibrateRobust, CalibrationUnderLoadIsNotRememberedAsTheRoof) {
  std::ifstream probe("/proc/self/schedstat");
  double a = 0, b = 0;
  if (!(probe >> a >> b)) GTEST_SKIP() << "the kernel does not report run-queue wait";
  const fs::path dir = fresh_dir("load");
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", dir.string());
  const EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "128");
  const int cpus = host::logical_cpus();
  const SpinningLoad load(2 * cpus);
  ASSERT_EQ(load.size(), size_t(2 * cpus));
  CpuProbeBackend backend(std::min(cpus, 2));
  const DevicePeak p = device_peak(backend);
  EXPECT_FALSE(p.reliable) << p.contention;
  EXPECT_NE(p.contention.find("unreliable"), std::string::npos) << p.contention;
  EXPECT_FALSE(fs::exists(dir / "peaks.json"));
  EXPECT_TRUE(cached_peaks().empty());
}

TEST(CalibrateRobust, CacheIsKeyedByCpuModel) {
  const fs::path dir = fresh_dir("cpu_model");
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", dir.string());
  // Another machine's entry for the same backend and device string, in the current format.
  nlohmann::json other = {{"backend", "fake"},
                          {"device", "fake device"},
                          {"gflops", 999.0},
                          {"gbps", 99.0},
                          {"reliable", true},
                          {"cpu_model", "Some Other CPU 9000"},
                          {"measured_at", "2026-01-01T00:00:00Z"}};
  write_file(
      dir / "peaks.json",
      nlohmann::json{{"format", "attnscope device peaks"}, {"version", 2}, {"peaks", {other}}}
          .dump());
  EXPECT_TRUE(cached_peaks().empty());  // not this machine's
  FakeBackend fake(fake_peak(50, true));
  const DevicePeak p = device_peak(fake);
  EXPECT_EQ(fake.measured, 1);  // the other CPU's roof is not ours
  EXPECT_FALSE(p.cached);
  EXPECT_DOUBLE_EQ(p.gflops, 50);
  EXPECT_EQ(p.cpu_model, host::cpu_model());
  // Both machines' entries stay in the file; ours is read back.
  const nlohmann::json root = read_json(dir / "peaks.json");
  EXPECT_EQ(root["version"], 2);
  ASSERT_EQ(root["peaks"].size(), 2u);
  EXPECT_EQ(root["peaks"][0]["cpu_model"], "Some Other CPU 9000");
  EXPECT_EQ(root["peaks"][1]["cpu_model"], host::cpu_model());
  EXPECT_TRUE(device_peak(fake).cached);
  EXPECT_EQ(fake.measured, 1);
  ASSERT_EQ(cached_peaks().size(), 1u);
  EXPECT_DOUBLE_EQ(cached_peaks()[0].gflops, 50);
}

TEST(CalibrateRobust, OldAndUnknownCacheFormatsAreIgnoredAndReplaced) {
  const fs::path dir = fresh_dir("old_format");
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", dir.string());
  const std::string entry =
      R"({"backend": "fake", "device": "fake device", "gflops": 187.0, "gbps": 24.4,
          "gemm": "Eigen SGEMM 1024^3 per thread, 2 threads", "copy": "triad", "seconds": 1.3,
          "measured_at": "2026-11-22T10:14:25Z"})";
  const std::string cpu = host::cpu_model();
  const std::string cases[] = {
      // Version 1 (docs/roofline.md before contention checks): no CPU model, maybe taken busy.
      R"({"format": "attnscope device peaks", "peaks": [)" + entry + R"(], "version": 1})",
      // No version at all, a version that is not a number, and a future one.
      R"({"peaks": [)" + entry + "]}",
      R"({"version": "2", "peaks": [)" + entry + "]}",
      R"({"version": 99, "peaks": [{"backend": "fake", "device": "fake device", "gflops": 1,
          "gbps": 1, "cpu_model": ")" +
          cpu + R"("}]})",
      // The current version with mistyped new fields: the entry is dropped, never trusted.
      R"({"version": 2, "peaks": [{"backend": "fake", "device": "fake device", "gflops": 1,
          "gbps": 1, "cpu_model": ")" +
          cpu + R"(", "reliable": "yes"}]})",
      R"({"version": 2, "peaks": [{"backend": "fake", "device": "fake device", "gflops": 1,
          "gbps": 1, "cpu_model": ")" +
          cpu + R"(", "cache_bytes": -4}]})",
      // ... and an entry that says it was contended.
      R"({"version": 2, "peaks": [{"backend": "fake", "device": "fake device", "gflops": 1,
          "gbps": 1, "cpu_model": ")" +
          cpu + R"(", "reliable": false}]})",
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE(text);
    write_file(dir / "peaks.json", text);
    EXPECT_TRUE(cached_peaks().empty());
    FakeBackend fake(fake_peak(60, true));
    EXPECT_FALSE(device_peak(fake).cached);
    EXPECT_EQ(fake.measured, 1);
    const nlohmann::json root = read_json(dir / "peaks.json");
    EXPECT_EQ(root["version"], 2);
    ASSERT_EQ(root["peaks"].size(), 1u);
    EXPECT_EQ(root["peaks"][0]["gflops"], 60.0);
    EXPECT_TRUE(device_peak(fake).cached);
  }
}

TEST(CalibrateRobust, RunsArePlacedUnderTheRoofOfTheirWorkingSet) {
  DevicePeak p = fake_peak(100, true);  // 100 GFLOP/s, 10 GB/s DRAM, 40 GB/s in a 32 MiB LLC
  const double intensity = 1;           // memory bound under both roofs
  // 2 MiB working set: in cache, the 40 GB/s roof applies.
  RoofPlacement in = place_on_roofline(p, intensity, 30, 2 << 20);
  EXPECT_EQ(in.roof, Roof::cache);
  EXPECT_DOUBLE_EQ(in.roof_gflops, 40);
  EXPECT_DOUBLE_EQ(in.fraction, 0.75);
  EXPECT_FALSE(in.above);
  EXPECT_STREQ(roof_name(in.roof), "cache");
  // The same rate with a 1 GiB working set is above the DRAM roof: a measurement problem.
  RoofPlacement out = place_on_roofline(p, intensity, 30, double(1 << 30));
  EXPECT_EQ(out.roof, Roof::memory);
  EXPECT_DOUBLE_EQ(out.roof_gflops, 10);
  EXPECT_TRUE(out.above);
  // Unknown working set: the DRAM roof.
  EXPECT_EQ(place_on_roofline(p, intensity, 5, 0).roof, Roof::memory);
  // Compute bound: the GEMM peak is the roof; within the tolerance is not "above".
  EXPECT_DOUBLE_EQ(place_on_roofline(p, 1000, 50, 1 << 20).roof_gflops, 100);
  EXPECT_FALSE(place_on_roofline(p, 1000, 100 * (1 + kAboveRoofTolerance / 2), 1 << 20).above);
  // A remembered roof below what a run achieved: the run is flagged, not celebrated.
  DevicePeak low = p;
  low.gflops = 20;
  low.cached = true;
  EXPECT_TRUE(place_on_roofline(low, 1000, 50, 1 << 20).above);
  // A peak without a cache roof (a GPU's) uses its DRAM bandwidth for every working set.
  DevicePeak gpu = p;
  gpu.cache_gbps = 0;
  gpu.cache_bytes = 0;
  EXPECT_EQ(place_on_roofline(gpu, intensity, 5, 1 << 20).roof, Roof::memory);
}

}  // namespace
}  // namespace attnscope
