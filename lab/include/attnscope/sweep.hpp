// Benchmark sweeps: variants x sequence lengths x backends, prefill or decode, with progress and
// cancel. `attnscope-cli bench` and the GUI's Benchmark view both run this and both write/read the
// same Google Benchmark-compatible JSON, so a chart made from it is identical from either.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/problem.hpp"

namespace attnscope {

enum class SweepMode { prefill, decode };

struct SweepConfig {
  std::vector<std::string> variants{"dense"};  // registry names or aliases
  std::vector<int64_t> seq_lens{1024};         // prefill: Lq = Lk = L; decode: context L
  std::vector<std::string> backends{"cpu"};
  SweepMode mode = SweepMode::prefill;
  // Shape and knobs shared by every point; per point variant, q_len and kv_len are set. For MLA the
  // heads/dims come from `mla` (kv_heads 1, head_dim Dn + Dr); for decode, batch is the number of
  // sequences decoded together.
  AttentionProblem base = AttentionProblem::defaults(VariantId::dense);
  int repetitions = 5;      // timed runs per point, after one warm-up
  double min_time_s = 0.0;  // keep repeating until this much time is spent (0 = exactly reps)
  int threads = 0;          // cpu backend threads (0 = default)
  std::string pattern = "random";
  uint64_t seed = 0;
};

struct SweepPoint {
  std::string variant;  // registry name
  std::string backend;
  int64_t seq_len = 0;
  AttentionProblem problem;     // exactly what ran (decode: the Lq = 1 step at context seq_len)
  std::vector<double> seconds;  // per timed repetition
  double median_s = 0, mean_s = 0, min_s = 0, stddev_s = 0;
  Cost cost;                // of one run (decode: one step)
  double tokens_per_s = 0;  // prefill: B * L / median; decode: B / median
  double gflops = 0;        // cost.flops / median
  double gbps = 0;          // cost.bytes / median
  std::string skipped;      // non-empty: why this point did not run (unsupported, too large, …)
  int threads = 1;          // threads the backend computed on (cpu: its pool threads)
};

struct SweepResult {
  SweepConfig config;
  std::vector<SweepPoint> points;
  std::string machine;               // host description (CPU model, cores, memory)
  std::vector<std::string> devices;  // Backend::device() of each backend used
  std::string date;                  // ISO 8601
  bool cancelled = false;            // stopped early; points holds what finished
  // Optional: the device peaks (calibrate.hpp) of the backends, attached by the caller so that a
  // saved sweep carries its roofline ceilings. run_sweep leaves it empty.
  std::vector<DevicePeak> peaks;
};

// Runs every point in order (variant-major, then seq_len, then backend). Progress is reported
// through `cancel`'s callback; on cancel the finished points are returned with cancelled = true.
// on_point (optional) is called after each point, on the calling thread. Bad config (unknown
// variant/backend, empty lists, non-positive lengths) throws Error before anything runs.
SweepResult run_sweep(const SweepConfig& config, const CancelToken& cancel = {},
                      const std::function<void(const SweepPoint&)>& on_point = {});

// Google Benchmark's JSON ("context" + "benchmarks"): one "iteration" entry per repetition and
// median/mean/min/stddev aggregates per point, named "<mode>/<variant>/<backend>/<seq_len>", with
// counters tokens_per_second, GFLOPS, GBps, kv_bytes, kv_bytes_per_token. The context carries the
// sweep configuration and the machine/devices under "attnscope", so the file alone reproduces it.
std::string sweep_to_json(const SweepResult& result);
// Reads what sweep_to_json wrote (or any Google Benchmark JSON with our naming); throws Error
// naming what is malformed.
SweepResult sweep_from_json(const std::string& text);

std::string to_string(SweepMode mode);
std::optional<SweepMode> sweep_mode_from_string(const std::string& name);

// One line describing this host: "AMD EPYC 9xx5 (2 logical CPUs), 23.4 GiB".
std::string host_description();

}  // namespace attnscope
