// Device peaks: the CPU calibration returns plausible numbers quickly, both CPU backends measure
// themselves, and the per-device cache is read back, keyed, remeasured on request, and rewritten
// when it is malformed. Calibrations here run with ATTNSCOPE_MEMORY_LIMIT_MB low, so the triad
// uses its smallest arrays and each one takes well under a second on two cores.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "attnscope/calibrate.hpp"
#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "env_guard.hpp"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using test::EnvGuard;

// A fresh, empty directory per test (CTest runs test cases as parallel processes).
fs::path fresh_dir(const std::string& name) {
  const fs::path d =
      fs::path(ATTNSCOPE_TEST_TMP) / "calibrate" / (name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A backend whose "measurement" is instant and counted, to test the cache alone.
class FakeBackend final : public Backend {
 public:
  FakeBackend(std::string device, double gflops) : device_(std::move(device)), gflops_(gflops) {}
  std::string_view name() const override { return "fake"; }
  std::string device() const override { return device_; }
  Support supports(const AttentionProblem&) const override { return Support::yes(); }
  RunResult run(const AttentionProblem&, const Inputs&, const Probes&,
                const CancelToken&) override {
    throw Error("not used");
  }
  DevicePeak measure_peak(const CancelToken&) override {
    ++measured;
    DevicePeak p;
    p.gflops = gflops_ + measured;  // differs per measurement, so a re-read is recognizable
    p.gbps = 12.5;
    p.gemm = "fake gemm";
    p.copy = "fake copy";
    p.seconds = 0.001;
    p.measured_at = "2026-01-02T03:04:05Z";
    return p;
  }
  int measured = 0;

 private:
  std::string device_;
  double gflops_;
};

void expect_plausible(const DevicePeak& p) {
  EXPECT_TRUE(std::isfinite(p.gflops)) << p.gflops;
  EXPECT_TRUE(std::isfinite(p.gbps)) << p.gbps;
  EXPECT_GT(p.gflops, 0.01);
  EXPECT_GT(p.gbps, 0.01);
  EXPECT_LT(p.gflops, 1e6);  // a petaflop from one host CPU would be a timing bug
  EXPECT_LT(p.gbps, 1e5);
  EXPECT_GT(p.seconds, 0);
  EXPECT_FALSE(p.cached);
  EXPECT_TRUE(std::regex_match(p.measured_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << p.measured_at;
}

TEST(Calibrate, CpuPeakIsPositiveFiniteAndDescribed) {
  const EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "128");  // triad at its 3 x 16 MiB floor
  const DevicePeak p = measure_cpu_peak(2);
  expect_plausible(p);
  EXPECT_NE(p.gemm.find("SGEMM"), std::string::npos) << p.gemm;
  EXPECT_NE(p.gemm.find("2 threads"), std::string::npos) << p.gemm;
  EXPECT_EQ(p.copy, "triad a = b + s*c, 3 x 16 MiB, 2 threads");
  const std::string line = describe(p);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("GFLOP/s"), std::string::npos) << line;
  EXPECT_NE(line.find("GB/s"), std::string::npos) << line;
}

TEST(Calibrate, BadThreadCountAndCancelAreReported) {
  EXPECT_THROW(measure_cpu_peak(0), Error);
  CancelToken cancel;
  cancel.cancel();
  const EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "128");
  EXPECT_THROW(measure_cpu_peak(1, cancel), Cancelled);
}

TEST(Calibrate, CpuAndReferenceBackendsMeasureThemselves) {
  const EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "128");
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Backend> b = make_backend(name);
    const DevicePeak p = b->measure_peak(CancelToken{});
    expect_plausible(p);
    EXPECT_EQ(p.backend, name);
    EXPECT_EQ(p.device, b->device());  // the cache key
  }
  // The oracle is single-threaded, and says so.
  const DevicePeak ref = make_backend("reference")->measure_peak(CancelToken{});
  EXPECT_NE(ref.gemm.find("1 thread"), std::string::npos) << ref.gemm;
}

TEST(Calibrate, CachePathFollowsTheEnvironment) {
  {
    const EnvGuard dir("ATTNSCOPE_CACHE_DIR", "/tmp/attnscope-here");
    EXPECT_EQ(peak_cache_path(), "/tmp/attnscope-here/peaks.json");
  }
  const EnvGuard no_dir("ATTNSCOPE_CACHE_DIR", std::nullopt);
  {
    const EnvGuard xdg("XDG_CACHE_HOME", "/var/cache/me");
    EXPECT_EQ(peak_cache_path(), "/var/cache/me/attnscope/peaks.json");
  }
  const EnvGuard home("HOME", "/home/someone");
  {
    const EnvGuard xdg("XDG_CACHE_HOME", "relative/is/ignored");
    EXPECT_EQ(peak_cache_path(), "/home/someone/.cache/attnscope/peaks.json");
  }
  const EnvGuard no_xdg("XDG_CACHE_HOME", std::nullopt);
  EXPECT_EQ(peak_cache_path(), "/home/someone/.cache/attnscope/peaks.json");
}

TEST(Calibrate, PeakCacheRoundTrip) {
  const fs::path dir = fresh_dir("roundtrip") / "nested";  // created on first write
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", dir.string());
  ASSERT_EQ(peak_cache_path(), (dir / "peaks.json").string());

  FakeBackend a("device A", 100);
  const DevicePeak first = device_peak(a);
  EXPECT_EQ(a.measured, 1);
  EXPECT_FALSE(first.cached);
  EXPECT_EQ(first.backend, "fake");
  EXPECT_EQ(first.device, "device A");
  EXPECT_DOUBLE_EQ(first.gflops, 101);
  ASSERT_TRUE(fs::exists(dir / "peaks.json"));

  const DevicePeak again = device_peak(a);  // remeasure = false: read back
  EXPECT_EQ(a.measured, 1);
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(again.gflops, first.gflops);
  EXPECT_EQ(again.gbps, first.gbps);
  EXPECT_EQ(again.gemm, first.gemm);
  EXPECT_EQ(again.copy, first.copy);
  EXPECT_EQ(again.seconds, first.seconds);
  EXPECT_EQ(again.measured_at, first.measured_at);
  EXPECT_NE(describe(again).find("cached"), std::string::npos) << describe(again);

  const DevicePeak fresh = device_peak(a, /*remeasure=*/true);
  EXPECT_EQ(a.measured, 2);
  EXPECT_FALSE(fresh.cached);
  EXPECT_DOUBLE_EQ(fresh.gflops, 102);
  EXPECT_DOUBLE_EQ(device_peak(a).gflops, 102);  // the new measurement replaced the old

  // Another device of the same backend is its own entry; both stay in the file.
  FakeBackend b("device B", 200);
  EXPECT_DOUBLE_EQ(device_peak(b).gflops, 201);
  EXPECT_EQ(b.measured, 1);
  EXPECT_TRUE(device_peak(a).cached);
  EXPECT_EQ(a.measured, 2);
  const std::vector<DevicePeak> all = cached_peaks();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0].cached && all[1].cached);
  // The file is plain JSON a person (or script) can read; no temporary file is left behind.
  const auto root = nlohmann::json::parse(slurp(dir / "peaks.json"));
  EXPECT_EQ(root["peaks"].size(), 2u);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(Calibrate, MalformedCacheIsIgnoredAndRewritten) {
  const fs::path dir = fresh_dir("malformed");
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", dir.string());
  const fs::path file = dir / "peaks.json";
  const std::string cases[] = {
      "this is not JSON {",
      "[1, 2, 3]",
      R"({"peaks": "none"})",
      // The right key but wrong types: ignored like garbage, never trusted.
      R"({"peaks": [{"backend": "fake", "device": "dev", "gflops": "fast", "gbps": 1}]})",
      R"({"peaks": [{"backend": "fake", "device": "dev", "gflops": -5, "gbps": 1}]})",
      "",
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE(text);
    write_file(file, text);
    FakeBackend fake("dev", 10);
    const DevicePeak p = device_peak(fake);
    EXPECT_EQ(fake.measured, 1);
    EXPECT_FALSE(p.cached);
    // Rewritten as a valid cache holding the new measurement.
    const std::vector<DevicePeak> cached = cached_peaks();
    ASSERT_EQ(cached.size(), 1u);
    EXPECT_EQ(cached[0].device, "dev");
    EXPECT_DOUBLE_EQ(cached[0].gflops, 11);
    EXPECT_TRUE(device_peak(fake).cached);
    EXPECT_EQ(fake.measured, 1);
  }
}

TEST(Calibrate, UnwritableCacheStillReturnsTheMeasurement) {
  const fs::path dir = fresh_dir("unwritable");
  write_file(dir / "not_a_directory", "x");  // the cache "directory" is a file
  const EnvGuard env("ATTNSCOPE_CACHE_DIR", (dir / "not_a_directory").string());
  FakeBackend fake("dev", 10);
  const DevicePeak p = device_peak(fake);
  EXPECT_DOUBLE_EQ(p.gflops, 11);
  EXPECT_FALSE(device_peak(fake).cached);  // nothing could be cached: measured again
  EXPECT_EQ(fake.measured, 2);
}

}  // namespace
}  // namespace attnscope
