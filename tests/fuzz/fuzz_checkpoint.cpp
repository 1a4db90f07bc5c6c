// Fuzz harness: Checkpoint::open and Model::load (checkpoint.hpp, model.hpp) on a checkpoint folder
// whose model.safetensors is the input, next to a fixed tiny Llama config.json.
// Properties: a rejected folder throws attnscope::Error and nothing else, and Model::load accepts
// nothing Checkpoint::open refuses; of an opened checkpoint, names() is sorted and has() each name,
// shape() and stored_type() of a listed name never throw anything but Error, load(name,
// shape(name)) gives a tensor of that shape or throws Error, and load_rows of a 2-D tensor gives
// the same bytes as load() while rows outside it are refused with Error; a loaded model's forward
// of 3 ids on the "reference" backend works or throws Error (NaN/Inf weights and fp32 overflow
// included), and when it works its logits [3, 16] and nll are finite. Nothing is written besides
// the two input files.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/checkpoint.hpp"
#include "attnscope/model.hpp"
#include "fuzz_support.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::only_error;
using attnscope::fuzz::require;

namespace {

// 1 layer, d 8, 2 query heads sharing 1 kv head of 4, MLP 8, vocab 16, LM head tied: 11 tensors,
// 528 floats, so a valid F32 file fits a few KB and the fuzzer can reach the forward.
constexpr const char* kConfig = R"({
  "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_act": "silu",
  "vocab_size": 16, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
  "num_key_value_heads": 1, "intermediate_size": 8, "max_position_embeddings": 64,
  "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true
})";
constexpr int64_t kVocab = 16;

// Over weights this small a 1-layer forward cannot overflow fp32, so non-finite logits would be a
// bug in the forward (uninitialized memory, a wrong widening), not the checkpoint's arithmetic.
// Beyond it (or with NaN/Inf weights) only "works or throws Error" is checked.
constexpr float kTame = 1000.0f;

bool tame(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = t.data()[i];
    if (!(std::fabs(v) <= kTame)) return false;
  }
  return true;
}

// Every listed tensor through the Checkpoint API; returns whether all floating tensors are tame.
bool check_tensors(const Checkpoint& ck) {
  std::vector<std::string> names;
  only_error("Checkpoint::names", [&] { names = ck.names(); });
  require(std::is_sorted(names.begin(), names.end()), "Checkpoint::names() is not sorted");
  bool all_tame = true;
  for (const std::string& name : names) {
    require(ck.has(name), "has('" + name + "') is false for a name names() lists");
    Shape shape;
    if (!only_error("Checkpoint::shape", [&] { shape = ck.shape(name); })) {
      finding("shape('" + name + "') threw for a name names() lists");
    }
    only_error("Checkpoint::stored_type", [&] { (void)ck.stored_type(name); });
    Tensor t;
    if (!only_error("Checkpoint::load", [&] { t = ck.load(name, shape); })) continue;
    require(t.shape() == shape, "load('" + name + "') gave shape " + shape_str(t.shape()) +
                                    " for stored shape " + shape_str(shape));
    all_tame = all_tame && tame(t);
    if (shape.size() != 2) continue;
    const int64_t rows = shape[0], cols = shape[1];
    std::vector<float> buf(static_cast<size_t>(rows * cols) + 1);
    if (only_error("Checkpoint::load_rows", [&] { ck.load_rows(name, 0, rows, buf.data()); })) {
      require(rows * cols == 0 ||
                  std::memcmp(buf.data(), t.data(), static_cast<size_t>(t.bytes())) == 0,
              "load_rows('" + name + "', all rows) differs from load()");
    } else {
      finding("load_rows('" + name + "', all rows) threw where load() worked");
    }
    require(!only_error("Checkpoint::load_rows(past the end)",
                        [&] { ck.load_rows(name, rows, 1, buf.data()); }),
            "load_rows('" + name + "') accepted a row past the end");
    require(!only_error("Checkpoint::load_rows(negative)",
                        [&] { ck.load_rows(name, -1, 1, buf.data()); }),
            "load_rows('" + name + "') accepted row -1");
  }
  only_error("Checkpoint::stored_bytes", [&] { (void)ck.stored_bytes(); });
  only_error("Checkpoint::fp32_bytes", [&] { (void)ck.fp32_bytes(); });
  return all_tame;
}

void check_forward(const Model& model, bool weights_tame) {
  const std::vector<int32_t> ids = {1, 5, 15};
  ForwardOptions options;
  options.backend = "reference";
  ForwardResult r;
  if (!only_error("Model::forward", [&] { r = model.forward(ids, options); })) return;
  require(r.logits.shape() == Shape{3, kVocab},
          "forward gave logits of shape " + shape_str(r.logits.shape()) + ", expected [3, 16]");
  require(r.nll.size() == 2, "forward gave " + std::to_string(r.nll.size()) + " nll values");
  for (int64_t i = 0; i < r.logits.numel(); ++i) {
    require(std::isfinite(r.logits.data()[i]),
            "forward returned a non-finite logit at " + std::to_string(i) +
                " instead of an Error (tame weights: " + (weights_tame ? "yes" : "no") + ")");
  }
  for (const double v : r.nll) require(std::isfinite(v), "forward gave a non-finite nll");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::Scratch& scratch = fuzz::Scratch::get();
  scratch.write("config.json", reinterpret_cast<const uint8_t*>(kConfig), std::strlen(kConfig));
  scratch.write("model.safetensors", data, size);
  const std::string dir = scratch.dir().string();

  std::optional<Checkpoint> ck;
  const bool opened = only_error("Checkpoint::open", [&] { ck.emplace(Checkpoint::open(dir)); });
  bool weights_tame = false;
  if (opened) weights_tame = check_tensors(*ck);

  std::optional<Model> model;
  const bool loaded = only_error("Model::load", [&] { model.emplace(Model::load(dir)); });
  require(opened || !loaded, "Model::load accepted a folder Checkpoint::open refused");
  if (loaded) check_forward(*model, weights_tame);
  model.reset();
  ck.reset();
  scratch.expect_and_clear({"config.json", "model.safetensors"}, "loading the checkpoint");
  return 0;
}
