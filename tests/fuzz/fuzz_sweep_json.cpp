// Fuzz harness: sweep_from_json, the reader of benchmark JSON (docs/fuzzing.md).
// Properties: a rejected document throws attnscope::Error and nothing else; an accepted one
// serializes (sweep_to_json) to JSON that sweep_from_json accepts again as the same sweep: config,
// context, peaks, every point's identity, problem, cost, repetitions and statistics. Times travel
// in milliseconds, so they compare to a relative 1e-12; the derived rates (tokens/s, GFLOP/s,
// GB/s) are what the writer computes, so they are compared from the second round trip on.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "attnscope/sweep.hpp"
#include "fuzz_support.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::only_error;
using attnscope::fuzz::require;

namespace {

bool same(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

// Equal up to the rounding of a unit conversion (x * 1e3 / 1e3); subnormals lose bits on the way.
bool close(double a, double b) {
  return same(a, b) || std::fabs(a - b) <= 1e-12 * std::max(std::fabs(a), std::fabs(b)) + 1e-300;
}

bool same_peak(const DevicePeak& a, const DevicePeak& b) {
  return a.backend == b.backend && a.device == b.device && same(a.gflops, b.gflops) &&
         same(a.gbps, b.gbps) && a.gemm == b.gemm && a.copy == b.copy &&
         same(a.seconds, b.seconds) && a.measured_at == b.measured_at && a.cached == b.cached;
}

void require_same_config(const SweepConfig& a, const SweepConfig& b) {
  require(a.variants == b.variants, "round trip changed config.variants");
  require(a.seq_lens == b.seq_lens, "round trip changed config.seq_lens");
  require(a.backends == b.backends, "round trip changed config.backends");
  require(a.mode == b.mode, "round trip changed the mode");
  require(a.repetitions == b.repetitions, "round trip changed config.repetitions");
  require(same(a.min_time_s, b.min_time_s), "round trip changed config.min_time_s");
  require(a.threads == b.threads, "round trip changed config.threads");
  require(a.pattern == b.pattern, "round trip changed config.pattern");
  require(a.seed == b.seed, "round trip changed config.seed");
  const std::string d = fuzz::problem_difference(a.base, b.base);
  require(d.empty(), "round trip changed config.base." + d);
}

// `rates`: also compare tokens_per_s, gflops and gbps (not on the first trip, see above).
void require_same(const SweepResult& a, const SweepResult& b, bool rates, const char* trip) {
  const std::string t = std::string(trip) + ": ";
  require_same_config(a.config, b.config);
  require(a.machine == b.machine, t + "machine differs");
  require(a.devices == b.devices, t + "devices differ");
  require(a.date == b.date, t + "date differs");
  require(a.cancelled == b.cancelled, t + "cancelled differs");
  require(a.peaks.size() == b.peaks.size(), t + "number of peaks differs");
  for (size_t i = 0; i < a.peaks.size(); ++i) {
    require(same_peak(a.peaks[i], b.peaks[i]), t + "peak " + std::to_string(i) + " differs");
  }
  require(
      a.points.size() == b.points.size(),
      t + std::to_string(a.points.size()) + " points became " + std::to_string(b.points.size()));
  for (size_t i = 0; i < a.points.size(); ++i) {
    const SweepPoint& p = a.points[i];
    const SweepPoint& q = b.points[i];
    const std::string at = t + "point " + std::to_string(i) + " (" + p.variant + "/" + p.backend +
                           "/" + std::to_string(p.seq_len) + "): ";
    require(p.variant == q.variant && p.backend == q.backend && p.seq_len == q.seq_len,
            at + "became " + q.variant + "/" + q.backend + "/" + std::to_string(q.seq_len));
    const std::string d = fuzz::problem_difference(p.problem, q.problem);
    require(d.empty(), at + "problem." + d + " differs");
    require(p.skipped == q.skipped, at + "skipped differs");
    require(p.threads == q.threads, at + "threads differ");
    require(same(p.cost.flops, q.cost.flops) && same(p.cost.bytes, q.cost.bytes) &&
                same(p.cost.kv_cache_bytes, q.cost.kv_cache_bytes) &&
                same(p.cost.kv_bytes_per_token, q.cost.kv_bytes_per_token) &&
                p.cost.visible_pairs == q.cost.visible_pairs,
            at + "cost differs");
    require(p.seconds.size() == q.seconds.size(), at + std::to_string(p.seconds.size()) +
                                                      " repetitions became " +
                                                      std::to_string(q.seconds.size()));
    for (size_t r = 0; r < p.seconds.size(); ++r) {
      require(close(p.seconds[r], q.seconds[r]),
              at + "repetition " + std::to_string(r) + " time differs");
    }
    require(close(p.median_s, q.median_s) && close(p.mean_s, q.mean_s) && close(p.min_s, q.min_s) &&
                close(p.stddev_s, q.stddev_s),
            at + "median/mean/min/stddev differ");
    if (rates) {
      require(close(p.tokens_per_s, q.tokens_per_s) && close(p.gflops, q.gflops) &&
                  close(p.gbps, q.gbps),
              at + "tokens/s, GFLOP/s or GB/s differ");
    }
  }
}

// Serializes; the writer has no documented failure, so any exception is a finding.
std::string to_json(const SweepResult& r, const char* trip) {
  try {
    return sweep_to_json(r);
  } catch (...) {
    finding(std::string("sweep_to_json threw ") + fuzz::current_exception_type() + " (" + trip +
            ") on a sweep that sweep_from_json accepted");
  }
}

SweepResult reparse(const std::string& text, const char* trip) {
  SweepResult r;
  if (!only_error("sweep_from_json (reparse)", [&] { r = sweep_from_json(text); })) {
    try {
      (void)sweep_from_json(text);
    } catch (const Error& e) {
      finding(std::string("sweep_from_json rejected what sweep_to_json wrote (") + trip +
              "): " + e.what());
    }
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  SweepResult first;
  if (!only_error("sweep_from_json", [&] { first = sweep_from_json(text); })) return 0;

  const SweepResult second = reparse(to_json(first, "first trip"), "first trip");
  require_same(first, second, /*rates=*/false, "first trip");
  const SweepResult third = reparse(to_json(second, "second trip"), "second trip");
  require_same(second, third, /*rates=*/true, "second trip");
  return 0;
}
