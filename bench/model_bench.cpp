// The forward pass of a real model shape on the CPU (docs/benchmarks.md, "Real models"):
// SmolLM2-135M's architecture with random weights, at the requested lengths. Writes the
// checkpoint once (--make-model DIR), then times Model::forward and splits the time into attention
// (the Backend seam), GEMMs and the rest. bench/peers/torch_model.py runs the same folder in plain
// PyTorch; bench/run_model_compare.sh alternates the two. JSON out; timings never enter CTest.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/model.hpp"

using namespace attnscope;

namespace {

// SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json), or a toy of the same family for --smoke.
nlohmann::json smollm2_config(bool smoke) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", smoke ? 64 : 576},
          {"intermediate_size", smoke ? 96 : 1536},
          {"num_hidden_layers", smoke ? 2 : 30},
          {"num_attention_heads", smoke ? 4 : 9},
          {"num_key_value_heads", smoke ? 2 : 3},
          {"vocab_size", smoke ? 512 : 49152},
          {"max_position_embeddings", 8192},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 100000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", true},
          {"torch_dtype", "float32"}};
}

// Random weights at the scale of a trained model's init (std 0.02; norms 1), so activations,
// softmax and logits stay in the ranges real text produces.
void make_model(const std::string& dir, bool smoke) {
  std::filesystem::create_directories(dir);
  const nlohmann::json c = smollm2_config(smoke);
  const int64_t d = c["hidden_size"], ff = c["intermediate_size"], V = c["vocab_size"];
  const int64_t H = c["num_attention_heads"], Hkv = c["num_key_value_heads"];
  const int64_t Dh = d / H, layers = c["num_hidden_layers"];
  std::mt19937_64 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  TensorMap w;
  const auto rand = [&](const std::string& name, Shape shape) {
    Tensor t(std::move(shape));
    for (float& x : t.span()) x = normal(rng);
    w.emplace(name, std::move(t));
  };
  const auto ones = [&](const std::string& name, int64_t n) { w.emplace(name, Tensor({n}, 1.0f)); };
  rand("model.embed_tokens.weight", {V, d});
  ones("model.norm.weight", d);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ones(p + "input_layernorm.weight", d);
    ones(p + "post_attention_layernorm.weight", d);
    rand(p + "self_attn.q_proj.weight", {H * Dh, d});
    rand(p + "self_attn.k_proj.weight", {Hkv * Dh, d});
    rand(p + "self_attn.v_proj.weight", {Hkv * Dh, d});
    rand(p + "self_attn.o_proj.weight", {d, H * Dh});
    rand(p + "mlp.gate_proj.weight", {ff, d});
    rand(p + "mlp.up_proj.weight", {ff, d});
    rand(p + "mlp.down_proj.weight", {d, ff});
  }
  io::save_safetensors(dir + "/model.safetensors", w);
  io::save_text(dir + "/config.json", c.dump(2));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, out, make_dir;
  std::vector<int64_t> lengths = {2048, 8192};
  int reps = 3;
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&](const std::string& key) -> std::string {
      return a.rfind(key + "=", 0) == 0 ? a.substr(key.size() + 1) : std::string();
    };
    if (a == "--smoke") {
      smoke = true;
    } else if (!value("--model").empty()) {
      model_dir = value("--model");
    } else if (!value("--make-model").empty()) {
      make_dir = value("--make-model");
    } else if (!value("--out").empty()) {
      out = value("--out");
    } else if (!value("--reps").empty()) {
      reps = std::stoi(value("--reps"));
    } else if (!value("--lengths").empty()) {
      lengths.clear();
      std::string s = value("--lengths");
      for (size_t p = 0; p < s.size();) {
        const size_t q = std::min(s.find(',', p), s.size());
        lengths.push_back(std::stoll(s.substr(p, q - p)));
        p = q + 1;
      }
    } else {
      std::cerr << "usage: attnscope_model_bench [--make-model=DIR] [--model=DIR] "
                   "[--lengths=2048,8192] [--reps=3] [--out=F.json] [--smoke]\n";
      return 2;
    }
  }
  try {
    if (smoke) {
      make_dir = model_dir =
          (std::filesystem::temp_directory_path() / "attnscope_model_smoke").string();
      lengths = {48};
      reps = 1;
    }
    if (!make_dir.empty()) make_model(make_dir, smoke);
    if (model_dir.empty()) return 0;
    const Model model = Model::load(model_dir);
    nlohmann::json cases = nlohmann::json::array();
    std::mt19937 rng(7);
    for (int64_t L : lengths) {
      std::vector<int32_t> ids(static_cast<size_t>(L));
      std::uniform_int_distribution<int32_t> pick(0, int32_t(model.config().vocab_size - 1));
      for (int32_t& id : ids) id = pick(rng);
      ForwardOptions fo;
      fo.keep_logits = false;  // the LM head still runs (nll); its [L, V] block is not kept
      model.forward(ids, fo);  // warm-up: widened weights, page-ins, thread pools
      std::vector<double> total, attention, gemm, other;
      for (int r = 0; r < reps; ++r) {
        const ForwardResult res = model.forward(ids, fo);
        total.push_back(res.seconds.total);
        attention.push_back(res.seconds.attention);
        gemm.push_back(res.seconds.gemm);
        other.push_back(res.seconds.other);
      }
      ForwardOptions cap = fo;
      cap.capture = true;
      const double med = median(total);
      cases.push_back({{"name", "smollm2-135m/L" + std::to_string(L)},
                       {"tokens", L},
                       {"median_s", med},
                       {"min_s", *std::min_element(total.begin(), total.end())},
                       {"max_s", *std::max_element(total.begin(), total.end())},
                       {"tokens_per_s", double(L) / med},
                       {"attention_s", median(attention)},
                       {"gemm_s", median(gemm)},
                       {"other_s", median(other)},
                       {"forward_bytes", model.forward_bytes(L, fo)},
                       {"forward_bytes_with_capture", model.forward_bytes(L, cap)}});
      std::cerr << cases.back().dump() << "\n";
    }
    const nlohmann::json j = {
        {"model", model.config().describe()}, {"runs", reps}, {"cases", cases}};
    if (!out.empty()) io::save_text(out, j.dump(2));
    std::cout << j.dump(2) << "\n";
  } catch (const Error& e) {
    std::cerr << "attnscope_model_bench: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
