// A Hugging Face checkpoint folder: config.json (what the architecture is) and the safetensors
// weights (one file, or shards listed by model.safetensors.index.json), memory-mapped. 16-bit
// weights stay 16-bit on disk and are widened to fp32 when a caller loads a tensor, so a 3B BF16
// model runs on a 24 GB machine. Everything unsupported is refused by name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

// The architectures we run (config.json's model_type).
enum class ModelFamily { llama, mistral, qwen2, qwen3, gpt2 };
std::string_view family_name(ModelFamily family);  // "llama", ... as model_type spells it
std::string supported_model_types();               // "llama, mistral, qwen2, qwen3, gpt2"

// What config.json says, normalized over the families' spellings (GPT-2's n_embd, n_head, ...).
struct ModelConfig {
  ModelFamily family = ModelFamily::llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // d
  int64_t layers = 0;             // num_hidden_layers / n_layer
  int64_t heads = 0;              // H, query heads
  int64_t kv_heads = 0;           // Hkv (num_key_value_heads; = heads when absent)
  int64_t head_dim = 0;           // Dh (head_dim when given, else d / H)
  int64_t intermediate_size = 0;  // MLP width (GPT-2: n_inner or 4 d)
  int64_t max_positions = 0;      // max_position_embeddings / n_positions (GPT-2 refuses beyond)
  double norm_eps = 1e-6;         // rms_norm_eps / layer_norm_epsilon
  bool attention_bias = false;    // biases on q, k, v and o (llama attention_bias)
  bool qkv_bias = false;          // biases on q, k, v only (qwen2)
  bool mlp_bias = false;          // biases on gate, up, down (llama mlp_bias)
  bool qk_norm = false;           // per-head RMSNorm of q and k before RoPE (qwen3)
  bool tie_word_embeddings = false;
  // Mistral's window W (config.json's sliding_window): key j visible iff i - W < j <= i.
  std::optional<int64_t> window;
  std::string activation;  // "silu" (llama family), "gelu_new" or "gelu" (gpt2)
  // RoPE (not GPT-2): inv_freq[i] = theta^(-2i/Dh), rewritten by llama3 scaling when set.
  double rope_theta = 10000.0;
  struct Llama3Scaling {
    double factor = 8, low_freq_factor = 1, high_freq_factor = 4;
    double original_max_position_embeddings = 8192;
  };
  std::optional<Llama3Scaling> rope_llama3;

  // Parses config.json's text. Throws Error naming a missing or invalid field, or an unsupported
  // model_type / rope_type / hidden_act by name with what is supported. `origin` names the file.
  static ModelConfig from_json(std::string_view json, const std::string& origin = "config.json");
  // The inverse frequencies RoPE uses, [head_dim / 2], llama3 scaling applied.
  std::vector<double> rope_inv_freq() const;
  // The attention every layer runs on a text of `tokens` tokens: dense causal GQA (scale
  // head_dim^-1/2), or SWA with the model's window when it is shorter than the text.
  AttentionProblem attention_problem(int64_t tokens) const;
  std::string describe() const;  // "llama: 30 layers, d 576, 9 heads (3 kv) x 64, vocab 49152"
};

// A tensor as stored: dtype and shape from the safetensors header, bytes mapped from the file.
enum class StoredType { f32, f16, bf16 };

class Checkpoint {
 public:
  // Opens DIR: reads config.json, then model.safetensors.index.json (every shard it names must
  // exist) or model.safetensors, mapping each file and checking its header (truncated files,
  // offsets beyond the end, unsupported dtypes are Errors naming the file and tensor). Does not
  // read the weights themselves.
  static Checkpoint open(const std::string& dir);

  const std::string& dir() const;
  const ModelConfig& config() const;

  bool has(std::string_view name) const;
  // Shape and stored type; throws Error naming the tensor when absent.
  Shape shape(std::string_view name) const;
  StoredType stored_type(std::string_view name) const;
  std::vector<std::string> names() const;  // sorted

  // The tensor widened to fp32, checked against `expected` (the shape config.json implies).
  // Throws Error "tensor 'model.layers.3.self_attn.k_proj.weight' has shape [64, 576]; config.json
  // implies [192, 576]" or "... is missing (config.json implies [192, 576])".
  Tensor load(std::string_view name, const Shape& expected) const;
  // Rows [row0, row0 + rows) of a 2-D tensor widened to fp32 into `out` (row-major, rows x cols):
  // embedding lookups without widening the whole table.
  void load_rows(std::string_view name, int64_t row0, int64_t rows, float* out) const;
  // Bytes of all weights as stored, and as fp32.
  int64_t stored_bytes() const;
  int64_t fp32_bytes() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace attnscope
