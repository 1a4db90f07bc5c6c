// `attnscope-cli run`: build a problem from flags (or from the shapes of loaded tensors), run it on
// a backend, print a summary or JSON, and write outputs and pooled maps. Outputs are written only
// after everything succeeded, so a failure never leaves a partial file.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "commands.hpp"
#include "flags.hpp"

namespace attnscope::cli {
namespace {

struct RunOptions {
  std::string variant = "dense";
  std::string backend;
  // Shape flags: when inputs are loaded they must agree with the tensors.
  ProblemFlags f;
  std::optional<int64_t> q_len, kv_len, seq_len;
  std::string inputs, pattern = "random";
  uint64_t seed = 0;
  std::optional<std::string> out, map;  // given-but-empty is an error, not "no output"
  std::string map_size = "256,256", pool = "max";
  int64_t map_batch = 0, map_head = 0;
  std::string map_region;
  int repeat = 0;
  bool json = false;
};

AttentionProblem build_problem(const RunOptions& o, const VariantInfo& info, const Inputs* loaded) {
  AttentionProblem p = AttentionProblem::defaults(info.id);
  const ProblemFlags& f = o.f;
  apply_knobs(f, p);
  const bool from_file = loaded != nullptr;
  if (from_file) info.infer_shape(*loaded, p);
  if (o.seq_len) {
    apply_dim(o.seq_len, p.shape.q_len, "q_len", from_file);
    apply_dim(o.seq_len, p.shape.kv_len, "kv_len", from_file);
  }
  apply_dim(o.q_len, p.shape.q_len, "q_len", from_file);
  apply_dim(o.kv_len, p.shape.kv_len, "kv_len", from_file);
  // A recurrent state runs over one token sequence: its keys are the queries' tokens.
  if (info.has_state && !from_file) {
    if (o.q_len && !o.kv_len) p.shape.kv_len = p.shape.q_len;
    if (o.kv_len && !o.q_len) p.shape.q_len = p.shape.kv_len;
  }
  apply_shape_flags(f, p, from_file);
  p.check();
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::json tensor_stats(const Tensor& t) {
  double sum_abs = 0, lo = INFINITY, hi = -INFINITY;
  for (float x : t.span()) {
    sum_abs += std::fabs(x);
    lo = std::min<double>(lo, x);
    hi = std::max<double>(hi, x);
  }
  return {{"shape", t.shape()},
          {"mean_abs", t.numel() ? sum_abs / double(t.numel()) : 0.0},
          {"min", std::isfinite(lo) ? nlohmann::json(lo) : nlohmann::json(nullptr)},
          {"max", std::isfinite(hi) ? nlohmann::json(hi) : nlohmann::json(nullptr)}};
}

// True when a and b name one file (or would: neither exists yet but they resolve alike).
bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

// Output paths that cannot work, refused before the run rather than after it.
void check_outputs(const RunOptions& o) {
  if (o.out) io::check_output_path(*o.out, "--out");
  if (o.map) io::check_output_path(*o.map, "--map");
  if (o.out && o.map && same_file(*o.out, *o.map)) {
    throw Error("--out and --map name the same file '" + *o.map + "'; give each its own");
  }
  for (const std::optional<std::string>& target : {o.out, o.map}) {
    if (target && !o.inputs.empty() && same_file(*target, o.inputs)) {
      throw Error("'" + *target + "' is the --inputs file; writing it would destroy the input");
    }
  }
}

int run(const RunOptions& o) {
  const VariantInfo* info = find_variant(o.variant);
  if (!info) {
    throw Error("unknown variant '" + o.variant + "' (choose from: " + variant_names() + ")");
  }
  // Everything that can fail on bad flags fails before any heavy work.
  const std::vector<int64_t> size = parse_ints(o.map_size, 2, "--map-size");
  if (o.pool != "max" && o.pool != "mean") throw Error("--pool must be 'max' or 'mean'");
  if (o.repeat < 0) throw Error("--repeat must be 0 or more");
  check_outputs(o);
  const std::string backend_name = o.backend.empty() ? default_backend() : o.backend;
  std::unique_ptr<Backend> backend = make_backend(backend_name);

  Inputs inputs;
  AttentionProblem problem;
  if (!o.inputs.empty()) {
    inputs.tensors = io::load_tensors(o.inputs);
    problem = build_problem(o, *info, &inputs);
  } else {
    problem = build_problem(o, *info, nullptr);
    inputs = make_inputs(problem, o.pattern, o.seed);
  }
  if (Support s = backend->supports(problem); !s.ok) {
    throw Error("backend '" + backend_name + "' cannot run this problem: " + s.why_not);
  }
  std::optional<MapRequest> req;
  if (o.map) {
    req.emplace();
    req->batch = o.map_batch;
    req->head = o.map_head;
    req->out_rows = size[0];
    req->out_cols = size[1];
    req->pool = o.pool == "max" ? Pool::max : Pool::mean;
    if (!o.map_region.empty()) {
      const auto reg = parse_ints(o.map_region, 4, "--map-region");
      req->row0 = reg[0], req->row1 = reg[1], req->col0 = reg[2], req->col1 = reg[3];
    }
    resolve_map_request(problem, *req);  // a bad request fails now, not after a long run
  }

  RunResult result = backend->run(problem, inputs, Probes{}, CancelToken{});
  std::vector<double> ms;
  for (int r = 0; r < o.repeat; ++r) {
    result = backend->run(problem, inputs, Probes{}, CancelToken{});
    ms.push_back(result.seconds * 1e3);
  }
  if (ms.empty()) ms.push_back(result.seconds * 1e3);

  Tensor map;
  if (req)
    map = backend->attention_map(problem, inputs, result, *req, CancelToken{});  // where it ran

  // Outputs last, as one batch: each file appears only once all are written, so a failure leaves
  // every existing file as it was.
  std::vector<std::string> written;
  io::OutputBatch batch;
  if (o.out) {
    TensorMap outs{{"o", result.o}};
    if (info->has_lse()) outs.emplace("lse", result.lse);
    if (result.final_state) outs.emplace("final_state", *result.final_state);
    std::map<std::string, IndexTensor, std::less<>> index;
    if (result.selection) index.emplace("selection", *result.selection);
    for (const auto& [name, t] : result.extra) outs.emplace(name, t);
    for (const auto& [name, t] : result.extra_index) index.emplace(name, t);
    io::save_safetensors(*o.out, outs, index, &batch);
    written.push_back(*o.out);
  }
  if (o.map) {
    io::save_npy(*o.map, map, &batch);
    written.push_back(*o.map);
  }
  batch.commit();
  // Notes last: a run that fails prints exactly one line, its error.
  note_ignored_flags(o.f, {info->id});

  const Cost cost = cost_of(problem, element_bytes(problem.precision));
  const double med = median(ms), best = *std::min_element(ms.begin(), ms.end());
  nlohmann::json j = {
      {"variant", info->name},
      {"problem", problem.describe()},
      {"precision", std::string(precision_name(problem.precision))},
      {"backend", result.backend},
      {"device", backend->device()},
      {"runs", ms.size()},
      {"median_ms", med},
      {"min_ms", best},
      {"max_ms", *std::max_element(ms.begin(), ms.end())},
      // The run's counters: the work the backend actually did (MLA's chosen form, for one).
      {"flops", result.counters.flops},
      {"bytes", result.counters.bytes},
      {"gflops", result.counters.flops / (med * 1e-3) / 1e9},
      {"gbps", result.counters.bytes / (med * 1e-3) / 1e9},
      {"kv_cache_bytes", cost.kv_cache_bytes},
      {"kv_bytes_per_token", cost.kv_bytes_per_token},
      {"o", tensor_stats(result.o)},
  };
  // The last run's stages (DSA: indexer and attention), where the variant reports them.
  if (!result.phases.empty()) {
    nlohmann::json phases = nlohmann::json::object();
    for (const auto& [name, s] : result.phases) phases[name] = s * 1e3;
    j["phases_ms"] = phases;
  }
  if (result.selection) {
    int64_t chosen = 0;
    for (int32_t b : result.selection->span()) chosen += b >= 0;
    j["selected_blocks_mean"] =
        double(chosen) / double(std::max<int64_t>(
                             1, problem.shape.batch * problem.shape.heads * problem.shape.q_len));
  }
  if (o.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "problem   " << problem.describe() << "\n"
            << "backend   " << result.backend << " (" << backend->device() << ")\n"
            << "time      " << med << " ms (median of " << ms.size() << ")\n"
            << "cost      " << result.counters.flops / 1e9 << " GFLOP, "
            << result.counters.bytes / 1e6 << " MB moved -> " << j["gflops"].get<double>()
            << " GFLOP/s, " << j["gbps"].get<double>() << " GB/s\n"
            << "kv cache  " << cost.kv_bytes_per_token << " B/token, " << cost.kv_cache_bytes / 1e6
            << " MB held\n"
            << "output    o " << shape_str(result.o.shape())
            << " mean|o| = " << j["o"]["mean_abs"].get<double>() << "\n";
  if (result.selection) {
    std::cout << "routing   " << j["selected_blocks_mean"].get<double>()
              << " blocks selected per query on average\n";
  }
  for (const std::string& f : written) std::cout << "wrote     " << f << "\n";
  return 0;
}

}  // namespace

std::function<int()> add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run one attention problem and report or save results");
  cmd->add_option("--variant", o->variant, "Variant: " + variant_names())->capture_default_str();
  cmd->add_option("--backend", o->backend, "Backend (see `attnscope-cli info`)");
  add_problem_flags(*cmd, o->f);
  cmd->add_option("--q-len", o->q_len, "Query length Lq")->check(exact_integer<int64_t>());
  cmd->add_option("--kv-len", o->kv_len, "Key/value length Lk")->check(exact_integer<int64_t>());
  cmd->add_option("--seq-len", o->seq_len, "Sets both q_len and kv_len")
      ->check(exact_integer<int64_t>());
  cmd->add_option("--inputs", o->inputs, "Input tensors (.safetensors; names per variant)")
      ->check(CLI::ExistingFile);
  add_input_flags(*cmd, o->pattern, o->seed);
  cmd->add_option(
      "--out", o->out,
      "Write o, lse, selection, final_state and the variant's own outputs (.safetensors)");
  cmd->add_option("--map", o->map, "Write a pooled attention map (.npy)");
  cmd->add_option("--map-size", o->map_size, "Map resolution ROWS,COLS")->capture_default_str();
  cmd->add_option("--pool", o->pool, "Map pooling: max or mean")->capture_default_str();
  cmd->add_option("--map-batch", o->map_batch, "Map: batch index")
      ->check(exact_integer<int64_t>())
      ->capture_default_str();
  cmd->add_option("--map-head", o->map_head, "Map: query head")
      ->check(exact_integer<int64_t>())
      ->capture_default_str();
  cmd->add_option("--map-region", o->map_region, "Map: ROW0,ROW1,COL0,COL1 (half-open)");
  cmd->add_option("--repeat", o->repeat, "Time N runs after one warm-up")
      ->check(exact_integer<int>());
  cmd->add_flag("--json", o->json, "Print one JSON object instead of the summary");
  // Loaded inputs and generated ones are two different sources; asking for both is a mistake.
  cmd->get_option("--inputs")->excludes(cmd->get_option("--seed"));
  cmd->get_option("--inputs")->excludes(cmd->get_option("--pattern"));
  return [o] { return run(*o); };
}

}  // namespace attnscope::cli
