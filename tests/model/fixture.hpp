// Tiny random Hugging Face checkpoints written by the tests: config.json plus safetensors (one
// file or an indexed shard set) for every family and quirk the model library supports, and a
// small byte-level BPE tokenizer.json. Everything here is written from the file formats' specs,
// not through the library under test, so the tests can catch the library misreading them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnscope::test {

// What tiny model to write. Defaults: a 2-layer GQA llama small enough for a float64 reference.
struct TinyModelSpec {
  std::string model_type =
      "llama";  // llama, mistral, qwen2, qwen3, gpt2 (or anything: config only)
  int64_t vocab = 97;
  int64_t hidden = 32;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 2;         // gpt2 ignores it (always = heads)
  int64_t head_dim = 0;         // 0: hidden / heads and "head_dim" not written to config.json
  int64_t intermediate = 48;    // gpt2: written as n_inner
  int64_t max_positions = 128;  // max_position_embeddings / n_positions
  std::optional<double> norm_eps = 1e-5;  // nullopt: not written (the family's default applies)
  bool attention_bias = false;            // llama: biases on q, k, v, o
  bool qkv_bias = false;  // qwen2 style: biases on q, k, v only (set for every qwen2 model)
  bool mlp_bias = false;  // llama: biases on gate, up, down
  bool qk_norm = false;   // qwen3 (set for every qwen3 model)
  bool tied = false;      // tie_word_embeddings; no lm_head.weight written (gpt2: always)
  std::optional<int64_t> sliding_window;  // mistral: written as sliding_window (null when absent)
  // Llama-3 rope scaling with factor 8, low 1, high 4, original 32: with head_dim 8 and
  // rope_theta 500 the four inverse frequencies fall in the kept, blended, divided, divided bands.
  bool llama3_rope = false;
  double rope_theta = 10000;
  std::string dtype = "F32";  // stored type of every weight: F32, F16 or BF16
  int shards = 1;           // > 1: model-0000X-of-0000N.safetensors + model.safetensors.index.json
  bool gpt2_prefix = true;  // gpt2 tensor names start with "transformer."
  bool gpt2_mask_buffers = false;  // gpt2: also write h.N.attn.bias / h.N.attn.masked_bias
  std::string gpt2_activation = "gelu_new";  // gpt2 activation_function: gelu_new or gelu (erf)
  uint64_t seed = 1;

  int64_t effective_head_dim() const { return head_dim > 0 ? head_dim : hidden / heads; }
  int64_t effective_kv_heads() const { return model_type == "gpt2" ? heads : kv_heads; }
  // The eps the model must use: the written one, else transformers' default for the family.
  double effective_norm_eps() const;
};

// A written model. `weights` hold the values AFTER rounding to the stored dtype, i.e. exactly what
// a reader widening the file to fp32 (or float64) gets; names are as written to the files.
struct TinyModel {
  std::string dir;
  TinyModelSpec spec;
  std::map<std::string, std::vector<double>> weights;
  std::map<std::string, std::vector<int64_t>> shapes;
  nlohmann::json config;
  std::vector<std::string> shard_files;  // file names (not paths) holding the weights

  const std::vector<double>& w(const std::string& name) const;  // throws when absent
  bool has(const std::string& name) const { return weights.count(name) != 0; }
};

// Writes config.json and the weights into `dir` (created; existing files overwritten).
TinyModel write_tiny_model(const TinyModelSpec& spec, const std::string& dir);

// config.json as write_tiny_model writes it for `spec`.
nlohmann::json tiny_config(const TinyModelSpec& spec);

// One tensor as a safetensors file stores it. `bytes` is the raw little-endian payload.
struct RawTensor {
  std::string name;
  std::string dtype;  // F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Encodes `values` as `dtype` (floats round to nearest even; integer types truncate toward zero).
RawTensor encode_tensor(std::string name, const std::string& dtype, std::vector<int64_t> shape,
                        std::span<const double> values);
// Writes a safetensors file: u64 header length, JSON header (8-byte padded), payloads in order.
// `header_extra` entries are merged into the header (e.g. "__metadata__", or hostile fields).
void write_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                       const nlohmann::json& header_extra = nlohmann::json::object());

// What a reader widening a stored value gets back: BF16 rounds fp32 bits to nearest even,
// F16 is IEEE binary16 with round to nearest even, F32 rounds the double to float.
double round_to_dtype(double value, const std::string& dtype);
uint16_t float_to_bf16_bits(float value);
uint16_t float_to_f16_bits(float value);

// A valid byte-level BPE tokenizer.json (GPT-2's byte alphabet as ids 0..255, a few merges of
// English pairs, and with `bos` a "<|bos|>" special token added by a TemplateProcessing
// post-processor). Every id is < `vocab`; throws std::invalid_argument when vocab < 300.
void write_byte_level_tokenizer(const std::string& dir, int64_t vocab, bool bos = true);

// Uniform random ids in [0, vocab).
std::vector<int32_t> random_ids(int64_t count, int64_t vocab, uint64_t seed);

// A fresh (emptied) directory under ATTNSCOPE_TEST_TMP named after the running test plus `tag`,
// and with the process id, so parallel CTest runs never share one.
std::string test_dir(const std::string& tag = "");

// File helpers for crafting bad input.
void write_text(const std::string& path, std::string_view text);
std::string read_text(const std::string& path);
nlohmann::json read_json(const std::string& path);
void write_json(const std::string& path, const nlohmann::json& value);

}  // namespace attnscope::test
