// Benchmark sweeps (sweep.hpp): variants x sequence lengths x backends, prefill or decode, timed
// after a warm-up, with progress and cancel; and their Google Benchmark-compatible JSON, written
// and read here so that the CLI and the GUI chart exactly the same numbers.
#include "attnscope/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "attnscope/calibrate.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/decode_session.hpp"
#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/problem_json.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"

namespace attnscope {

std::string to_string(SweepMode mode) {
  return mode == SweepMode::decode ? "decode" : "prefill";
}

std::optional<SweepMode> sweep_mode_from_string(const std::string& name) {
  if (name == "prefill") return SweepMode::prefill;
  if (name == "decode") return SweepMode::decode;
  return std::nullopt;
}

std::string host_description() {
  std::ostringstream s;
  const int cpus = host::logical_cpus();
  s << host::cpu_model() << " (" << cpus << " logical CPU" << (cpus == 1 ? "" : "s") << ")";
  if (const int64_t mem = host::memory_total_bytes(); mem > 0) {
    s.setf(std::ios::fixed);
    s.precision(1);
    s << ", " << double(mem) / double(int64_t{1} << 30) << " GiB";
  }
  return s.str();
}

namespace {

// ---------------------------------------------------------------------------------------------
// Running

// The problem a point runs (prefill) or whose cache it decodes over (decode, before the step's
// Lq = 1 is applied): base with the variant and L set, and each variant's fixed structure.
AttentionProblem point_problem(const SweepConfig& config, const VariantInfo& info, int64_t L) {
  AttentionProblem p = config.base;
  p.variant = info.id;
  p.shape.q_len = p.shape.kv_len = L;
  if (info.causal_only) p.causal = true;
  normalize_shape(p);
  return p;
}

// What one decode step is, as decode_cost prices it: Lq = 1 over a context of L (Gated DeltaNet:
// one token through the state), batch = the sequences decoded together.
AttentionProblem decode_step_problem(AttentionProblem cache_problem, int64_t L) {
  AttentionProblem p = decode_form(cache_problem);
  p.causal = true;
  p.shape.q_len = 1;
  p.shape.kv_len = variant_info(p.variant).has_state ? 1 : L;
  return p;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

struct Plan {
  std::vector<const VariantInfo*> variants;
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<int> backend_threads;
};

// Every check that does not need a run, so a bad config fails before minutes of work.
Plan plan_sweep(const SweepConfig& c) {
  if (c.variants.empty()) throw Error("sweep: no variants to run (the variant list is empty)");
  if (c.seq_lens.empty()) throw Error("sweep: no sequence lengths (the length list is empty)");
  if (c.backends.empty()) throw Error("sweep: no backends (the backend list is empty)");
  if (c.repetitions < 1) {
    throw Error("sweep: repetitions must be at least 1 (got " + std::to_string(c.repetitions) +
                ")");
  }
  if (!std::isfinite(c.min_time_s) || c.min_time_s < 0) {
    throw Error("sweep: min_time_s must be 0 or a positive number of seconds");
  }
  if (c.threads < 0) {
    throw Error("sweep: threads must be 0 (default) or more (got " + std::to_string(c.threads) +
                ")");
  }
  std::set<int64_t> lengths;
  for (int64_t L : c.seq_lens) {
    if (L < 1) {
      throw Error("sweep: sequence lengths must be at least 1 (got " + std::to_string(L) + ")");
    }
    if (!lengths.insert(L).second) {
      throw Error("sweep: sequence length " + std::to_string(L) + " appears twice");
    }
  }
  bool known_pattern = false;
  std::vector<std::string> pattern_names;
  for (const PatternInfo& p : patterns()) {
    known_pattern |= p.name == c.pattern;
    pattern_names.emplace_back(p.name);
  }
  if (!known_pattern) {
    throw Error("sweep: unknown input pattern '" + c.pattern +
                "' (choose from: " + join(pattern_names) + ")");
  }

  Plan plan;
  for (const std::string& name : c.variants) {
    const VariantInfo* info = find_variant(name);
    if (!info) {
      throw Error("sweep: unknown variant '" + name + "' (choose from: " + variant_names() + ")");
    }
    for (const VariantInfo* seen : plan.variants) {
      if (seen == info) {
        throw Error("sweep: variant '" + name + "' is " + std::string(info->name) +
                    ", which is already in the sweep");
      }
    }
    // The shape and knobs must be valid for the variant at all; only the length may make a
    // point impossible (too large), and such a point is skipped rather than fatal.
    if (auto why = point_problem(c, *info, 1).validate()) {
      throw Error("sweep: " + std::string(info->name) + ": " + *why);
    }
    plan.variants.push_back(info);
  }
  for (size_t i = 0; i < c.backends.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.backends[i] == c.backends[j]) {
        throw Error("sweep: backend '" + c.backends[i] + "' appears twice");
      }
    }
    std::unique_ptr<Backend> b = make_backend(c.backends[i]);  // Error when unknown/unavailable
    int threads = 1;
    if (b->name() == "cpu") {
      const int pool = cpu_default_threads();
      threads = c.threads > 0 ? std::min(c.threads, pool) : pool;
      if (c.threads > 0) b = make_cpu_backend(CpuOptions{c.threads});
    }
    plan.backends.push_back(std::move(b));
    plan.backend_threads.push_back(threads);
  }
  return plan;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median, mean, min and sample standard deviation (as Google Benchmark's aggregates), and the
// rates at the median.
void finish_stats(SweepPoint& p, SweepMode mode) {
  const std::vector<double>& s = p.seconds;
  if (s.empty()) return;
  p.median_s = median_of(s);
  p.min_s = *std::min_element(s.begin(), s.end());
  double sum = 0;
  for (double x : s) sum += x;
  p.mean_s = sum / double(s.size());
  double sq = 0;
  for (double x : s) sq += (x - p.mean_s) * (x - p.mean_s);
  p.stddev_s = s.size() > 1 ? std::sqrt(sq / double(s.size() - 1)) : 0.0;
  if (p.median_s > 0) {
    const double batch = double(p.problem.shape.batch);
    const double tokens = mode == SweepMode::decode ? batch : batch * double(p.seq_len);
    p.tokens_per_s = tokens / p.median_s;
    p.gflops = p.cost.flops / p.median_s / 1e9;
    p.gbps = p.cost.bytes / p.median_s / 1e9;
  }
}

// Maps the progress of one run (the engine reports 0..1 per run through its token) into the
// sweep's overall fraction, and carries a cancel of the sweep's token into the run's. Runs get
// their own token so that their per-run fractions never reach the caller as sweep progress.
class ProgressRelay {
 public:
  explicit ProgressRelay(const CancelToken& outer) : outer_(outer) {
    inner_.set_progress_callback([this](double f) { relay(f); });
  }
  ~ProgressRelay() { inner_.set_progress_callback({}); }
  ProgressRelay(const ProgressRelay&) = delete;
  ProgressRelay& operator=(const ProgressRelay&) = delete;

  const CancelToken& token() const { return inner_; }
  // The next run covers [lo, lo + span) of the sweep. Throws Cancelled when the sweep was.
  void begin(double lo, double span) {
    lo_.store(lo, std::memory_order_relaxed);
    span_.store(span, std::memory_order_relaxed);
    check();
  }
  void check() const {
    if (outer_.cancelled()) inner_.cancel();
    inner_.throw_if_cancelled();
  }
  void report(double fraction) const { outer_.report(std::clamp(fraction, 0.0, 1.0)); }

 private:
  void relay(double f) const {
    if (outer_.cancelled()) inner_.cancel();
    report(lo_.load(std::memory_order_relaxed) +
           span_.load(std::memory_order_relaxed) * std::clamp(f, 0.0, 1.0));
  }
  const CancelToken& outer_;
  CancelToken inner_;
  std::atomic<double> lo_{0}, span_{0};
};

// Timed repetitions continue until `repetitions` are done and min_time_s is spent; this caps the
// latter on very fast points.
constexpr int kMaxRepetitions = 100000;

bool more_runs(const SweepConfig& c, const SweepPoint& p, double spent) {
  const int done = static_cast<int>(p.seconds.size());
  if (done < c.repetitions) return true;
  return c.min_time_s > 0 && spent < c.min_time_s && done < kMaxRepetitions;
}

void run_prefill_point(const SweepConfig& c, Backend& backend, SweepPoint& p, ProgressRelay& relay,
                       double lo, double span) {
  if (Support s = backend.supports(p.problem); !s.ok) {
    p.skipped = s.why_not;
    return;
  }
  if (auto why = p.problem.validate()) {
    p.skipped = *why;
    return;
  }
  const Inputs inputs = make_inputs(p.problem, c.pattern, c.seed);
  const double runs = c.repetitions + 1;
  relay.begin(lo, span / runs);
  backend.run(p.problem, inputs, Probes{}, relay.token());  // warm-up, not timed
  double spent = 0;
  while (more_runs(c, p, spent)) {
    const double done = std::min<double>(p.seconds.size() + 1, runs - 1);
    relay.begin(lo + span * done / runs, span / runs);
    const auto t0 = std::chrono::steady_clock::now();
    const RunResult r = backend.run(p.problem, inputs, Probes{}, relay.token());
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double s = r.seconds > 0 ? r.seconds : wall;
    p.seconds.push_back(s);
    spent += s;
  }
}

void run_decode_point(const SweepConfig& c, Backend& backend, const AttentionProblem& cache_problem,
                      SweepPoint& p, ProgressRelay& relay, double lo, double span) {
  // Decode's steps happen at Lq = 1, so ask the backend about the step problem.
  if (Support s = backend.supports(p.problem); !s.ok) {
    p.skipped = s.why_not;
    return;
  }
  const int64_t batch = cache_problem.shape.batch;
  const int extra = c.min_time_s > 0 ? std::max(c.repetitions, 256) : c.repetitions;
  DecodeSessionConfig dc;
  dc.problem = cache_problem;
  dc.prompt_lengths.assign(static_cast<size_t>(batch), p.seq_len);
  dc.max_length = p.seq_len + extra + 1;  // one warm-up step, then the timed ones
  dc.pattern = c.pattern;
  dc.seed = c.seed;
  dc.compute_prefill = false;  // decode alone is timed: the prompt only fills the cache
  if (auto why = [&] {
        AttentionProblem whole = cache_problem;  // what the session will hold at its longest
        whole.shape.q_len = whole.shape.kv_len = dc.max_length;
        return whole.validate();
      }()) {
    p.skipped = *why;
    return;
  }
  const double runs = c.repetitions + 2;  // prefill, warm-up step, timed steps
  relay.begin(lo, span / runs);
  DecodeSession session(dc, backend);
  session.prefill(relay.token());
  relay.begin(lo + span / runs, span / runs);
  session.step(relay.token());  // warm-up
  double spent = 0;
  while (more_runs(c, p, spent) && !session.finished()) {
    const double done = std::min<double>(p.seconds.size() + 2, runs - 1);
    relay.begin(lo + span * done / runs, span / runs);
    const auto t0 = std::chrono::steady_clock::now();
    const RunResult r = session.step(relay.token());
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double s = r.seconds > 0 ? r.seconds : wall;
    p.seconds.push_back(s);
    spent += s;
  }
}

}  // namespace

SweepResult run_sweep(const SweepConfig& config, const CancelToken& cancel,
                      const std::function<void(const SweepPoint&)>& on_point) {
  Plan plan = plan_sweep(config);
  SweepResult result;
  result.config = config;
  result.machine = host_description();
  result.date = host::utc_now_iso8601();
  for (const auto& b : plan.backends) result.devices.push_back(b->device());

  const double total = double(plan.variants.size() * config.seq_lens.size() * plan.backends.size());
  ProgressRelay relay(cancel);
  double done = 0;
  try {
    for (const VariantInfo* info : plan.variants) {
      for (int64_t L : config.seq_lens) {
        for (size_t bi = 0; bi < plan.backends.size(); ++bi) {
          relay.check();
          Backend& backend = *plan.backends[bi];
          SweepPoint p;
          p.variant = std::string(info->name);
          p.backend = std::string(backend.name());
          p.seq_len = L;
          p.threads = plan.backend_threads[bi];
          const double lo = done / total, span = 1.0 / total;
          try {
            if (config.mode == SweepMode::prefill) {
              p.problem = point_problem(config, *info, L);
              p.cost = cost_of(p.problem, element_bytes(p.problem.precision));
              run_prefill_point(config, backend, p, relay, lo, span);
            } else {
              const AttentionProblem cache_problem = point_problem(config, *info, L);
              p.problem = decode_step_problem(cache_problem, L);
              p.cost = decode_cost(cache_problem,
                                   std::vector<int64_t>(size_t(cache_problem.shape.batch), L));
              run_decode_point(config, backend, cache_problem, p, relay, lo, span);
            }
          } catch (const Error& e) {
            p.skipped = e.what();
          } catch (const std::bad_alloc&) {
            p.skipped = "out of memory at this length";
          }
          if (!p.skipped.empty()) p.seconds.clear();
          finish_stats(p, config.mode);
          result.points.push_back(std::move(p));
          done += 1;
          relay.report(done / total);
          if (on_point) on_point(result.points.back());
        }
      }
    }
  } catch (const Cancelled&) {
    result.cancelled = true;  // the point in progress is dropped; finished ones stay
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;  // written files keep Google Benchmark's key order

ojson config_to_json(const SweepConfig& c) {
  return {{"variants", c.variants},
          {"seq_lens", c.seq_lens},
          {"backends", c.backends},
          {"mode", to_string(c.mode)},
          {"repetitions", c.repetitions},
          {"min_time_s", c.min_time_s},
          {"threads", c.threads},
          {"pattern", c.pattern},
          {"seed", c.seed},
          {"base", problem_to_json(c.base)}};
}

std::string run_name(SweepMode mode, const SweepPoint& p) {
  return to_string(mode) + "/" + p.variant + "/" + p.backend + "/" + std::to_string(p.seq_len);
}

double tokens_per_run(SweepMode mode, const SweepPoint& p) {
  const double batch = double(p.problem.shape.batch);
  return mode == SweepMode::decode ? batch : batch * double(p.seq_len);
}

// Counters at a run time of `seconds` (rates are 0 when the time is 0).
ojson counters_at(SweepMode mode, const SweepPoint& p, double seconds) {
  auto rate = [&](double amount) { return seconds > 0 ? amount / seconds : 0.0; };
  return {{"tokens_per_second", rate(tokens_per_run(mode, p))},
          {"GFLOPS", rate(p.cost.flops) / 1e9},
          {"GBps", rate(p.cost.bytes) / 1e9},
          {"kv_bytes", p.cost.kv_cache_bytes},
          {"kv_bytes_per_token", p.cost.kv_bytes_per_token},
          {"flops", p.cost.flops},
          {"bytes", p.cost.bytes},
          {"visible_pairs", p.cost.visible_pairs}};
}

}  // namespace

std::string sweep_to_json(const SweepResult& result) {
  const SweepMode mode = result.config.mode;
  ojson peaks = ojson::array();
  for (const DevicePeak& p : result.peaks) peaks.push_back(peak_to_json(p));
  ojson context = {{"date", result.date},
                   {"host_name", host::host_name()},
                   {"executable", host::executable_path()},
                   {"num_cpus", host::logical_cpus()},
                   {"mhz_per_cpu", static_cast<int64_t>(std::lround(host::cpu_mhz()))},
#ifdef NDEBUG
                   {"library_build_type", "release"},
#else
                   {"library_build_type", "debug"},
#endif
                   {"attnscope",
                    {{"format_version", 1},
                     {"mode", to_string(mode)},
                     {"cancelled", result.cancelled},
                     {"machine", result.machine},
                     {"devices", result.devices},
                     {"config", config_to_json(result.config)},
                     {"peaks", peaks}}}};

  ojson benchmarks = ojson::array();
  for (const SweepPoint& p : result.points) {
    const std::string name = run_name(mode, p);
    const int reps = static_cast<int>(p.seconds.size());
    // One entry in Google Benchmark's key order; `index` < 0 makes an aggregate.
    auto entry = [&](const std::string& aggregate, int index, double seconds) {
      ojson e = {{"name", aggregate.empty() ? name : name + "_" + aggregate},
                 {"run_name", name},
                 {"run_type", aggregate.empty() ? "iteration" : "aggregate"},
                 {"repetitions", reps}};
      if (aggregate.empty()) {
        e["repetition_index"] = index;
        e["threads"] = p.threads;
        e["iterations"] = 1;
      } else {
        e["threads"] = p.threads;
        e["aggregate_name"] = aggregate;
        e["aggregate_unit"] = "time";
        e["iterations"] = reps;
      }
      e["real_time"] = seconds * 1e3;
      e["cpu_time"] = seconds * 1e3;  // wall time: the engine's threads, not this one's CPU time
      e["time_unit"] = "ms";
      e.update(counters_at(mode, p, seconds));
      return e;
    };
    if (!p.skipped.empty()) {
      ojson e = entry("", 0, 0.0);
      e["iterations"] = 0;
      e["error_occurred"] = true;
      e["error_message"] = p.skipped;
      e["problem"] = problem_to_json(p.problem);
      benchmarks.push_back(std::move(e));
      continue;
    }
    for (int i = 0; i < reps; ++i) {
      ojson e = entry("", i, p.seconds[size_t(i)]);
      if (i == 0) e["problem"] = problem_to_json(p.problem);  // once per point: what ran
      benchmarks.push_back(std::move(e));
    }
    bool problem_written = reps > 0;  // a point read back with aggregates only has none else
    const std::pair<const char*, double> aggregates[] = {
        {"median", p.median_s}, {"mean", p.mean_s}, {"min", p.min_s}, {"stddev", p.stddev_s}};
    for (const auto& [agg, seconds] : aggregates) {
      ojson e = entry(agg, -1, seconds);
      if (!problem_written) {
        e["problem"] = problem_to_json(p.problem);
        problem_written = true;
      }
      if (std::string_view(agg) == "stddev") {  // the spread of each rate, not a rate of a spread
        for (const char* rate : {"tokens_per_second", "GFLOPS", "GBps"}) {
          std::vector<double> v;
          for (double t : p.seconds) v.push_back(counters_at(mode, p, t)[rate].get<double>());
          double mean = 0, sq = 0;
          for (double x : v) mean += x / double(v.size());
          for (double x : v) sq += (x - mean) * (x - mean);
          e[rate] = v.size() > 1 ? std::sqrt(sq / double(v.size() - 1)) : 0.0;
        }
      }
      benchmarks.push_back(std::move(e));
    }
  }
  ojson root = {{"context", context}, {"benchmarks", benchmarks}};
  return root.dump(2) + "\n";
}

namespace {

// Typed access with the path of what is malformed in every message.
class Reader {
 public:
  [[noreturn]] static void fail(const std::string& path, const std::string& what) {
    throw Error("malformed benchmark JSON: " + path + " " + what);
  }
  static std::string at(const std::string& path, const char* key) {
    return path.empty() ? std::string(key) : path + "." + key;
  }
  static const json& field(const json& obj, const std::string& path, const char* key) {
    if (!obj.contains(key)) fail(at(path, key), "is missing");
    return obj[key];
  }
  static bool has(const json& obj, const char* key) {
    return obj.is_object() && obj.contains(key) && !obj[key].is_null();
  }
  static const json& object(const json& obj, const std::string& path, const char* key) {
    const json& v = field(obj, path, key);
    if (!v.is_object()) fail(at(path, key), "must be an object");
    return v;
  }
  static const json& array(const json& obj, const std::string& path, const char* key) {
    const json& v = field(obj, path, key);
    if (!v.is_array()) fail(at(path, key), "must be an array");
    return v;
  }
  static std::string text(const json& obj, const std::string& path, const char* key) {
    const json& v = field(obj, path, key);
    if (!v.is_string()) fail(at(path, key), "must be a string");
    return v.get<std::string>();
  }
  static double number(const json& obj, const std::string& path, const char* key) {
    const json& v = field(obj, path, key);
    if (!v.is_number()) fail(at(path, key), "must be a number");
    return v.get<double>();
  }
  static int64_t integer(const json& obj, const std::string& path, const char* key) {
    const json& v = field(obj, path, key);
    if (!v.is_number_integer()) fail(at(path, key), "must be an integer");
    // An unsigned value above INT64_MAX would wrap to a negative one in get<int64_t>().
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail(at(path, key), "is too large (" + v.dump() + ")");
    }
    return v.get<int64_t>();
  }
  static int small_integer(const json& obj, const std::string& path, const char* key) {
    const int64_t v = integer(obj, path, key);
    if (v < INT32_MIN || v > INT32_MAX)
      fail(at(path, key), "is out of range (" + std::to_string(v) + ")");
    return static_cast<int>(v);
  }
  static bool boolean(const json& obj, const std::string& path, const char* key) {
    const json& v = field(obj, path, key);
    if (!v.is_boolean()) fail(at(path, key), "must be true or false");
    return v.get<bool>();
  }
};

// The shared peak schema (calibrate.hpp), its errors as a malformed sweep file's.
DevicePeak read_peak(const json& j, const std::string& path) {
  try {
    return peak_from_json(j, path);
  } catch (const Error& e) {
    throw Error("malformed benchmark JSON: " + std::string(e.what()));
  }
}

// The shared problem schema, with every key required as a sweep file always wrote them.
AttentionProblem problem_from_json(const json& j, const std::string& path) {
  AttentionProblem p;
  try {
    read_problem_json(j, p, path, true, false);
  } catch (const Error& e) {
    throw Error("malformed benchmark JSON: " + std::string(e.what()));
  }
  return p;
}

std::vector<std::string> string_list(const json& obj, const std::string& path, const char* key) {
  std::vector<std::string> out;
  for (const json& v : Reader::array(obj, path, key)) {
    if (!v.is_string()) Reader::fail(Reader::at(path, key), "must hold only strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

SweepConfig config_from_json(const json& j, const std::string& path) {
  using R = Reader;
  if (!j.is_object()) R::fail(path, "must be an object");
  SweepConfig c;
  c.variants = string_list(j, path, "variants");
  c.backends = string_list(j, path, "backends");
  c.seq_lens.clear();
  for (const json& v : R::array(j, path, "seq_lens")) {
    if (!v.is_number_integer()) R::fail(path + ".seq_lens", "must hold only integers");
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) {
      R::fail(path + ".seq_lens", "holds a length too large for 64 bits (" + v.dump() + ")");
    }
    c.seq_lens.push_back(v.get<int64_t>());
  }
  const std::string mode = R::text(j, path, "mode");
  const auto m = sweep_mode_from_string(mode);
  if (!m) R::fail(path + ".mode", "must be \"prefill\" or \"decode\" (got \"" + mode + "\")");
  c.mode = *m;
  c.repetitions = R::small_integer(j, path, "repetitions");
  c.min_time_s = R::number(j, path, "min_time_s");
  c.threads = R::small_integer(j, path, "threads");
  c.pattern = R::text(j, path, "pattern");
  const json& seed = R::field(j, path, "seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0)) {
    R::fail(path + ".seed", "must be a non-negative integer");
  }
  c.seed = seed.get<uint64_t>();
  c.base = problem_from_json(R::field(j, path, "base"), path + ".base");
  return c;
}

constexpr double kMaxSeconds = 1e9;  // about 32 years

double to_seconds(double value, const std::string& unit, const std::string& path) {
  double seconds = 0;
  if (unit == "ns") {
    seconds = value / 1e9;  // divisions by exact powers of ten round once
  } else if (unit == "us") {
    seconds = value / 1e6;
  } else if (unit == "ms") {
    seconds = value / 1e3;
  } else if (unit == "s") {
    seconds = value;
  } else {
    Reader::fail(path + ".time_unit", "must be ns, us, ms or s (got \"" + unit + "\")");
  }
  // A time no run can take would overflow the rates and the writer's milliseconds.
  if (!(seconds >= 0 && seconds <= kMaxSeconds)) {
    Reader::fail(path + ".real_time",
                 "must be a time from 0 to 1e9 s (got " + std::to_string(value) + " " + unit + ")");
  }
  return seconds;
}

struct ParsedName {
  SweepMode mode;
  std::string variant, backend;
  int64_t seq_len;
};

// "<mode>/<variant>/<backend>/<seq_len>"
ParsedName parse_run_name(const std::string& name, const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(name);
  for (std::string part; std::getline(in, part, '/');) parts.push_back(part);
  auto bad = [&] {
    Reader::fail(path, "is \"" + name + "\", not <mode>/<variant>/<backend>/<seq_len>");
  };
  if (parts.size() != 4 || parts[1].empty() || parts[2].empty()) bad();
  const auto mode = sweep_mode_from_string(parts[0]);
  if (!mode) bad();
  size_t used = 0;
  int64_t L = 0;
  try {
    L = std::stoll(parts[3], &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != parts[3].size() || L < 1) bad();
  // One spelling per point: "…/08", "…/+8" or a trailing "/" would name the same point twice,
  // and the writer would merge them on the next read.
  if (name != parts[0] + "/" + parts[1] + "/" + parts[2] + "/" + std::to_string(L)) bad();
  return {*mode, parts[1], parts[2], L};
}

}  // namespace

SweepResult sweep_from_json(const std::string& text) {
  using R = Reader;
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw Error(std::string("malformed benchmark JSON: not valid JSON (") + e.what() + ")");
  }
  if (!root.is_object()) R::fail("the document", "must be an object with \"benchmarks\"");
  if (!root.contains("benchmarks")) {
    R::fail("\"benchmarks\"", "is missing (not a Google Benchmark JSON file)");
  }
  const json& benchmarks = R::array(root, "", "benchmarks");

  SweepResult result;
  bool have_config = false, have_mode = false;
  if (root.contains("context")) {
    const json& ctx = R::object(root, "", "context");
    if (R::has(ctx, "date")) result.date = R::text(ctx, "context", "date");
    if (ctx.contains("attnscope")) {
      const json& a = R::object(ctx, "context", "attnscope");
      const std::string path = "context.attnscope";
      if (a.contains("config")) {
        result.config = config_from_json(a["config"], path + ".config");
        have_config = have_mode = true;
      }
      if (R::has(a, "machine")) result.machine = R::text(a, path, "machine");
      if (a.contains("devices")) result.devices = string_list(a, path, "devices");
      if (a.contains("mode")) {
        const std::string mode = R::text(a, path, "mode");
        const auto m = sweep_mode_from_string(mode);
        if (!m) R::fail(path + ".mode", "must be \"prefill\" or \"decode\"");
        result.config.mode = *m;
        have_mode = true;
      }
      if (a.contains("cancelled")) result.cancelled = R::boolean(a, path, "cancelled");
      if (a.contains("peaks")) {
        const json& peaks = R::array(a, path, "peaks");
        for (size_t i = 0; i < peaks.size(); ++i) {
          result.peaks.push_back(read_peak(peaks[i], path + ".peaks[" + std::to_string(i) + "]"));
        }
      }
    }
  }

  std::map<std::string, size_t> index;  // run name -> point
  struct Aggregates {
    std::optional<double> median, mean, min, stddev;
    json median_counters;
    std::string median_path;
  };
  std::vector<Aggregates> aggs;
  for (size_t i = 0; i < benchmarks.size(); ++i) {
    const json& e = benchmarks[i];
    const std::string path = "benchmarks[" + std::to_string(i) + "]";
    if (!e.is_object()) R::fail(path, "must be an object");
    const std::string name = R::text(e, path, "name");
    const std::string run_type = R::has(e, "run_type") ? R::text(e, path, "run_type") : "iteration";
    std::string run = R::has(e, "run_name") ? R::text(e, path, "run_name") : name;
    std::string agg_name;
    if (run_type == "aggregate") {
      agg_name = R::text(e, path, "aggregate_name");
      const std::string suffix = "_" + agg_name;
      if (!R::has(e, "run_name") && run.size() > suffix.size() &&
          run.compare(run.size() - suffix.size(), suffix.size(), suffix) == 0) {
        run.resize(run.size() - suffix.size());
      }
    } else if (run_type != "iteration") {
      R::fail(path + ".run_type",
              "must be \"iteration\" or \"aggregate\" (got \"" + run_type + "\")");
    }
    const ParsedName parsed = parse_run_name(run, path + ".run_name");
    if (!have_mode) {
      result.config.mode = parsed.mode;
      have_mode = true;
    } else if (parsed.mode != result.config.mode) {
      R::fail(path + ".name", "mixes " + to_string(parsed.mode) + " with a " +
                                  to_string(result.config.mode) + " sweep");
    }
    auto [it, fresh] = index.emplace(run, result.points.size());
    if (fresh) {
      SweepPoint p;
      p.variant = parsed.variant;
      p.backend = parsed.backend;
      p.seq_len = parsed.seq_len;
      result.points.push_back(std::move(p));
      aggs.emplace_back();
    }
    SweepPoint& p = result.points[it->second];
    if (R::has(e, "problem")) p.problem = problem_from_json(e["problem"], path + ".problem");
    if (fresh) {
      if (R::has(e, "threads")) p.threads = static_cast<int>(R::integer(e, path, "threads"));
      if (R::has(e, "flops")) p.cost.flops = R::number(e, path, "flops");
      if (R::has(e, "bytes")) p.cost.bytes = R::number(e, path, "bytes");
      if (R::has(e, "kv_bytes")) p.cost.kv_cache_bytes = R::number(e, path, "kv_bytes");
      if (R::has(e, "kv_bytes_per_token")) {
        p.cost.kv_bytes_per_token = R::number(e, path, "kv_bytes_per_token");
      }
      if (R::has(e, "visible_pairs")) {
        p.cost.visible_pairs = R::integer(e, path, "visible_pairs");
      }
    }
    if (R::has(e, "error_occurred") && R::boolean(e, path, "error_occurred")) {
      p.skipped = R::has(e, "error_message") ? R::text(e, path, "error_message") : "error";
      if (p.skipped.empty()) p.skipped = "error";
      continue;
    }
    const double value = R::number(e, path, "real_time");
    const std::string unit = R::has(e, "time_unit") ? R::text(e, path, "time_unit") : "ns";
    const double seconds = to_seconds(value, unit, path);
    if (run_type == "iteration") {
      p.seconds.push_back(seconds);
      continue;
    }
    Aggregates& a = aggs[it->second];
    if (agg_name == "median") {
      a.median = seconds;
      a.median_counters = e;
      a.median_path = path;
    } else if (agg_name == "mean") {
      a.mean = seconds;
    } else if (agg_name == "min") {
      a.min = seconds;
    } else if (agg_name == "stddev") {
      a.stddev = seconds;
    }  // others (cv, max, user aggregates) are not charted
  }

  for (size_t i = 0; i < result.points.size(); ++i) {
    SweepPoint& p = result.points[i];
    if (!p.skipped.empty()) {
      p.seconds.clear();
      continue;
    }
    finish_stats(p, result.config.mode);  // from the repetitions; aggregates written win below
    const Aggregates& a = aggs[i];
    if (a.median) p.median_s = *a.median;
    if (a.mean) p.mean_s = *a.mean;
    if (a.min) p.min_s = *a.min;
    if (a.stddev) p.stddev_s = *a.stddev;
    const std::string& path = a.median_path;
    const json& mc = a.median_counters;
    if (R::has(mc, "tokens_per_second")) {
      p.tokens_per_s = R::number(mc, path, "tokens_per_second");
    }
    if (R::has(mc, "GFLOPS")) p.gflops = R::number(mc, path, "GFLOPS");
    if (R::has(mc, "GBps")) p.gbps = R::number(mc, path, "GBps");
  }

  if (!have_config) {  // a plain Google Benchmark file: the config is what its points show
    SweepConfig& c = result.config;
    c.variants.clear(), c.backends.clear(), c.seq_lens.clear();
    auto add = [](auto& list, const auto& v) {
      if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
    };
    for (const SweepPoint& p : result.points) {
      add(c.variants, p.variant);
      add(c.backends, p.backend);
      add(c.seq_lens, p.seq_len);
    }
    if (!result.points.empty()) {
      c.repetitions = std::max<int>(1, static_cast<int>(result.points.front().seconds.size()));
    }
  }
  return result;
}

}  // namespace attnscope
