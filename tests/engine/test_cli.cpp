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
#include "attnscope/workload.hpp"

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
      p.gdn.chunk_size = 8;
      p.gdn.qk_l2norm = true;
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
    if (info.has_lse) expect_same(got.at("lse"), want.lse, "lse");
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
