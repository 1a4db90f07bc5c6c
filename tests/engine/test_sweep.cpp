// Benchmark sweeps: point order and statistics, each variant's structure, bad configs rejected
// before anything runs, skipped points with their reason, cancel from the progress callback,
// decode mode, and the Google Benchmark JSON: a faithful round trip and clear errors for malformed
// files. Shapes are tiny and repetitions 2, so the whole file runs in seconds on two cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "attnscope/cost.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "env_guard.hpp"

namespace attnscope {
namespace {

using nlohmann::json;

SweepConfig tiny_config() {
  SweepConfig c;
  c.variants = {"dense", "swa"};
  c.seq_lens = {16, 24};
  c.backends = {"cpu", "reference"};
  c.repetitions = 2;
  c.base = AttentionProblem::defaults(VariantId::dense);
  c.base.shape.batch = 1;
  c.base.shape.heads = 4;
  c.base.shape.kv_heads = 2;
  c.base.shape.head_dim = 8;
  c.base.shape.v_head_dim = 8;
  c.base.swa.window = 8;
  c.base.swa.sinks = 2;
  c.base.moba.block_size = 8;
  c.base.moba.top_k = 2;
  c.base.mla.kv_lora_rank = 16;
  c.base.mla.rope_dim = 4;
  c.base.mla.nope_dim = 8;
  c.base.gated_delta.chunk_size = 8;
  c.seed = 7;
  return c;
}

// Statistics recomputed by hand from a point's repetitions.
void expect_stats_consistent(const SweepPoint& p, SweepMode mode) {
  ASSERT_FALSE(p.seconds.empty());
  std::vector<double> s = p.seconds;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  const double median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  double mean = 0;
  for (double x : s) mean += x / double(n);
  double sq = 0;
  for (double x : s) sq += (x - mean) * (x - mean);
  const double stddev = n > 1 ? std::sqrt(sq / double(n - 1)) : 0.0;
  EXPECT_DOUBLE_EQ(p.median_s, median);
  EXPECT_NEAR(p.mean_s, mean, 1e-12 * mean);
  EXPECT_DOUBLE_EQ(p.min_s, s.front());
  EXPECT_NEAR(p.stddev_s, stddev, 1e-9 * mean);
  const double tokens =
      double(p.problem.shape.batch) * (mode == SweepMode::decode ? 1.0 : double(p.seq_len));
  EXPECT_DOUBLE_EQ(p.tokens_per_s, tokens / median);
  EXPECT_DOUBLE_EQ(p.gflops, p.cost.flops / median / 1e9);
  EXPECT_DOUBLE_EQ(p.gbps, p.cost.bytes / median / 1e9);
  for (double x : p.seconds) EXPECT_GT(x, 0);
}

TEST(Sweep, PrefillRunsEveryPointInOrderWithStatistics) {
  const SweepConfig c = tiny_config();
  std::vector<double> progress;
  CancelToken cancel;
  cancel.set_progress_callback([&](double f) { progress.push_back(f); });
  std::vector<std::string> seen;
  const SweepResult r = run_sweep(c, cancel, [&](const SweepPoint& p) {
    seen.push_back(p.variant + "/" + p.backend + "/" + std::to_string(p.seq_len));
  });
  EXPECT_FALSE(r.cancelled);
  // Variant-major, then length, then backend.
  const std::vector<std::string> order = {
      "dense/cpu/16", "dense/reference/16", "dense/cpu/24", "dense/reference/24",
      "swa/cpu/16",   "swa/reference/16",   "swa/cpu/24",   "swa/reference/24"};
  EXPECT_EQ(seen, order);
  ASSERT_EQ(r.points.size(), order.size());
  for (const SweepPoint& p : r.points) {
    SCOPED_TRACE(p.variant + "/" + p.backend + "/" + std::to_string(p.seq_len));
    EXPECT_TRUE(p.skipped.empty()) << p.skipped;
    EXPECT_EQ(p.seconds.size(), 2u);
    EXPECT_EQ(p.problem.shape.q_len, p.seq_len);
    EXPECT_EQ(p.problem.shape.kv_len, p.seq_len);
    EXPECT_EQ(p.problem.shape.heads, 4);
    EXPECT_EQ(p.problem.shape.kv_heads, 2);
    EXPECT_EQ(p.problem.variant, find_variant(p.variant)->id);
    const Cost cost = cost_of(p.problem);
    EXPECT_EQ(p.cost.flops, cost.flops);
    EXPECT_EQ(p.cost.bytes, cost.bytes);
    EXPECT_EQ(p.cost.kv_cache_bytes, cost.kv_cache_bytes);
    EXPECT_EQ(p.threads, p.backend == "reference" ? 1 : cpu_default_threads());
    expect_stats_consistent(p, SweepMode::prefill);
  }
  EXPECT_FALSE(r.points[0].problem.causal);  // dense keeps the base's (non-causal) mask
  EXPECT_TRUE(r.points[4].problem.causal);   // SWA is causal-only: forced
  EXPECT_EQ(r.points[4].problem.swa.window, 8);
  EXPECT_EQ(r.points[4].problem.swa.sinks, 2);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_FALSE(r.machine.empty());
  EXPECT_FALSE(r.date.empty());
  // Progress: within [0, 1], never backwards, finishing at 1.
  ASSERT_FALSE(progress.empty());
  for (size_t i = 0; i < progress.size(); ++i) {
    EXPECT_GE(progress[i], 0.0);
    EXPECT_LE(progress[i], 1.0);
    if (i) {
      EXPECT_GE(progress[i], progress[i - 1] - 1e-12) << "at report " << i;
    }
  }
  EXPECT_DOUBLE_EQ(progress.back(), 1.0);
}

TEST(Sweep, EachVariantGetsItsOwnStructure) {
  SweepConfig c = tiny_config();
  c.variants = {"mla", "gdn", "moba"};  // an alias is fine
  c.seq_lens = {16};
  c.backends = {"cpu"};
  c.base.shape.batch = 2;
  c.base.causal = false;
  const SweepResult r = run_sweep(c);
  ASSERT_EQ(r.points.size(), 3u);
  const SweepPoint& mla = r.points[0];
  EXPECT_EQ(mla.variant, "mla");
  EXPECT_EQ(mla.problem.shape.kv_heads, 1);
  EXPECT_EQ(mla.problem.shape.head_dim, 8 + 4);  // nope + rope
  EXPECT_EQ(mla.problem.shape.heads, 4);
  EXPECT_EQ(mla.problem.shape.batch, 2);
  EXPECT_FALSE(mla.problem.causal);  // MLA may be non-causal: the base decides
  EXPECT_EQ(mla.problem.mla.kv_lora_rank, 16);
  const SweepPoint& gdn = r.points[1];
  EXPECT_EQ(gdn.variant, "gated_delta");
  EXPECT_EQ(gdn.problem.shape.kv_heads, gdn.problem.shape.heads);  // one state per head
  EXPECT_TRUE(gdn.problem.causal);
  EXPECT_EQ(gdn.problem.gated_delta.chunk_size, 8);
  EXPECT_EQ(gdn.problem.shape.q_len, 16);
  EXPECT_EQ(gdn.problem.shape.kv_len, 16);
  const SweepPoint& moba = r.points[2];
  EXPECT_TRUE(moba.problem.causal);
  EXPECT_EQ(moba.problem.moba.block_size, 8);
  EXPECT_EQ(moba.problem.moba.top_k, 2);
  for (const SweepPoint& p : r.points) {
    EXPECT_TRUE(p.skipped.empty()) << p.variant << ": " << p.skipped;
    expect_stats_consistent(p, SweepMode::prefill);
    EXPECT_DOUBLE_EQ(p.tokens_per_s, 2.0 * 16 / p.median_s);  // batch x L per run
  }
}

// Runs `c`, expecting Error containing `needle` before any point ran or any progress was
// reported.
void expect_bad_config(const SweepConfig& c, const std::string& needle) {
  SCOPED_TRACE(needle);
  CancelToken cancel;
  int reports = 0, points = 0;
  cancel.set_progress_callback([&](double) {
    ++reports;
    cancel.cancel();  // a config that wrongly started stops here, failing fast instead of hanging
  });
  try {
    run_sweep(c, cancel, [&](const SweepPoint&) { ++points; });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_EQ(reports, 0);
  EXPECT_EQ(points, 0);
}

TEST(Sweep, BadConfigsThrowBeforeRunning) {
  SweepConfig c = tiny_config();
  c.seq_lens = {16, 1 << 20};  // a long point that must never start

  SweepConfig bad = c;
  bad.variants = {"dense", "flash"};
  expect_bad_config(bad, "unknown variant 'flash'");
  bad = c;
  bad.backends = {"cpu", "tpu"};
  expect_bad_config(bad, "unknown backend 'tpu'");
  bad = c;
  bad.variants.clear();
  expect_bad_config(bad, "variant list is empty");
  bad = c;
  bad.seq_lens.clear();
  expect_bad_config(bad, "length list is empty");
  bad = c;
  bad.backends.clear();
  expect_bad_config(bad, "backend list is empty");
  bad = c;
  bad.seq_lens = {16, 0};
  expect_bad_config(bad, "at least 1 (got 0)");
  bad = c;
  bad.seq_lens = {-4};
  expect_bad_config(bad, "at least 1 (got -4)");
  bad = c;
  bad.seq_lens = {16, 32, 16};
  expect_bad_config(bad, "16 appears twice");
  bad = c;
  bad.backends = {"cpu", "cpu"};
  expect_bad_config(bad, "'cpu' appears twice");
  bad = c;
  bad.variants = {"dense", "gqa"};
  expect_bad_config(bad, "already in the sweep");
  bad = c;
  bad.repetitions = 0;
  expect_bad_config(bad, "repetitions must be at least 1");
  bad = c;
  bad.pattern = "zigzag";
  expect_bad_config(bad, "unknown input pattern 'zigzag'");
  bad = c;
  bad.threads = -1;
  expect_bad_config(bad, "threads");
  bad = c;
  bad.min_time_s = -1;
  expect_bad_config(bad, "min_time_s");
  bad = c;
  bad.base.shape.heads = 3;  // not divisible by kv_heads 2: wrong at every length
  expect_bad_config(bad, "divisible by kv_heads");
  bad = c;
  bad.variants = {"dense", "swa"};
  bad.base.swa.window = 0;
  expect_bad_config(bad, "swa: window must be at least 1");
}

TEST(Sweep, PointThatDoesNotFitIsSkippedWithItsReason) {
  const test::EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "64");
  SweepConfig c = tiny_config();
  c.variants = {"dense"};
  c.backends = {"cpu"};
  c.seq_lens = {16, int64_t{1} << 24, 32};  // the middle one needs GiBs of inputs
  std::vector<std::string> skipped;
  const SweepResult r =
      run_sweep(c, {}, [&](const SweepPoint& p) { skipped.push_back(p.skipped); });
  ASSERT_EQ(r.points.size(), 3u);
  EXPECT_TRUE(r.points[0].skipped.empty());
  EXPECT_NE(r.points[1].skipped.find("memory"), std::string::npos) << r.points[1].skipped;
  EXPECT_TRUE(r.points[1].seconds.empty());
  EXPECT_EQ(r.points[1].median_s, 0);
  EXPECT_TRUE(r.points[2].skipped.empty());  // the sweep went on after the skipped point
  EXPECT_EQ(r.points[2].seconds.size(), 2u);
  EXPECT_EQ(skipped[1], r.points[1].skipped);  // on_point saw the reason too
}

TEST(Sweep, CancelFromTheProgressCallbackKeepsFinishedPoints) {
  SweepConfig c = tiny_config();
  c.seq_lens = {16, 24, 32};  // 2 variants x 3 lengths x 2 backends = 12 points
  CancelToken cancel;
  cancel.set_progress_callback([&](double f) {
    if (f >= 0.3) cancel.cancel();
  });
  int on_point = 0;
  SweepResult r;
  ASSERT_NO_THROW(r = run_sweep(c, cancel, [&](const SweepPoint&) { ++on_point; }));
  EXPECT_TRUE(r.cancelled);
  EXPECT_GE(r.points.size(), 3u);  // 3 of 12 points are 25% < 30%
  EXPECT_LE(r.points.size(), 4u);  // the point during which 30% passed is the last one to finish
  EXPECT_EQ(on_point, int(r.points.size()));
  for (const SweepPoint& p : r.points) {
    EXPECT_TRUE(p.skipped.empty()) << p.skipped;
    EXPECT_EQ(p.seconds.size(), 2u) << "a cut-short point must not be returned";
  }
  // The JSON says so too.
  EXPECT_TRUE(sweep_from_json(sweep_to_json(r)).cancelled);
}

TEST(Sweep, AlreadyCancelledRunsNothing) {
  CancelToken cancel;
  cancel.cancel();
  const SweepResult r = run_sweep(tiny_config(), cancel);
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.points.empty());
  SweepConfig bad = tiny_config();
  bad.variants.clear();
  EXPECT_THROW(run_sweep(bad, cancel), Error);  // validation comes first
}

TEST(Sweep, DecodeModeTimesSingleTokenSteps) {
  SweepConfig c = tiny_config();
  c.mode = SweepMode::decode;
  c.variants = {"dense", "mla", "gated_delta"};
  c.seq_lens = {12, 20};
  c.backends = {"cpu", "reference"};
  c.base.shape.batch = 2;  // two sequences decoded together
  const SweepResult r = run_sweep(c);
  ASSERT_EQ(r.points.size(), 12u);
  for (const SweepPoint& p : r.points) {
    SCOPED_TRACE(p.variant + "/" + p.backend + "/" + std::to_string(p.seq_len));
    ASSERT_TRUE(p.skipped.empty()) << p.skipped;
    EXPECT_EQ(p.seconds.size(), 2u);
    EXPECT_EQ(p.problem.shape.q_len, 1);
    EXPECT_EQ(p.problem.shape.batch, 2);
    EXPECT_TRUE(p.problem.causal);
    EXPECT_EQ(p.problem.shape.kv_len, p.variant == "gated_delta" ? 1 : p.seq_len);
    AttentionProblem cache = p.problem;
    cache.shape.q_len = cache.shape.kv_len = p.seq_len;
    const Cost step = decode_cost(cache, {p.seq_len, p.seq_len});
    EXPECT_DOUBLE_EQ(p.cost.flops, step.flops);
    EXPECT_DOUBLE_EQ(p.cost.bytes, step.bytes);
    EXPECT_GT(p.cost.flops, 0);
    expect_stats_consistent(p, SweepMode::decode);
    EXPECT_DOUBLE_EQ(p.tokens_per_s, 2.0 / p.median_s);  // one token per sequence per step
  }
  // A longer context costs more per step (Gated DeltaNet's state does not grow: equal).
  EXPECT_GT(r.points[2].cost.flops, r.points[0].cost.flops);
  EXPECT_DOUBLE_EQ(r.points[10].cost.flops, r.points[8].cost.flops);
  const SweepResult back = sweep_from_json(sweep_to_json(r));
  EXPECT_EQ(back.config.mode, SweepMode::decode);
  ASSERT_EQ(back.points.size(), r.points.size());
  EXPECT_EQ(back.points[0].problem.shape.q_len, 1);
}

void expect_same_problem(const AttentionProblem& a, const AttentionProblem& b) {
  EXPECT_EQ(a.describe(), b.describe());
  EXPECT_EQ(a.scale.has_value(), b.scale.has_value());
  if (a.scale && b.scale) {
    EXPECT_EQ(*a.scale, *b.scale);
  }
  EXPECT_EQ(a.mla.absorbed, b.mla.absorbed);
  EXPECT_EQ(a.gated_delta.qk_l2norm, b.gated_delta.qk_l2norm);
  EXPECT_EQ(a.gated_delta.recurrent, b.gated_delta.recurrent);
  EXPECT_EQ(a.gated_delta.chunk_size, b.gated_delta.chunk_size);
}

TEST(Sweep, JsonRoundTripKeepsEverythingChartsNeed) {
  const test::EnvGuard limit("ATTNSCOPE_MEMORY_LIMIT_MB", "64");
  SweepConfig c = tiny_config();
  c.variants = {"dense", "moba"};
  c.seq_lens = {16, int64_t{1} << 24};
  c.backends = {"cpu"};
  c.base.scale = 0.25;
  c.base.gated_delta.qk_l2norm = true;
  c.threads = 1;
  SweepResult r = run_sweep(c);
  DevicePeak peak;
  peak.backend = "cpu";
  peak.device = r.devices[0];
  peak.gflops = 123.5;
  peak.gbps = 45.25;
  peak.gemm = "g";
  peak.copy = "c";
  peak.measured_at = "2026-01-01T00:00:00Z";
  r.peaks = {peak};
  ASSERT_EQ(r.points.size(), 4u);
  ASSERT_FALSE(r.points[1].skipped.empty());

  const std::string text = sweep_to_json(r);
  const SweepResult back = sweep_from_json(text);

  EXPECT_EQ(back.config.variants, c.variants);
  EXPECT_EQ(back.config.seq_lens, c.seq_lens);
  EXPECT_EQ(back.config.backends, c.backends);
  EXPECT_EQ(back.config.mode, c.mode);
  EXPECT_EQ(back.config.repetitions, c.repetitions);
  EXPECT_EQ(back.config.min_time_s, c.min_time_s);
  EXPECT_EQ(back.config.threads, 1);
  EXPECT_EQ(back.config.pattern, c.pattern);
  EXPECT_EQ(back.config.seed, c.seed);
  expect_same_problem(back.config.base, c.base);
  EXPECT_EQ(back.machine, r.machine);
  EXPECT_EQ(back.devices, r.devices);
  EXPECT_EQ(back.date, r.date);
  EXPECT_FALSE(back.cancelled);
  ASSERT_EQ(back.peaks.size(), 1u);
  EXPECT_EQ(back.peaks[0].gflops, 123.5);
  EXPECT_EQ(back.peaks[0].gbps, 45.25);
  EXPECT_EQ(back.peaks[0].device, peak.device);

  ASSERT_EQ(back.points.size(), r.points.size());
  for (size_t i = 0; i < r.points.size(); ++i) {
    const SweepPoint &a = r.points[i], &b = back.points[i];
    SCOPED_TRACE(a.variant + "/" + std::to_string(a.seq_len));
    EXPECT_EQ(b.variant, a.variant);
    EXPECT_EQ(b.backend, a.backend);
    EXPECT_EQ(b.seq_len, a.seq_len);
    EXPECT_EQ(b.skipped, a.skipped);
    EXPECT_EQ(b.threads, a.threads);
    expect_same_problem(b.problem, a.problem);
    ASSERT_EQ(b.seconds.size(), a.seconds.size());
    for (size_t k = 0; k < a.seconds.size(); ++k) EXPECT_DOUBLE_EQ(b.seconds[k], a.seconds[k]);
    EXPECT_DOUBLE_EQ(b.median_s, a.median_s);
    EXPECT_DOUBLE_EQ(b.mean_s, a.mean_s);
    EXPECT_DOUBLE_EQ(b.min_s, a.min_s);
    EXPECT_DOUBLE_EQ(b.stddev_s, a.stddev_s);
    EXPECT_DOUBLE_EQ(b.tokens_per_s, a.tokens_per_s);
    EXPECT_DOUBLE_EQ(b.gflops, a.gflops);
    EXPECT_DOUBLE_EQ(b.gbps, a.gbps);
    EXPECT_EQ(b.cost.flops, a.cost.flops);
    EXPECT_EQ(b.cost.bytes, a.cost.bytes);
    EXPECT_EQ(b.cost.kv_cache_bytes, a.cost.kv_cache_bytes);
    EXPECT_EQ(b.cost.kv_bytes_per_token, a.cost.kv_bytes_per_token);
    EXPECT_EQ(b.cost.visible_pairs, a.cost.visible_pairs);
  }
  // Writing what was read gives the same entries again.
  const json again = json::parse(sweep_to_json(back))["benchmarks"];
  const json first = json::parse(text)["benchmarks"];
  ASSERT_EQ(again.size(), first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(again[i]["name"], first[i]["name"]);
    EXPECT_NEAR(again[i]["real_time"].get<double>(), first[i]["real_time"].get<double>(),
                1e-12 * first[i]["real_time"].get<double>());
  }
}

TEST(Sweep, JsonIsGoogleBenchmarkShaped) {
  SweepConfig c = tiny_config();
  c.variants = {"dense"};
  c.seq_lens = {16};
  c.backends = {"cpu"};
  c.repetitions = 3;
  const json j = json::parse(sweep_to_json(run_sweep(c)));
  for (const char* key :
       {"date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "library_build_type"}) {
    EXPECT_TRUE(j["context"].contains(key)) << key;
  }
  EXPECT_EQ(j["context"]["attnscope"]["mode"], "prefill");
  const json& b = j["benchmarks"];
  ASSERT_EQ(b.size(), 3u + 4u);  // 3 repetitions, then median/mean/min/stddev
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b[i]["name"], "prefill/dense/cpu/16");
    EXPECT_EQ(b[i]["run_name"], "prefill/dense/cpu/16");
    EXPECT_EQ(b[i]["run_type"], "iteration");
    EXPECT_EQ(b[i]["repetitions"], 3);
    EXPECT_EQ(b[i]["repetition_index"], i);
    EXPECT_EQ(b[i]["iterations"], 1);
    EXPECT_EQ(b[i]["time_unit"], "ms");
    EXPECT_GT(b[i]["real_time"].get<double>(), 0);
    for (const char* counter : {"tokens_per_second", "GFLOPS", "GBps", "kv_bytes",
                                "kv_bytes_per_token", "flops", "bytes"}) {
      EXPECT_TRUE(b[i][counter].is_number()) << counter;
    }
  }
  const char* aggs[] = {"median", "mean", "min", "stddev"};
  for (int k = 0; k < 4; ++k) {
    const json& e = b[3 + k];
    EXPECT_EQ(e["name"], std::string("prefill/dense/cpu/16_") + aggs[k]);
    EXPECT_EQ(e["run_type"], "aggregate");
    EXPECT_EQ(e["aggregate_name"], aggs[k]);
  }
  // The median's real_time is the median of the three.
  std::vector<double> t = {b[0]["real_time"], b[1]["real_time"], b[2]["real_time"]};
  std::sort(t.begin(), t.end());
  EXPECT_DOUBLE_EQ(b[3]["real_time"].get<double>(), t[1]);
}

void expect_malformed(const std::string& text, const std::string& needle) {
  SCOPED_TRACE(text);
  try {
    sweep_from_json(text);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("malformed benchmark JSON"), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(Sweep, MalformedJsonGivesAClearError) {
  expect_malformed("", "not valid JSON");
  expect_malformed("{\"benchmarks\": [", "not valid JSON");
  expect_malformed("[1, 2]", "must be an object");
  expect_malformed("{\"context\": {}}", "\"benchmarks\" is missing");
  expect_malformed(R"({"benchmarks": {}})", "benchmarks must be an array");
  expect_malformed(R"({"benchmarks": [3]})", "benchmarks[0] must be an object");
  expect_malformed(R"({"benchmarks": [{"name": 5}]})", "benchmarks[0].name must be a string");
  expect_malformed(R"({"benchmarks": [{"name": "BM_Foo/64", "real_time": 1}]})",
                   "not <mode>/<variant>/<backend>/<seq_len>");
  expect_malformed(R"({"benchmarks": [{"name": "prefill/dense/cpu/zero", "real_time": 1}]})",
                   "not <mode>/<variant>/<backend>/<seq_len>");
  expect_malformed(R"({"benchmarks": [{"name": "prefill/dense/cpu/64", "real_time": "1"}]})",
                   "benchmarks[0].real_time must be a number");
  expect_malformed(R"({"benchmarks": [{"name": "prefill/dense/cpu/64"}]})",
                   "benchmarks[0].real_time is missing");
  expect_malformed(
      R"({"benchmarks": [{"name": "prefill/dense/cpu/64", "real_time": 1, "time_unit": "d"}]})",
      "time_unit must be ns, us, ms or s");
  expect_malformed(R"({"benchmarks": [{"name": "prefill/dense/cpu/64", "real_time": 1,
                      "run_type": "aggregate"}]})",
                   "aggregate_name is missing");
  expect_malformed(R"({"benchmarks": [{"name": "prefill/dense/cpu/64", "real_time": 1},
                                      {"name": "decode/dense/cpu/64", "real_time": 1}]})",
                   "mixes decode with a prefill sweep");
  expect_malformed(R"({"context": [], "benchmarks": []})", "context must be an object");

  // Damage to a real file's context and entries names the field.
  SweepConfig c = tiny_config();
  c.variants = {"dense"};
  c.seq_lens = {16};
  c.backends = {"cpu"};
  const json good = json::parse(sweep_to_json(run_sweep(c)));
  json bad = good;
  bad["context"]["attnscope"]["config"]["seq_lens"] = {"long"};
  expect_malformed(bad.dump(), "context.attnscope.config.seq_lens must hold only integers");
  bad = good;
  bad["context"]["attnscope"]["config"]["base"]["heads"] = 2.5;
  expect_malformed(bad.dump(), "context.attnscope.config.base.heads must be an integer");
  bad = good;
  bad["context"]["attnscope"]["config"]["mode"] = "train";
  expect_malformed(bad.dump(), "config.mode must be \"prefill\" or \"decode\"");
  bad = good;
  bad["context"]["attnscope"]["config"].erase("variants");
  expect_malformed(bad.dump(), "context.attnscope.config.variants is missing");
  bad = good;
  bad["context"]["attnscope"]["cancelled"] = "no";
  expect_malformed(bad.dump(), "context.attnscope.cancelled must be true or false");
  bad = good;
  bad["benchmarks"][0]["problem"]["variant"] = "flash";
  expect_malformed(bad.dump(), "benchmarks[0].problem.variant names an unknown variant");
  bad = good;
  bad["benchmarks"][2]["GFLOPS"] = "many";  // the median, where the rates are read
  expect_malformed(bad.dump(), "GFLOPS must be a number");
}

TEST(Sweep, ReadsAPlainGoogleBenchmarkFile) {
  // What a Google Benchmark binary with our naming would write: no attnscope context, ns.
  const std::string text = R"({
    "context": {"date": "2026-01-01T00:00:00+00:00", "num_cpus": 2},
    "benchmarks": [
      {"name": "prefill/dense/cpu/512", "run_name": "prefill/dense/cpu/512",
       "run_type": "iteration", "repetitions": 2, "repetition_index": 0, "threads": 1,
       "iterations": 1, "real_time": 2000000, "cpu_time": 2000000, "time_unit": "ns"},
      {"name": "prefill/dense/cpu/512", "run_name": "prefill/dense/cpu/512",
       "run_type": "iteration", "repetitions": 2, "repetition_index": 1, "threads": 1,
       "iterations": 1, "real_time": 4000000, "cpu_time": 4000000, "time_unit": "ns"},
      {"name": "prefill/dense/cpu/512_median", "run_type": "aggregate",
       "aggregate_name": "median", "real_time": 3000, "time_unit": "us"},
      {"name": "prefill/swa/cpu/512", "run_type": "iteration", "real_time": 1,
       "time_unit": "ms"},
      {"name": "prefill/swa/cpu/1024", "error_occurred": true, "error_message": "too big"}
    ]})";
  const SweepResult r = sweep_from_json(text);
  ASSERT_EQ(r.points.size(), 3u);
  EXPECT_EQ(r.config.mode, SweepMode::prefill);
  EXPECT_EQ(r.config.variants, (std::vector<std::string>{"dense", "swa"}));
  EXPECT_EQ(r.config.seq_lens, (std::vector<int64_t>{512, 1024}));
  EXPECT_EQ(r.date, "2026-01-01T00:00:00+00:00");
  EXPECT_EQ(r.points[0].seconds, (std::vector<double>{2e-3, 4e-3}));  // ns, exactly
  EXPECT_DOUBLE_EQ(r.points[0].median_s, 3e-3);
  EXPECT_DOUBLE_EQ(r.points[0].mean_s, 3e-3);
  EXPECT_DOUBLE_EQ(r.points[0].min_s, 2e-3);
  EXPECT_DOUBLE_EQ(r.points[1].median_s, 1e-3);
  EXPECT_EQ(r.points[2].skipped, "too big");
  EXPECT_TRUE(r.points[2].seconds.empty());
}

TEST(Sweep, ModeNamesRoundTrip) {
  EXPECT_EQ(to_string(SweepMode::prefill), "prefill");
  EXPECT_EQ(to_string(SweepMode::decode), "decode");
  EXPECT_EQ(sweep_mode_from_string("decode"), SweepMode::decode);
  EXPECT_EQ(sweep_mode_from_string("prefill"), SweepMode::prefill);
  EXPECT_FALSE(sweep_mode_from_string("Decode"));
  const std::string host = host_description();
  EXPECT_NE(host.find("logical CPU"), std::string::npos) << host;
}

}  // namespace
}  // namespace attnscope
