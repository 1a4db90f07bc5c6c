// attnscope-cli end to end: round trips through .safetensors match the engine in-process, and every
// bad input exits non-zero with one clear stderr line and no output file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "attnscope/io.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "attnscope/workload.hpp"
#include "env_guard.hpp"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

struct CliResult {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

fs::path tmp_dir() {
  const fs::path d = fs::path(ATTNSCOPE_TEST_TMP) / "cli";
  fs::create_directories(d);
  return d;
}

CliResult cli(const std::string& args) {
  // CTest runs test cases as parallel processes: the pid keeps their capture files apart.
  static int n = 0;
  const std::string tag = std::to_string(getpid()) + "_" + std::to_string(n++);
  const fs::path out = tmp_dir() / ("stdout_" + tag + ".txt");
  const fs::path err = tmp_dir() / ("stderr_" + tag + ".txt");
  const std::string cmd = std::string(ATTNSCOPE_CLI_PATH) + " " + args + " >" + out.string() +
                          " 2>" + err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void expect_same(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float x = a.data()[i], y = b.data()[i];
    if (std::isinf(x) || std::isinf(y)) {
      EXPECT_EQ(x, y) << what << " at " << i;
    } else {
      ASSERT_EQ(x, y) << what << " at " << i;  // same reference code, same inputs: bit-identical
    }
  }
}

// One bad invocation: non-zero exit, exactly one stderr line containing `needle`, no output file.
void expect_rejected(const std::string& args, const std::string& needle) {
  const fs::path out =
      tmp_dir() / ("should_not_exist_" + std::to_string(getpid()) + ".safetensors");
  fs::remove(out);
  const CliResult r = cli(args + " --out " + out.string());
  EXPECT_NE(r.code, 0) << args;
  EXPECT_NE(r.code, 3) << "internal error for: " << args << "\n" << r.err;
  EXPECT_LT(r.code, 128) << "crashed: " << args;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\nstderr: " << r.err;
  size_t lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1u) << "expected one stderr line for: " << args << "\n" << r.err;
  EXPECT_FALSE(fs::exists(out)) << args;
}

}  // namespace

TEST(Cli, InfoListsEveryVariantAndBackend) {
  const CliResult r = cli("info");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const VariantInfo& v : variants())
    EXPECT_NE(r.out.find(v.name), std::string::npos) << v.name;
  for (const BackendInfo& b : backends()) EXPECT_NE(r.out.find(b.name), std::string::npos);
}

TEST(Cli, RoundTripThroughFilesMatchesTheEngine) {
  // Each variant: inputs saved as safetensors, run by the CLI from file, compared with an
  // in-process run of the same backend on the same tensors.
  struct Case {
    VariantId id;
    std::string flags;
  };
  const std::vector<Case> cases = {
      {VariantId::dense, "--causal"},
      {VariantId::swa, "--window 5 --sinks 2"},
      {VariantId::mla, "--causal --absorbed"},
      {VariantId::moba, "--block-size 4 --top-k 2"},
      {VariantId::gated_delta, "--chunk-size 8 --qk-l2norm"},
  };
  for (const Case& c : cases) {
    const VariantInfo& info = variant_info(c.id);
    SCOPED_TRACE(std::string(info.name));
    AttentionProblem p = AttentionProblem::defaults(c.id);
    p.shape = {2, 4, 2, 13, 21, 8, 6};
    if (c.id == VariantId::mla) {
      p.shape.kv_heads = 1;
      p.mla = {16, 4, 8, true};
      p.shape.head_dim = 12;
      p.causal = true;
    }
    if (c.id == VariantId::dense) p.causal = true;
    if (c.id == VariantId::swa) p.swa = {5, 2};
    if (c.id == VariantId::moba) p.moba = {4, 2};
    if (c.id == VariantId::gated_delta) {
      p.shape = {2, 4, 4, 21, 21, 8, 6};
      p.gated_delta.chunk_size = 8;
      p.gated_delta.qk_l2norm = true;
    }
    const Inputs in = make_inputs(p, "needle", 3);
    const fs::path in_file = tmp_dir() / (std::string(info.name) + "_in.safetensors");
    const fs::path out_file = tmp_dir() / (std::string(info.name) + "_out.safetensors");
    io::save_safetensors(in_file.string(), in.tensors);
    const CliResult r =
        cli("run --variant " + std::string(info.name) + " " + c.flags +
            " --backend reference --inputs " + in_file.string() + " --out " + out_file.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const TensorMap got = io::load_safetensors(out_file.string());
    const RunResult want = make_backend("reference")->run(p, in, {}, {});
    expect_same(got.at("o"), want.o, "o");
    if (info.has_lse()) expect_same(got.at("lse"), want.lse, "lse");
    if (want.final_state) expect_same(got.at("final_state"), *want.final_state, "final_state");
    if (want.selection) {
      const Tensor& sel = got.at("selection");  // saved as int64, loaded as exact fp32
      ASSERT_EQ(sel.numel(), want.selection->numel());
      for (int64_t i = 0; i < sel.numel(); ++i) {
        ASSERT_EQ(sel.data()[i], float(want.selection->data()[i])) << i;
      }
    }
  }
}

TEST(Cli, GeneratedInputsJsonAndMap) {
  const fs::path map = tmp_dir() / "map.npy";
  fs::remove(map);
  const CliResult r =
      cli("run --variant moba --seq-len 64 --heads 2 --head-dim 16 --block-size 8 "
          "--top-k 3 --pattern needle --seed 5 --backend reference --repeat 2 "
          "--json --map " +
          map.string() + " --map-size 16,16 --pool mean");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* key : {"\"median_ms\"", "\"min_ms\"", "\"gflops\"", "\"gbps\""}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
  }
  const Tensor m = io::load_npy(map.string());
  EXPECT_EQ(m.shape(), (Shape{16, 16}));
  // Mean-pooled rows of a causal softmax map carry mass 1/16 per bin row on average, never < 0.
  for (float x : m.span()) EXPECT_GE(x, 0.0f);
}

TEST(Cli, BadInputsGiveOneClearLineAndNoOutput) {
  const fs::path dir = tmp_dir();
  // A valid dense input file, and a mismatched one (v has the wrong kv_len).
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {1, 2, 2, 5, 7, 4, 4};
  Inputs in = make_inputs(p, "random", 1);
  const fs::path good = dir / "good.safetensors";
  io::save_safetensors(good.string(), in.tensors);
  TensorMap bad_shape = in.tensors;
  bad_shape.insert_or_assign("v", Tensor({1, 2, 6, 4}));
  const fs::path mismatched = dir / "mismatched.safetensors";
  io::save_safetensors(mismatched.string(), bad_shape);
  TensorMap with_nan = in.tensors;
  with_nan.at("q").data()[3] = NAN;
  const fs::path nan_file = dir / "nan.safetensors";
  io::save_safetensors(nan_file.string(), with_nan);
  TensorMap missing = in.tensors;
  missing.erase("k");
  const fs::path missing_file = dir / "missing.safetensors";
  io::save_safetensors(missing_file.string(), missing);
  const fs::path garbage = dir / "garbage.safetensors";
  std::ofstream(garbage) << "this is not a safetensors file at all";

  expect_rejected("run --bogus-flag", "bogus-flag");
  expect_rejected("run --seed -1", "--seed");
  expect_rejected("run --variant nope", "unknown variant");
  expect_rejected("run --window abc --variant swa", "window");
  expect_rejected("run --variant swa --window 0", "window must be at least 1");
  expect_rejected("run --variant moba --top-k 0", "top_k");
  expect_rejected("run --variant moba --block-size 0", "block_size");
  expect_rejected("run --variant moba --non-causal", "only for causal");
  expect_rejected("run --heads 6 --kv-heads 4", "divisible");
  expect_rejected("run --seq-len 268435456 --head-dim 64", "memory");
  expect_rejected("run --backend warp", "unknown backend");
  expect_rejected("run --pattern plaid", "plaid");
  expect_rejected("run --inputs /nonexistent/file.safetensors", "nonexistent");
  expect_rejected("run --inputs " + garbage.string(), "garbage.safetensors");
  expect_rejected("run --inputs " + mismatched.string(), "'v'");
  expect_rejected("run --inputs " + missing_file.string(), "'k'");
  expect_rejected("run --inputs " + nan_file.string(), "NaN");
  expect_rejected("run --inputs " + good.string() + " --heads 3", "contradicts");
  expect_rejected("run --variant mla --inputs " + good.string(), "c_kv");
  expect_rejected("run --map-size 12 --map " + (dir / "m.npy").string(), "--map-size");
}

// `bench`: a tiny sweep through the binary, its table, progress and JSON.
TEST(Cli, BenchPrintsATableAndWritesJsonThatReadsBack) {
  const fs::path json = tmp_dir() / ("bench_" + std::to_string(getpid()) + ".json");
  fs::remove(json);
  const CliResult r =
      cli("bench --variants dense,swa,gdn --seq-lens 16,32 --backends cpu,reference --heads 2 "
          "--head-dim 8 --window 8 --repetitions 2 --json " +
          json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  // The table: a header with the speed-up column, one row per point.
  EXPECT_NE(r.out.find("median ms"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vs dense"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.00x"), std::string::npos) << r.out;  // dense against itself
  EXPECT_NE(r.out.find("gated_delta"), std::string::npos) << r.out;
  // Progress: one stderr line per finished point.
  EXPECT_NE(r.err.find("bench: [12/12]"), std::string::npos) << r.err;
  const SweepResult back = sweep_from_json(slurp(json));
  ASSERT_EQ(back.points.size(), 12u);
  EXPECT_EQ(back.config.variants, (std::vector<std::string>{"dense", "swa", "gdn"}));
  EXPECT_EQ(back.config.seq_lens, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(back.config.backends, (std::vector<std::string>{"cpu", "reference"}));
  EXPECT_EQ(back.config.repetitions, 2);
  EXPECT_EQ(back.config.base.shape.heads, 2);
  EXPECT_EQ(back.config.base.shape.kv_heads, 2);    // follows --heads
  EXPECT_EQ(back.config.base.shape.v_head_dim, 8);  // follows --head-dim
  EXPECT_TRUE(back.config.base.causal);             // bench times causal attention by default
  for (const SweepPoint& p : back.points) {
    EXPECT_TRUE(p.skipped.empty()) << p.skipped;
    EXPECT_EQ(p.seconds.size(), 2u);
    EXPECT_GT(p.median_s, 0);
    EXPECT_EQ(p.problem.shape.q_len, p.seq_len);
  }
  EXPECT_EQ(back.points[0].problem.swa.window, 8);
}

TEST(Cli, BenchDecodeModeAndJsonOnStdout) {
  const CliResult r =
      cli("bench --mode decode --variants dense,mla --seq-lens 8 --batch 2 --heads 2 --head-dim 8 "
          "--kv-lora-rank 16 --rope-dim 4 --nope-dim 8 --repetitions 2 --json -");
  ASSERT_EQ(r.code, 0) << r.err;
  const SweepResult back = sweep_from_json(r.out);  // stdout holds the JSON and nothing else
  EXPECT_EQ(back.config.mode, SweepMode::decode);
  ASSERT_EQ(back.points.size(), 2u);
  for (const SweepPoint& p : back.points) {
    EXPECT_TRUE(p.skipped.empty()) << p.skipped;
    EXPECT_EQ(p.problem.shape.q_len, 1);
    EXPECT_EQ(p.problem.shape.batch, 2);
  }
  EXPECT_EQ(back.points[1].problem.shape.head_dim, 12);  // MLA: nope + rope
  EXPECT_NE(r.err.find("median ms"), std::string::npos) << "the table moves to stderr";
}

TEST(Cli, BenchPeakIsMeasuredOnceThenCachedAndInfoListsIt) {
  const fs::path dir = tmp_dir() / ("peaks_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const test::EnvGuard cache("ATTNSCOPE_CACHE_DIR", dir.string());
  const test::EnvGuard memory("ATTNSCOPE_MEMORY_LIMIT_MB", "128");  // a quick calibration
  // A calibration that saw contention is not cached (test_calibrate_robust.cpp): this test is
  // about caching a quiet one, whatever else the machine runs meanwhile.
  const test::EnvGuard quiet("ATTNSCOPE_TEST_CONTENTION", "0");
  const std::string args =
      "bench --peak --backend reference --variants dense --seq-lens 8 --heads 1 --head-dim 4 "
      "--repetitions 1";
  const CliResult first = cli(args);
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.out.find("peak  reference"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("GFLOP/s fp32 GEMM"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("measured"), std::string::npos) << first.out;
  EXPECT_TRUE(fs::exists(dir / "peaks.json"));
  const CliResult second = cli(args);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.out.find("cached from"), std::string::npos) << second.out;
  const CliResult info = cli("info");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("device peaks"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("reference (CPU"), std::string::npos) << info.out;
}

// One bad `bench` invocation: exit `code`, exactly one stderr line with `needle`, and no JSON
// file (the helper asks for one unless the case is about --json itself).
void expect_bench_rejected(const std::string& args, const std::string& needle, int code = 1) {
  const fs::path json = tmp_dir() / ("bench_rejected_" + std::to_string(getpid()) + ".json");
  fs::remove(json);
  const bool own_json = args.find("--json") != std::string::npos;
  const CliResult r = cli("bench " + args + (own_json ? "" : " --json " + json.string()));
  EXPECT_EQ(r.code, code) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\nstderr: " << r.err;
  size_t lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1u) << "expected one stderr line for: " << args << "\n" << r.err;
  EXPECT_FALSE(fs::exists(json)) << args;
}

TEST(Cli, BenchBadFlagsGiveOneLine) {
  const std::string tiny = " --heads 1 --head-dim 4 --repetitions 1";
  const std::string small = " --seq-lens 8" + tiny;
  expect_bench_rejected("--variants dense,flash" + small, "unknown variant 'flash'");
  expect_bench_rejected("--variants dense,,swa" + small,
                        "--variants expects comma-separated names");
  expect_bench_rejected("--backend cpu,tpu" + small, "unknown backend 'tpu'");
  expect_bench_rejected("--mode train" + small, "--mode must be 'prefill' or 'decode'");
  expect_bench_rejected("--seq-lens 8 --heads 1 --repetitions 0", "repetitions must be at least 1");
  expect_bench_rejected("--variants swa --no-causal" + small, "only for causal attention");
  expect_bench_rejected("--pattern plaid" + small, "plaid");
  expect_bench_rejected("--seq-lens 8 --heads 3 --kv-heads 2", "divisible");
  expect_bench_rejected("--threads -2" + small, "threads");
  expect_bench_rejected("--seq-lens 0" + tiny, "at least 1 (got 0)");
  expect_bench_rejected("--seq-lens 8,x" + tiny, "--seq-lens expects comma-separated integers");
  expect_bench_rejected("--seq-lens 8,8" + tiny, "appears twice");
  expect_bench_rejected("--json /nonexistent/dir/out.json" + small, "does not exist");
  expect_bench_rejected("--bogus" + small, "bogus", 2);
  expect_bench_rejected("--seed -1" + small, "--seed", 2);
}

// --precision reaches the problem: host backends refuse bf16/fp16 with the reason (one line, no
// output file), unknown names are rejected by both commands, and bench skips such points.
TEST(Cli, PrecisionIsPassedThroughAndRefusedWhereUnsupported) {
  const std::string tiny = " --seq-len 8 --heads 1 --head-dim 4";
  expect_rejected("run --precision bf16 --backend cpu" + tiny,
                  "the cpu backend computes in fp32; bf16 needs the cuda backend");
  expect_rejected("run --precision fp16 --backend reference" + tiny, "fp16 needs the cuda backend");
  expect_rejected("run --precision fp8" + tiny,
                  "--precision must be one of fp32, bf16, fp16 (got 'fp8')");
  expect_bench_rejected("--precision half --seq-lens 8 --heads 1 --head-dim 4 --repetitions 1",
                        "--precision must be one of");

  const CliResult fp32 = cli("run --precision fp32 --backend cpu --json" + tiny);
  ASSERT_EQ(fp32.code, 0) << fp32.err;
  EXPECT_NE(fp32.out.find("\"precision\":\"fp32\""), std::string::npos) << fp32.out;

  const CliResult bench =
      cli("bench --precision bf16 --backend cpu --variants dense --seq-lens 8 --heads 1 "
          "--head-dim 4 --repetitions 1");
  ASSERT_EQ(bench.code, 0) << bench.err;
  EXPECT_NE(bench.out.find("skipped: the cpu backend computes in fp32; bf16 needs the cuda"),
            std::string::npos)
      << bench.out;
}
