// Fuzz harness: the device-peak cache file, $ATTNSCOPE_CACHE_DIR/peaks.json (calibrate.hpp;
// docs/fuzzing.md). The input is the cache file's content.
// Properties: reading it (cached_peaks, device_peak) never throws, whatever it holds: "an
// unreadable or malformed cache is ignored and rewritten, never an error"; every entry read back is
// a complete, plausible peak (backend and device strings, finite positive rates, cached = true);
// device_peak returns a cached entry of its own (backend, device) without measuring, else measures
// once and rewrites the file so that it holds every valid entry of the other devices, unchanged,
// plus the new one; the directory then holds peaks.json only (no temporary file).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/calibrate.hpp"
#include "fuzz_support.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::require;

namespace {

// A backend whose "measurement" is instant and counted; its key is ("fuzz", "fuzz device").
class FakeBackend : public Backend {
 public:
  std::string_view name() const override { return "fuzz"; }
  std::string device() const override { return "fuzz device"; }
  Support supports(const AttentionProblem&) const override { return Support::no("fuzz only"); }
  RunResult run(const AttentionProblem&, const Inputs&, const Probes&,
                const CancelToken&) override {
    throw Error("the fuzz backend does not run attention");
  }
  DevicePeak measure_peak(const CancelToken&) override {
    ++measured;
    DevicePeak p;
    p.backend = "measured-by";  // device_peak must key the entry by name()/device(), not this
    p.device = "anything";
    p.gflops = 123.25;
    p.gbps = 45.5;
    p.gemm = "fake GEMM";
    p.copy = "fake copy";
    p.seconds = 0.5;
    p.measured_at = "2000-01-01T00:00:00Z";
    return p;
  }
  int measured = 0;
};

bool plausible(const DevicePeak& p) {
  return p.cached && std::isfinite(p.gflops) && p.gflops > 0 && std::isfinite(p.gbps) && p.gbps > 0;
}

bool same_peak(const DevicePeak& a, const DevicePeak& b) {
  return a.backend == b.backend && a.device == b.device && a.gflops == b.gflops &&
         a.gbps == b.gbps && a.gemm == b.gemm && a.copy == b.copy && a.seconds == b.seconds &&
         a.measured_at == b.measured_at;
}

std::vector<DevicePeak> read_all(const char* when) {
  try {
    return cached_peaks();
  } catch (...) {
    finding(std::string("cached_peaks threw ") + fuzz::current_exception_type() + " " + when +
            " (a malformed cache must read as empty)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("ATTNSCOPE_CACHE_DIR", fuzz::Scratch::get().dir().c_str(), 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::Scratch& scratch = fuzz::Scratch::get();
  const std::string file = scratch.write("peaks.json", data, size);
  require(peak_cache_path() == file, "peak_cache_path() ignores $ATTNSCOPE_CACHE_DIR");

  const std::vector<DevicePeak> before = read_all("on the input");
  const DevicePeak* own = nullptr;  // device_peak's answer when the cache has one
  for (const DevicePeak& p : before) {
    require(plausible(p), "cached_peaks returned an implausible entry for '" + p.backend + "'");
    if (!own && p.backend == "fuzz" && p.device == "fuzz device") own = &p;
  }

  FakeBackend backend;
  DevicePeak got;
  try {
    got = device_peak(backend);
  } catch (...) {
    finding("device_peak threw " + fuzz::current_exception_type() +
            " on a cache file (a malformed cache must be ignored and rewritten)");
  }
  if (own) {
    require(backend.measured == 0, "device_peak measured although the cache has this device");
    require(got.cached && same_peak(got, *own), "device_peak did not return the cached entry");
    scratch.expect_and_clear({"peaks.json"}, "a cache hit");
    return 0;
  }
  require(backend.measured == 1, "device_peak did not measure once on a cache miss");
  require(!got.cached && got.backend == "fuzz" && got.device == "fuzz device" &&
              got.gflops == 123.25 && got.gbps == 45.5,
          "device_peak returned something else than the new measurement");

  // The rewritten file: the valid entries of other devices in their order, then the new one.
  const std::vector<DevicePeak> after = read_all("on the file device_peak wrote");
  require(after.size() == before.size() + 1,
          std::to_string(before.size()) + " cached peaks became " + std::to_string(after.size()) +
              " after adding one");
  for (size_t i = 0; i < before.size(); ++i) {
    require(same_peak(before[i], after[i]), "rewriting the cache changed entry " +
                                                std::to_string(i) + " ('" + before[i].backend +
                                                "')");
  }
  got.cached = true;
  require(plausible(after.back()) && same_peak(after.back(), got),
          "the rewritten cache does not end with the new measurement");
  scratch.expect_and_clear({"peaks.json"}, "device_peak rewrote the cache");
  return 0;
}
