// Every bad input the model library can meet, through its public API: each is an attnscope::Error
// whose one sentence names the thing at fault (file, field, tensor, expected vs got); nothing
// crashes, hangs or runs on a silently patched-up model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/error.hpp"
#include "attnscope/model.hpp"
#include "fixture.hpp"

namespace attnscope::test {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

// The Error message `fn` throws; a test failure when it throws nothing or something else.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-attnscope::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error was thrown";
  return "";
}

// Loading DIR and running a short forward: the Error it gives, wherever the library finds it.
std::string load_error(const std::string& dir) {
  return error_of([&] {
    const Model model = Model::load(dir);
    const std::vector<int32_t> ids = {1, 2, 3, 4};
    model.forward(ids);
  });
}

std::string config_path(const TinyModel& m) {
  return (fs::path(m.dir) / "config.json").string();
}

// A default tiny model whose config.json is then edited by `edit`.
TinyModel with_config(const TinyModelSpec& spec, const std::function<void(json&)>& edit,
                      const std::string& tag = "") {
  TinyModel m = write_tiny_model(spec, test_dir(tag));
  edit(m.config);
  write_json(config_path(m), m.config);
  return m;
}

TinyModelSpec gpt2_spec() {
  TinyModelSpec s;
  s.model_type = "gpt2";
  s.max_positions = 16;
  return s;
}

// Rewrites a single-file model's weights through `edit` (remove, reshape, retype tensors).
void rewrite_weights(const TinyModel& m, const std::function<void(std::vector<RawTensor>&)>& edit,
                     const json& header_extra = json::object()) {
  std::vector<RawTensor> raw;
  for (const auto& [name, values] : m.weights)
    raw.push_back(encode_tensor(name, m.spec.dtype, m.shapes.at(name), values));
  edit(raw);
  write_safetensors((fs::path(m.dir) / "model.safetensors").string(), raw, header_extra);
}

RawTensor& find(std::vector<RawTensor>& raw, const std::string& name) {
  for (RawTensor& t : raw)
    if (t.name == name) return t;
  throw std::logic_error("no tensor " + name);
}

// ---- config.json ----

TEST(ModelErrors, NoConfigJson) {
  const TinyModel m = write_tiny_model({}, test_dir());
  fs::remove(config_path(m));
  EXPECT_THAT(error_of([&] { Model::load(m.dir); }), HasSubstr("config.json"));
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("config.json"));
}

TEST(ModelErrors, DirectoryMissing) {
  const std::string dir = test_dir() + "/nothing_here";
  EXPECT_THAT(error_of([&] { Model::load(dir); }), HasSubstr("nothing_here"));
}

TEST(ModelErrors, ConfigNotJson) {
  const TinyModel m = write_tiny_model({}, test_dir());
  write_text(config_path(m), "{\"model_type\": \"llama\", ");
  EXPECT_THAT(load_error(m.dir), HasSubstr("config.json"));
  write_text(config_path(m), "[1, 2]");
  EXPECT_THAT(load_error(m.dir), HasSubstr("config.json"));
}

TEST(ModelErrors, UnsupportedModelTypeNamedWithTheSupportedList) {
  const TinyModel m = with_config({}, [](json& c) { c["model_type"] = "gemma"; });
  const std::string msg = load_error(m.dir);
  EXPECT_THAT(msg, AllOf(HasSubstr("gemma"), HasSubstr("llama"), HasSubstr("mistral"),
                         HasSubstr("qwen2"), HasSubstr("qwen3"), HasSubstr("gpt2")));
  EXPECT_THAT(error_of([] { ModelConfig::from_json(R"({"vocab_size": 3})", "x/config.json"); }),
              HasSubstr("model_type"));
}

TEST(ModelErrors, UnsupportedRopeTypeNamed) {
  const TinyModel m = with_config({}, [](json& c) {
    c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  });
  EXPECT_THAT(load_error(m.dir), HasSubstr("yarn"));
  // Older configs spell it "type".
  const TinyModel old = with_config(
      {},
      [](json& c) {
        c["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
      },
      "legacy");
  EXPECT_THAT(load_error(old.dir), HasSubstr("dynamic"));
}

TEST(ModelErrors, UnsupportedActivationNamed) {
  const TinyModel m = with_config({}, [](json& c) { c["hidden_act"] = "gelu_pytorch_tanh"; });
  EXPECT_THAT(load_error(m.dir), AllOf(HasSubstr("hidden_act"), HasSubstr("gelu_pytorch_tanh")));
  const TinyModel g = with_config(
      gpt2_spec(), [](json& c) { c["activation_function"] = "relu"; }, "gpt2");
  EXPECT_THAT(load_error(g.dir), AllOf(HasSubstr("activation_function"), HasSubstr("relu")));
}

TEST(ModelErrors, UnsupportedQuirksNamed) {
  TinyModelSpec qwen;
  qwen.model_type = "qwen2";
  qwen.qkv_bias = true;
  const TinyModel q = with_config(
      qwen, [](json& c) { c["use_sliding_window"] = true; }, "swa");
  EXPECT_THAT(load_error(q.dir), HasSubstr("use_sliding_window"));
  const TinyModel p = with_config(
      {}, [](json& c) { c["partial_rotary_factor"] = 0.5; }, "prf");
  EXPECT_THAT(load_error(p.dir), HasSubstr("partial_rotary_factor"));
  const TinyModel g = with_config(
      gpt2_spec(), [](json& c) { c["scale_attn_by_inverse_layer_idx"] = true; }, "gpt2");
  EXPECT_THAT(load_error(g.dir), HasSubstr("scale_attn_by_inverse_layer_idx"));
}

TEST(ModelErrors, MissingRequiredFieldNamed) {
  for (const char* field : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size"}) {
    const TinyModel m = with_config(
        {}, [&](json& c) { c.erase(field); }, field);
    EXPECT_THAT(load_error(m.dir), HasSubstr(field));
  }
  for (const char* field : {"vocab_size", "n_embd", "n_layer", "n_head", "n_positions"}) {
    const TinyModel m = with_config(
        gpt2_spec(), [&](json& c) { c.erase(field); }, std::string("gpt2_") + field);
    EXPECT_THAT(load_error(m.dir), HasSubstr(field));
  }
}

TEST(ModelErrors, InvalidSizesNamed) {
  const auto check = [](const char* tag, const std::function<void(json&)>& edit,
                        const char* field) {
    SCOPED_TRACE(tag);
    const TinyModel m = with_config({}, edit, tag);
    EXPECT_THAT(load_error(m.dir), HasSubstr(field));
  };
  check(
      "negative", [](json& c) { c["hidden_size"] = -32; }, "hidden_size");
  check(
      "zero_layers", [](json& c) { c["num_hidden_layers"] = 0; }, "num_hidden_layers");
  check(
      "string", [](json& c) { c["vocab_size"] = "ninety-seven"; }, "vocab_size");
  check(
      "kv_not_divisor", [](json& c) { c["num_key_value_heads"] = 3; }, "num_key_value_heads");
  check(
      "odd_head_dim", [](json& c) { c["head_dim"] = 7; }, "head_dim");
  const TinyModel m = with_config(
      {}, [](json& c) { c["hidden_size"] = 30; }, "indivisible");
  EXPECT_THAT(load_error(m.dir), AnyOf(HasSubstr("hidden_size"), HasSubstr("num_attention_heads")));
}

TEST(ModelErrors, ConfigDisagreesWithATensorShape) {
  // vocab_size 100 in config.json: the embedding is [97, 32] on disk.
  const TinyModel m = with_config({}, [](json& c) { c["vocab_size"] = 100; });
  EXPECT_THAT(load_error(m.dir), AllOf(HasSubstr("[100, 32]"), HasSubstr("[97, 32]")));
  // One tensor on disk with the wrong shape: named, with the shape config.json implies.
  const TinyModel w = write_tiny_model({}, test_dir("one"));
  rewrite_weights(w, [](std::vector<RawTensor>& raw) {
    RawTensor& k = find(raw, "model.layers.1.self_attn.k_proj.weight");
    k.shape = {24, 32};
    k.bytes.resize(24 * 32 * 4, 0);
  });
  EXPECT_THAT(load_error(w.dir), AllOf(HasSubstr("model.layers.1.self_attn.k_proj.weight"),
                                       HasSubstr("[16, 32]"), HasSubstr("[24, 32]")));
}

// ---- weights ----

TEST(ModelErrors, MissingTensorNamed) {
  const TinyModel m = write_tiny_model({}, test_dir());
  rewrite_weights(m, [](std::vector<RawTensor>& raw) {
    std::erase_if(raw, [](const RawTensor& t) {
      return t.name == "model.layers.1.post_attention_layernorm.weight";
    });
  });
  EXPECT_THAT(load_error(m.dir), AllOf(HasSubstr("model.layers.1.post_attention_layernorm.weight"),
                                       HasSubstr("[32]")));
  // Untied without an lm_head: the head is missing, not silently tied.
  const TinyModel u = write_tiny_model({}, test_dir("untied"));
  rewrite_weights(u, [](std::vector<RawTensor>& raw) {
    std::erase_if(raw, [](const RawTensor& t) { return t.name == "lm_head.weight"; });
  });
  EXPECT_THAT(load_error(u.dir), HasSubstr("lm_head.weight"));
}

TEST(ModelErrors, NoWeightsFile) {
  const TinyModel m = write_tiny_model({}, test_dir());
  fs::remove(fs::path(m.dir) / "model.safetensors");
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.safetensors"));
}

TEST(ModelErrors, TruncatedShardNamed) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const std::string path = (fs::path(m.dir) / "model.safetensors").string();
  fs::resize_file(path, fs::file_size(path) - 100);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.safetensors"));
  // Cut inside the 8-byte length, and inside the JSON header.
  fs::resize_file(path, 5);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.safetensors"));
  write_tiny_model({}, m.dir);
  fs::resize_file(path, 40);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.safetensors"));
}

TEST(ModelErrors, HeaderLengthPastTheEnd) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const std::string path = (fs::path(m.dir) / "model.safetensors").string();
  std::string bytes = read_text(path);
  const uint64_t huge = uint64_t{1} << 40;
  bytes.replace(0, 8, reinterpret_cast<const char*>(&huge), 8);
  write_text(path, bytes);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.safetensors"));
}

TEST(ModelErrors, OffsetsPastTheEndOrWrongSizeNamed) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const std::string name = "model.norm.weight";
  json bad;
  bad[name] = {{"dtype", "F32"}, {"shape", {32}}, {"data_offsets", {1u << 30, (1u << 30) + 128}}};
  rewrite_weights(
      m, [](std::vector<RawTensor>&) {}, bad);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr(name));
  // In range, but 64 bytes for 32 floats.
  bad[name]["data_offsets"] = {0, 64};
  rewrite_weights(
      m, [](std::vector<RawTensor>&) {}, bad);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr(name));
  // Begin after end.
  bad[name]["data_offsets"] = {256, 128};
  rewrite_weights(
      m, [](std::vector<RawTensor>&) {}, bad);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr(name));
}

TEST(ModelErrors, HeaderNotJsonOrBadShapeNamed) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const std::string path = (fs::path(m.dir) / "model.safetensors").string();
  std::string bytes = read_text(path);
  bytes[8] = '[';  // the header's opening brace
  bytes[9] = '!';
  write_text(path, bytes);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.safetensors"));
  json bad;
  bad["model.norm.weight"] = {{"dtype", "F32"}, {"shape", {-32}}, {"data_offsets", {0, 128}}};
  rewrite_weights(
      m, [](std::vector<RawTensor>&) {}, bad);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr("model.norm.weight"));
}

TEST(ModelErrors, CheckpointAccessorsRefuseBadRequests) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const Checkpoint ck = Checkpoint::open(m.dir);
  EXPECT_THAT(error_of([&] { ck.shape("model.nope.weight"); }), HasSubstr("model.nope.weight"));
  EXPECT_THAT(error_of([&] { ck.stored_type("model.nope.weight"); }),
              HasSubstr("model.nope.weight"));
  EXPECT_THAT(error_of([&] { ck.load("model.norm.weight", {33}); }),
              AllOf(HasSubstr("model.norm.weight"), HasSubstr("[33]"), HasSubstr("[32]")));
  std::vector<float> buf(10 * 32);
  EXPECT_THAT(error_of([&] { ck.load_rows("model.embed_tokens.weight", 95, 5, buf.data()); }),
              HasSubstr("model.embed_tokens.weight"));
  EXPECT_THAT(error_of([&] { ck.load_rows("model.embed_tokens.weight", -1, 2, buf.data()); }),
              HasSubstr("model.embed_tokens.weight"));
  EXPECT_THAT(error_of([&] { ck.load_rows("model.norm.weight", 0, 1, buf.data()); }),
              HasSubstr("model.norm.weight"));
  const Model model = Model::load(m.dir);
  const ForwardResult r = model.forward(random_ids(6, 97, 1));
  error_of([&] { model.lm_head(r.hidden, 4, 7); });
  error_of([&] { model.lm_head(r.hidden, 3, 2); });
  error_of([&] { model.lm_head(Tensor({6, 31}), 0, 6); });
}

TEST(ModelErrors, UnsupportedDtypeRefusedByName) {
  // Integer or float64 weights are not something a checkpoint we run stores: refused, named.
  for (const char* dtype : {"I32", "F64"}) {
    SCOPED_TRACE(dtype);
    const TinyModel m = write_tiny_model({}, test_dir(dtype));
    rewrite_weights(m, [&](std::vector<RawTensor>& raw) {
      RawTensor& t = find(raw, "model.layers.0.mlp.up_proj.weight");
      t = encode_tensor(t.name, dtype, t.shape, m.w(t.name));
    });
    EXPECT_THAT(load_error(m.dir),
                AllOf(HasSubstr("model.layers.0.mlp.up_proj.weight"), HasSubstr(dtype)));
  }
  const TinyModel m = write_tiny_model({}, test_dir("unknown"));
  json bad;
  bad["model.norm.weight"] = {{"dtype", "F8_E4M3"}, {"shape", {32}}, {"data_offsets", {0, 32}}};
  rewrite_weights(
      m, [](std::vector<RawTensor>&) {}, bad);
  EXPECT_THAT(load_error(m.dir), AllOf(HasSubstr("model.norm.weight"), HasSubstr("F8_E4M3")));
}

TEST(ModelErrors, IndexPointingToAMissingShardNamesIt) {
  TinyModelSpec s;
  s.shards = 3;
  const TinyModel m = write_tiny_model(s, test_dir());
  fs::remove(fs::path(m.dir) / m.shard_files[1]);
  EXPECT_THAT(error_of([&] { Checkpoint::open(m.dir); }), HasSubstr(m.shard_files[1]));
  EXPECT_THAT(load_error(m.dir), HasSubstr(m.shard_files[1]));
}

TEST(ModelErrors, IndexNamingATensorItsShardLacks) {
  TinyModelSpec s;
  s.shards = 2;
  const TinyModel m = write_tiny_model(s, test_dir());
  const std::string index = (fs::path(m.dir) / "model.safetensors.index.json").string();
  json j = read_json(index);
  j["weight_map"]["model.ghost.weight"] = m.shard_files[0];
  write_json(index, j);
  EXPECT_THAT(load_error(m.dir), HasSubstr("model.ghost.weight"));
  write_text(index, "{ not json");
  EXPECT_THAT(load_error(m.dir), HasSubstr("model.safetensors.index.json"));
}

// ---- ids and sizes ----

TEST(ModelErrors, BadIdsNamed) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const Model model = Model::load(m.dir);
  const std::vector<int32_t> too_big = {1, 2, 97, 3};
  EXPECT_THAT(error_of([&] { model.check_ids(too_big); }), HasSubstr("97"));
  EXPECT_THAT(error_of([&] { model.forward(too_big); }), HasSubstr("97"));
  const std::vector<int32_t> negative = {1, -1};
  EXPECT_THAT(error_of([&] { model.check_ids(negative); }), HasSubstr("-1"));
  EXPECT_THAT(error_of([&] { model.forward(negative); }), HasSubstr("-1"));
  const std::vector<int32_t> empty;
  const auto says_empty = AnyOf(HasSubstr("empty"), HasSubstr("no token"), HasSubstr("0 tokens"));
  EXPECT_THAT(error_of([&] { model.check_ids(empty); }), says_empty);
  EXPECT_THAT(error_of([&] { model.forward(empty); }), says_empty);
  const std::vector<int32_t> edge = {0, 96};
  EXPECT_NO_THROW(model.check_ids(edge));
}

TEST(ModelErrors, Gpt2TextLongerThanNPositions) {
  const TinyModel m = write_tiny_model(gpt2_spec(), test_dir());
  const Model model = Model::load(m.dir);
  const std::vector<int32_t> fits = random_ids(16, 97, 1);
  EXPECT_NO_THROW(model.check_ids(fits));
  const std::vector<int32_t> long_ids = random_ids(17, 97, 1);
  EXPECT_THAT(error_of([&] { model.check_ids(long_ids); }),
              AllOf(HasSubstr("17"), HasSubstr("16")));
  EXPECT_THAT(error_of([&] { model.forward(long_ids); }), HasSubstr("16"));
}

TEST(ModelErrors, MemoryBudgetTooSmallSaysHowMuchIsNeeded) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const Model model = Model::load(m.dir);
  ForwardOptions opt;
  opt.memory_budget = 1000;
  const int64_t need = model.forward_bytes(40, opt);
  ASSERT_GT(need, 1000);
  EXPECT_THAT(error_of([&] { model.forward(random_ids(40, 97, 1), opt); }),
              HasSubstr(std::to_string(need)));
}

TEST(ModelErrors, UnknownBackendNamed) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const Model model = Model::load(m.dir);
  ForwardOptions opt;
  opt.backend = "no-such-backend";
  EXPECT_THAT(error_of([&] { model.forward(random_ids(8, 97, 1), opt); }),
              HasSubstr("no-such-backend"));
}

TEST(ModelErrors, NoTokenizerJson) {
  const TinyModel m = write_tiny_model({}, test_dir());
  const Model model = Model::load(m.dir);
  EXPECT_FALSE(model.has_tokenizer());
  EXPECT_THAT(error_of([&] { model.tokenizer(); }), HasSubstr("tokenizer.json"));
}

}  // namespace
}  // namespace attnscope::test
