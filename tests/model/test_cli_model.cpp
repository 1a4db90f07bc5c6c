// `attnscope-cli tokenize` and `attnscope-cli model` end to end on tiny random model folders:
// outputs match the library in-process, and every bad input exits non-zero with one clear stderr
// line and no output file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/head_stats.hpp"
#include "attnscope/io.hpp"
#include "attnscope/model.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "fixture.hpp"

using namespace attnscope;
using namespace attnscope::test;
namespace fs = std::filesystem;

namespace {

struct CliResult {
  int code = -1;
  std::string out, err;
};

CliResult cli(const std::string& args) {
  static int n = 0;
  const std::string dir = test_dir("cli" + std::to_string(n++));
  const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
  const std::string cmd =
      std::string(ATTNSCOPE_CLI_PATH) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

// A tiny llama with a byte-level tokenizer whose ids fit its vocabulary.
std::string model_folder(const std::string& tag, TinyModelSpec spec = {}) {
  spec.vocab = 320;
  const std::string dir = write_tiny_model(spec, test_dir(tag)).dir;
  write_byte_level_tokenizer(dir, spec.vocab);
  return dir;
}

void expect_rejected(const std::string& args, const std::string& needle, bool with_out = true) {
  const std::string out = test_dir("rejected") + "/out.safetensors";
  const CliResult r = cli(args + (with_out ? " --out " + out : ""));
  EXPECT_NE(r.code, 0) << args;
  EXPECT_NE(r.code, 3) << "internal error for: " << args << "\n" << r.err;
  EXPECT_LT(r.code, 128) << "crashed: " << args;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\nstderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\nstderr: " << r.err;
  EXPECT_FALSE(fs::exists(out)) << args;
}

TEST(CliModel, TokenizeMatchesTheLibrary) {
  const std::string dir = model_folder("tok");
  const std::string text = "Hello world, the cat sat on the mat.";
  const CliResult r = cli("tokenize --model " + dir + " --text '" + text + "' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  EXPECT_EQ(j["ids"].get<std::vector<int32_t>>(), tok.encode(text));
  ASSERT_EQ(j["tokens"].size(), j["ids"].size());
  EXPECT_EQ(j["tokens"][1].get<std::string>(), tok.token_display(j["ids"][1].get<int32_t>()));
}

TEST(CliModel, LogitsAndMapMatchTheLibrary) {
  const std::string dir = model_folder("logits");
  const Model model = Model::load(dir);
  const std::vector<int32_t> ids = random_ids(33, 320, 11);
  const std::string out = test_dir("logits_out") + "/r.safetensors";
  const std::string map = test_dir("logits_map") + "/m.npy";
  const CliResult r = cli("model --model " + dir + " --ids " + join(ids) + " --out " + out +
                          " --map " + map + " --map-layer 1 --map-head 3 --map-size 16,8 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"tokens", "ppl", "seconds", "tokens_per_s"}) EXPECT_TRUE(j.contains(key));

  ForwardOptions fo;
  fo.capture = true;
  const ForwardResult want = model.forward(ids, fo);
  EXPECT_NEAR(j["ppl"].get<double>(), want.perplexity(), 1e-9 * want.perplexity());
  const TensorMap got = io::load_safetensors(out);
  ASSERT_EQ(got.at("ids").shape(), Shape({33}));
  for (int64_t i = 0; i < 33; ++i) EXPECT_EQ(got.at("ids").data()[i], float(ids[size_t(i)]));
  const Tensor& logits = got.at("logits");
  ASSERT_EQ(logits.shape(), want.logits.shape());
  for (int64_t i = 0; i < logits.numel(); ++i) {
    ASSERT_NEAR(logits.data()[i], want.logits.data()[i], 1e-5) << i;
  }
  MapRequest req;
  req.head = 3;
  req.out_rows = 16;
  req.out_cols = 8;
  const LayerAttention& l1 = want.layers[1];
  const Tensor expect = attention_map(l1.problem, l1.inputs, l1.result, req);
  const Tensor m = io::load_npy(map);
  ASSERT_EQ(m.shape(), Shape({16, 8}));
  for (int64_t i = 0; i < m.numel(); ++i) EXPECT_NEAR(m.data()[i], expect.data()[i], 1e-6);
}

TEST(CliModel, TextAndWhatIf) {
  const std::string dir = model_folder("whatif");
  CliResult r = cli("model --model " + dir + " --text 'the cat sat on the mat and the dog' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto plain = nlohmann::json::parse(r.out);
  r = cli("model --model " + dir +
          " --text 'the cat sat on the mat and the dog' --attention swa --window 4096 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["ppl"].get<double>(), j["ppl_dense"].get<double>(), 1e-5);
  EXPECT_NEAR(j["ppl_dense"].get<double>(), plain["ppl"].get<double>(), 1e-9);
  EXPECT_LT(j["kl_mean"].get<double>(), 1e-9);
  ASSERT_EQ(j["recall"].size(), 2u);
  ASSERT_EQ(j["output_error"].size(), 2u);
  r = cli("model --model " + dir +
          " --text 'the cat sat on the mat and the dog' --attention moba --block-size 4 --top-k 1 "
          "--layers 1-1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layers"], nlohmann::json::array({1}));
  EXPECT_LT(j["recall"][0].get<double>(), 1.0);
  EXPECT_GT(j["kl_mean"].get<double>(), 0.0);
}

// --atlas writes every statistic of every head; each equals the library's, measured in-process.
TEST(CliModel, AtlasMatchesTheLibrary) {
  const std::string dir = model_folder("atlas");
  const Model model = Model::load(dir);
  const std::vector<int32_t> ids = random_ids(29, 320, 12);
  const std::string atlas = test_dir("atlas_out") + "/atlas.json";
  const CliResult r = cli("model --model " + dir + " --ids " + join(ids) + " --atlas " + atlas);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote     " + atlas), std::string::npos) << r.out;
  const nlohmann::json j = read_json(atlas);
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["heads"], 4);
  EXPECT_TRUE(j["skipped"].empty()) << j["skipped"].dump();

  ForwardOptions fo;
  fo.capture = true;
  std::vector<HeadStatTable> want = text_head_stats(model.forward(ids, fo), {});
  want.push_back(induction_scores(model, {}));
  want.push_back(retrieval_scores(model, {}));
  ASSERT_EQ(j["stats"].size(), all_head_stats().size());
  for (const HeadStatTable& t : want) {
    const nlohmann::json& got = j["stats"][std::string(head_stat_key(t.stat))];
    SCOPED_TRACE(std::string(head_stat_key(t.stat)));
    EXPECT_EQ(got["title"], std::string(head_stat_title(t.stat)));
    EXPECT_EQ(got["tokens"], t.tokens);
    ASSERT_EQ(got["values"].size(), 2u);
    for (int64_t l = 0; l < 2; ++l) {
      ASSERT_EQ(got["values"][size_t(l)].size(), 4u);
      for (int64_t h = 0; h < 4; ++h) {
        const double w = t.at(l, h);
        EXPECT_NEAR(got["values"][size_t(l)][size_t(h)].get<double>(), w, 1e-9 * std::abs(w))
            << l << "." << h;
      }
    }
  }
}

TEST(CliModel, BadInputIsOneClearLine) {
  const std::string dir = model_folder("bad");
  const std::string m = "model --model " + dir;
  expect_rejected("model --model " + test_dir("empty_folder") + " --ids 1,2", "config.json");
  expect_rejected(m + " --ids 1,2,320", "320");
  expect_rejected(m + " --ids 1,-2", "-2");
  expect_rejected(m + " --text ''", "empty");
  const std::string bad_utf8 = test_dir("utf8") + "/t.txt";
  write_text(bad_utf8, "ok \xC3\x28 not");
  expect_rejected(m + " --text-file " + bad_utf8, "UTF-8");
  expect_rejected(m + " --ids 1,2 --map x.npy --map-layer 2 --map-head 0", "--map-layer");
  expect_rejected(m + " --ids 1,2 --map-layer 0", "--map");
  expect_rejected(m + " --ids 1,2,3 --attention mla", "choose from");
  expect_rejected(m + " --ids 1,2,3 --attention swa --top-k 2", "top_k");
  expect_rejected(m + " --ids 1,2,3 --attention swa --window 2 --layers 0-5", "--layers");
  expect_rejected(m + " --ids 1,2,3 --backend nosuch", "nosuch");
  expect_rejected(m + " --ids 1,2,3 --window 4", "--window sets a what-if variant's knob");
  expect_rejected(
      m + " --ids 1,2,3 --attention swa --window 2 --atlas " + test_dir("atlas_bad") + "/a.json",
      "--atlas");

  TinyModelSpec gemma;
  gemma.model_type = "gemma";
  const std::string g = write_tiny_model(gemma, test_dir("gemma")).dir;
  expect_rejected("model --model " + g + " --ids 1,2", "gemma");
  expect_rejected("tokenize --model " + test_dir("no_tok") + " --text hi", "tokenizer.json", false);
  expect_rejected("tokenize --model " + dir + " --text ''", "empty", false);
}

}  // namespace
