// `attnscope-cli bench`: a sweep of variants x sequence lengths x backends (prefill or decode)
// through the engine's run_sweep, printed as a table with the speed-up over dense, and written as
// the Google Benchmark-compatible JSON the GUI's charts read. Ctrl-C stops after the run in
// progress and still reports (and writes) what finished.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "attnscope/calibrate.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "commands.hpp"
#include "flags.hpp"

namespace attnscope::cli {
namespace {

struct BenchOptions {
  std::string variants = "dense";
  std::string seq_lens = "1024,2048,4096";
  std::string backends;
  std::string mode = "prefill";
  ProblemFlags f;
  int repetitions = 5;
  double min_time = 0;
  int threads = 0;
  std::string pattern = "random";
  uint64_t seed = 0;
  std::string json;
  bool peak = false, remeasure = false;
};

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_interrupt(int) {
  g_interrupted = 1;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

SweepConfig build_config(const BenchOptions& o) {
  SweepConfig c;
  c.variants = parse_name_list(o.variants, "--variants");
  c.seq_lens = parse_int_list(o.seq_lens, "--seq-lens");
  c.backends = parse_name_list(o.backends.empty() ? default_backend() : o.backends, "--backend");
  const auto mode = sweep_mode_from_string(o.mode);
  if (!mode) throw Error("--mode must be 'prefill' or 'decode' (got '" + o.mode + "')");
  c.mode = *mode;
  c.repetitions = o.repetitions;
  c.min_time_s = o.min_time;
  c.threads = o.threads;
  c.pattern = o.pattern;
  c.seed = o.seed;

  for (const std::string& name : c.variants) {
    const VariantInfo* info = find_variant(name);
    if (!info) {
      throw Error("unknown variant '" + name + "' (choose from: " + variant_names() + ")");
    }
    if (info->causal_only && o.f.non_causal) {
      throw Error(std::string(info->title) +
                  " is defined only for causal attention (drop --no-causal)");
    }
  }

  // Benchmarks default to causal, as language models run (and so dense compares fairly with the
  // causal-only variants); --no-causal times encoder-style dense and MLA.
  AttentionProblem& p = c.base;
  p = AttentionProblem::defaults(VariantId::dense);
  p.causal = true;
  apply_knobs(o.f, p);
  apply_shape_flags(o.f, p, /*loaded=*/false);  // MLA's own dims are applied per point
  return c;
}

// Fixed-width columns; numbers in the most readable unit for their size.
std::string fmt(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

std::string rate(double v) {
  if (v >= 1e9) return fmt(v / 1e9, 2) + "G";
  if (v >= 1e6) return fmt(v / 1e6, 2) + "M";
  if (v >= 1e3) return fmt(v / 1e3, 1) + "k";
  return fmt(v, 1);
}

void print_table(const SweepResult& r, std::ostream& out) {
  // The dense point at the same length and backend, for the speed-up column.
  std::map<std::tuple<std::string, int64_t>, double> dense;
  for (const SweepPoint& p : r.points) {
    if (p.variant == "dense" && p.skipped.empty()) dense[{p.backend, p.seq_len}] = p.median_s;
  }
  const bool has_dense = std::find(r.config.variants.begin(), r.config.variants.end(), "dense") !=
                             r.config.variants.end() ||
                         !dense.empty();
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-10s %8s %11s %10s %9s %8s", "variant", "backend",
                r.config.mode == SweepMode::decode ? "context" : "L", "median ms", "tokens/s",
                "GFLOP/s", "GB/s");
  out << line << (has_dense ? "  vs dense" : "") << "\n";
  for (const SweepPoint& p : r.points) {
    if (!p.skipped.empty()) {
      std::snprintf(line, sizeof line, "%-12s %-10s %8lld  skipped: ", p.variant.c_str(),
                    p.backend.c_str(), static_cast<long long>(p.seq_len));
      out << line << p.skipped << "\n";
      continue;
    }
    std::snprintf(line, sizeof line, "%-12s %-10s %8lld %11s %10s %9s %8s", p.variant.c_str(),
                  p.backend.c_str(), static_cast<long long>(p.seq_len),
                  fmt(p.median_s * 1e3, 3).c_str(), rate(p.tokens_per_s).c_str(),
                  fmt(p.gflops, 1).c_str(), fmt(p.gbps, 1).c_str());
    out << line;
    if (has_dense) {
      const auto it = dense.find({p.backend, p.seq_len});
      out << "  "
          << (it != dense.end() && p.median_s > 0 ? fmt(it->second / p.median_s, 2) + "x"
                                                  : std::string("-"));
    }
    out << "\n";
  }
}

int bench(const BenchOptions& o) {
  const SweepConfig config = build_config(o);
  const bool json_to_stdout = o.json == "-";
  if (!o.json.empty() && !json_to_stdout) {  // fail now, not after minutes of measuring
    io::check_output_path(o.json, "--json");
  }
  // Notes once the flags are known to be good, so a refusal is exactly one line.
  std::vector<VariantId> chosen;
  for (const std::string& name : config.variants) chosen.push_back(find_variant(name)->id);
  note_ignored_flags(o.f, chosen);
  std::ostream& out = json_to_stdout ? std::cerr : std::cout;

  std::vector<DevicePeak> peaks;
  if (o.peak) {
    for (const std::string& name : config.backends) {
      std::unique_ptr<Backend> backend = make_backend(name);
      if (name == "cpu" && config.threads > 0) {  // the peak of the threads the sweep runs on
        backend = make_cpu_backend(CpuOptions{config.threads});
      }
      peaks.push_back(device_peak(*backend, o.remeasure));
      out << "peak  " << describe(peaks.back()) << "\n";
    }
    out << "\n";
  }

  CancelToken cancel;
  const size_t total = config.variants.size() * config.seq_lens.size() * config.backends.size();
  size_t done = 0;
  cancel.set_progress_callback([&cancel](double) {
    if (g_interrupted) cancel.cancel();
  });
  g_interrupted = 0;
  std::signal(SIGINT, on_interrupt);
  SweepResult result;
  try {
    result = run_sweep(config, cancel, [&](const SweepPoint& p) {
      ++done;
      std::cerr << "bench: [" << done << "/" << total << "] " << to_string(config.mode) << " "
                << p.variant << " " << p.backend << " L=" << p.seq_len << ": "
                << (p.skipped.empty() ? fmt(p.median_s * 1e3, 3) + " ms"
                                      : "skipped (" + p.skipped + ")")
                << "\n";
      if (g_interrupted) cancel.cancel();
    });
  } catch (...) {
    std::signal(SIGINT, SIG_DFL);
    throw;
  }
  std::signal(SIGINT, SIG_DFL);
  result.peaks = peaks;

  print_table(result, out);
  if (!o.json.empty()) {
    const std::string text = sweep_to_json(result);
    if (json_to_stdout) {
      std::cout << text << std::flush;
    } else {
      io::save_text(o.json, text);
      out << "wrote " << o.json << "\n";
    }
  }
  if (result.cancelled) {
    std::cerr << "bench: interrupted after " << result.points.size() << " of " << total
              << " points\n";
    return 130;
  }
  return 0;
}

}  // namespace

std::function<int()> add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Time variants x sequence lengths x backends (prefill or decode); table and JSON");
  cmd->add_option("--variants", o->variants, "Comma list of variants: " + variant_names())
      ->capture_default_str();
  cmd->add_option("--seq-lens", o->seq_lens,
                  "Comma list of lengths (prefill: Lq = Lk = L; decode: context L)")
      ->capture_default_str();
  cmd->add_option("--backend,--backends", o->backends,
                  "Comma list of backends (default: cpu when built, else reference)");
  cmd->add_option("--mode", o->mode, "prefill (whole sequences) or decode (one token per step)")
      ->capture_default_str();
  add_problem_flags(*cmd, o->f);
  cmd->get_option("--causal")->description("Causal mask (the default for bench)");
  cmd->get_option("--non-causal")
      ->description("No mask: encoder-style " + unmasked_variants() +
                    " (causal-only variants refuse it)");
  cmd->add_option("--repetitions", o->repetitions, "Timed runs per point, after one warm-up")
      ->check(exact_integer<int>())
      ->capture_default_str();
  cmd->add_option("--min-time", o->min_time,
                  "Keep repeating a point until this many seconds are spent (0: exactly "
                  "--repetitions)");
  cmd->add_option("--threads", o->threads, "cpu backend threads (0: ATTNSCOPE_THREADS or all)")
      ->check(exact_integer<int>())
      ->capture_default_str();
  add_input_flags(*cmd, o->pattern, o->seed);
  cmd->add_option("--json", o->json,
                  "Write Google Benchmark-compatible JSON to FILE (atomically; - for stdout)");
  cmd->add_flag("--peak", o->peak,
                "Print each backend's calibrated device peak (GEMM GFLOP/s, copy GB/s; cached)");
  cmd->add_flag("--remeasure", o->remeasure, "With --peak: measure again instead of the cache");
  return [o] { return bench(*o); };
}

}  // namespace attnscope::cli
