// Hostile input as data: each row is one attnscope-cli invocation that once crashed, hung, lost
// data or answered wrongly (or that must keep working), with what it must do now. Every refusal
// exits 1 or 2 with exactly one stderr line naming the problem; no row may leave an output file
// it was not meant to write, a temporary file, or a changed input file behind.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/sweep.hpp"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << bytes;
}

// A .safetensors file written by hand, so headers the writer would never produce can be tested.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

Tensor filled(Shape shape, float value) {
  return Tensor(std::move(shape), value);
}

struct Case {
  std::string name;
  std::string args;                     // {dir} is the case's own folder
  int exit = 1;                         // 0: must succeed; 1 or 2: must refuse with that code
  std::string needle;                   // refusals: in the one stderr line
  std::vector<std::string> must_exist;  // after the run (relative to {dir})
  std::string env;                      // prefix for the shell, e.g. "ATTNSCOPE_THREADS=abc"
};

Case row(std::string name, std::string args, int exit, std::string needle,
         std::vector<std::string> must_exist = {}, std::string env = "") {
  return {std::move(name),   std::move(args),       exit,
          std::move(needle), std::move(must_exist), std::move(env)};
}

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(ATTNSCOPE_TEST_TMP) / ("hostile_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Shared inputs: 3e38 everywhere (scores overflow fp32), a header naming "q" twice, a Gated
    // DeltaNet whose state overflows, and a prior output that a failed run must not touch.
    TensorMap huge{{"q", filled({1, 2, 4, 8}, 3e38f)},
                   {"k", filled({1, 2, 4, 8}, 3e38f)},
                   {"v", filled({1, 2, 4, 8}, 3e38f)}};
    io::save_safetensors((dir_ / "huge.safetensors").string(), huge);
    TensorMap gdn{{"q", filled({1, 1, 16, 4}, 1e3f)},
                  {"k", filled({1, 1, 16, 4}, 1e3f)},
                  {"v", filled({1, 1, 16, 4}, 1e3f)},
                  {"g", filled({1, 1, 16}, 0.0f)},
                  {"beta", filled({1, 1, 16}, 1.0f)}};
    io::save_safetensors((dir_ / "gdn.safetensors").string(), gdn);
    gdn["q"] = gdn["k"] = filled({1, 1, 16, 4}, 3e38f);
    gdn["beta"] = filled({1, 1, 16}, 0.5f);
    io::save_safetensors((dir_ / "gdn_huge.safetensors").string(), gdn);
    const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    write_file(dir_ / "dup.safetensors",
               safetensors(R"({"q":)" + entry + R"(,"q":)" + entry + "}", std::string(4, '\0')));
    write_file(dir_ / "old.safetensors", "previous output: must survive a failed run");
    TensorMap small{{"q", filled({1, 2, 8, 4}, 0.5f)},
                    {"k", filled({1, 2, 8, 4}, 0.25f)},
                    {"v", filled({1, 2, 8, 4}, 1.0f)}};
    io::save_safetensors((dir_ / "in.safetensors").string(), small);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir_)) {
      files[e.path().filename().string()] = slurp(e.path());
    }
    return files;
  }

  void check(const Case& c) {
    SCOPED_TRACE(c.name + ": " + c.args);
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer reserves terabytes of address space for its shadow and cannot start under
    // a `ulimit -v`; the release build runs these rows.
    if (c.env.find("ulimit -v") != std::string::npos) return;
#endif
    std::string args = c.args;
    for (size_t at; (at = args.find("{dir}")) != std::string::npos;) {
      args.replace(at, 5, dir_.string());
    }
    const auto before = snapshot();
    const fs::path out = dir_.parent_path() / ("hostile_out_" + std::to_string(getpid()));
    const fs::path err = dir_.parent_path() / ("hostile_err_" + std::to_string(getpid()));
    // timeout: a hang fails the row (exit 124) instead of the whole suite.
    const std::string cmd = "cd " + dir_.string() + " && " + c.env + " timeout 60 " +
                            ATTNSCOPE_CLI_PATH + " " + args + " >" + out.string() + " 2>" +
                            err.string() + " </dev/null";
    const int status = std::system(cmd.c_str());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const std::string stderr_text = slurp(err);
    fs::remove(out);
    fs::remove(err);
    ASSERT_NE(code, 124) << "hung";
    ASSERT_LT(code, 128) << "killed by a signal\n" << stderr_text;
    EXPECT_EQ(code, c.exit) << stderr_text;
    if (c.exit != 0) {
      EXPECT_EQ(std::count(stderr_text.begin(), stderr_text.end(), '\n'), 1) << stderr_text;
      EXPECT_NE(stderr_text.find(c.needle), std::string::npos) << stderr_text;
    }
    // Inputs unchanged, nothing new except what the row expects, no temporary file anywhere.
    const auto after = snapshot();
    for (const auto& [name, bytes] : before) {
      ASSERT_TRUE(after.count(name)) << name << " was removed";
      EXPECT_EQ(after.at(name), bytes) << name << " was changed";
    }
    for (const auto& [name, bytes] : after) {
      if (before.count(name)) continue;
      EXPECT_NE(std::find(c.must_exist.begin(), c.must_exist.end(), name), c.must_exist.end())
          << "left behind: " << name;
    }
    for (const std::string& name : c.must_exist) EXPECT_TRUE(after.count(name)) << name;
  }

  fs::path dir_;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> table = {
      // Sizes: wrapped arithmetic once let these pass validation.
      row("seq_len_overflows_the_budget", "run --seq-len 576460752303423488 --heads 1 --head-dim 1",
          1, "too large"),
      row("batch_overflows", "run --batch 4611686018427387904 --heads 4", 1, "too large"),
      row("mla_dims_overflow", "run --variant mla --nope-dim 9223372036854775807 --rope-dim 1", 1,
          "9223372036854775807 + 1"),
      row("v_head_dim_overflows", "run --v-head-dim 9223372036854775807", 1, "too large"),
      // Numbers past their type are named as typed, not saturated.
      row("seq_len_past_int64", "run --seq-len 99999999999999999999", 2, "99999999999999999999"),
      row("seed_past_uint64", "run --seed 18446744073709551616", 2, "18446744073709551616"),
      row("negative_seed", "run --seed -1", 2, "'-1'"),
      row("repeat_past_int", "run --repeat 99999999999", 2, "99999999999"),
      // Outputs that would destroy or lose data.
      row("empty_out", "run --out ''", 1, "needs a file name"),
      row("out_is_the_input", "run --inputs in.safetensors --out in.safetensors", 1,
          "--inputs file"),
      row("out_is_the_input_by_another_path", "run --inputs in.safetensors --out ./in.safetensors",
          1, "--inputs file"),
      row("map_is_the_input", "run --inputs in.safetensors --map in.safetensors", 1,
          "--inputs file"),
      row("out_equals_map", "run --out a.npy --map a.npy", 1, "same file"),
      row("out_in_missing_folder", "run --out nowhere/o.safetensors", 1, "does not exist"),
      row("out_is_a_folder", "run --out .", 1, "is a folder"),
      // The map write fails after the run: the existing --out must survive unchanged.
      row("late_map_failure_keeps_old_out",
          "run --out old.safetensors --map /proc/attnscope-cannot-write.npy", 1,
          "cannot write '/proc/attnscope-cannot-write.npy'"),
      // Map requests are checked before the run: L = 200000 on the reference would take hours.
      row("map_size_zero", "run --backend reference --seq-len 200000 --map m.npy --map-size 0,0", 1,
          "at least 1 x 1"),
      row("map_head_out_of_range",
          "run --backend reference --seq-len 200000 --map m.npy --map-head 99", 1, "head index 99"),
      row("map_region_outside",
          "run --backend reference --seq-len 200000 --map m.npy --map-region 0,5,0,999999", 1,
          "outside"),
      // Files.
      row("duplicate_tensor_names", "run --inputs dup.safetensors", 1, "'q' twice"),
      row("missing_inputs_file", "run --inputs nothere.safetensors", 2, "nothere.safetensors"),
      // Values: every backend refuses scores beyond fp32 instead of answering differently.
      row("scores_overflow_cpu", "run --inputs huge.safetensors --backend cpu", 1,
          "too large for fp32"),
      row("scores_overflow_reference", "run --inputs huge.safetensors --backend reference", 1,
          "too large for fp32"),
      row("gdn_l2norm_overflow",
          "run --variant gated_delta --inputs gdn_huge.safetensors --qk-l2norm", 1, "too large"),
      row("gdn_state_overflows_cpu", "run --variant gated_delta --inputs gdn.safetensors", 1,
          "overflowed fp32"),
      row("gdn_state_overflows_reference",
          "run --variant gated_delta --inputs gdn.safetensors --backend reference", 1,
          "overflowed fp32"),
      // Threads: a pool that cannot start reports it instead of hanging.
      row("threads_far_too_many", "run --seq-len 64", 1, "ATTNSCOPE_THREADS", {},
          "ulimit -v 8388608; ATTNSCOPE_THREADS=100000"),
      row("threads_not_a_number", "run --seq-len 64", 1, "ATTNSCOPE_THREADS", {},
          "ATTNSCOPE_THREADS=abc"),
      // A note about an ignored knob never adds a second line to an error.
      row("note_then_error", "run --window 5 --precision xx", 1, "--precision"),
      row("bench_json_missing_folder", "bench --seq-lens 64 --json nowhere/x.json --window 3", 1,
          "does not exist"),
      // What must keep working.
      row("plain_run_writes_both", "run --seq-len 32 --out o.safetensors --map m.npy", 0, "",
          {"o.safetensors", "m.npy"}),
      row("run_from_file", "run --inputs in.safetensors --out o2.safetensors", 0, "",
          {"o2.safetensors"}),
      row("threads_one", "run --seq-len 32", 0, "", {}, "ATTNSCOPE_THREADS=1"),
  };
  return table;
}

}  // namespace

TEST_F(HostileCli, EveryRowIsRefusedCleanlyOrComputed) {
  for (const Case& c : cases()) check(c);
}

// sweep_from_json promises Error for any malformed file; nlohmann's out_of_range (a number like
// 1e400) and huge integers must not escape as another type or wrap around.
TEST(HostileSweepJson, NumbersOutOfRangeAreErrors) {
  for (const char* text : {R"({"benchmarks": [1e400]})", R"({"benchmarks": [-1e400]})",
                           R"({"benchmarks": [], "context": 1e999})"}) {
    EXPECT_THROW(sweep_from_json(text), Error) << text;
  }
}
