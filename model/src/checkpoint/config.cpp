// config.json -> ModelConfig. Defaults are the ones transformers' configuration classes use when a
// key is absent (or null), so a folder loads here exactly when, and as, it loads there.
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/checkpoint.hpp"
#include "attnscope/error.hpp"
#include "checkpoint/json_fields.hpp"

namespace attnscope {

using checkpoint_detail::json_brief;
using checkpoint_detail::JsonFields;
using nlohmann::json;

namespace {

constexpr std::array<std::pair<std::string_view, ModelFamily>, 5> kFamilies = {{
    {"llama", ModelFamily::llama},
    {"mistral", ModelFamily::mistral},
    {"qwen2", ModelFamily::qwen2},
    {"qwen3", ModelFamily::qwen3},
    {"gpt2", ModelFamily::gpt2},
}};

ModelFamily parse_family(const JsonFields& f) {
  const std::optional<std::string> type = f.optional_string("model_type");
  if (!type) {
    f.fail("missing required field 'model_type' (supported: " + supported_model_types() + ")");
  }
  for (const auto& [name, family] : kFamilies) {
    if (*type == name) return family;
  }
  f.fail("model_type '" + *type + "' is not supported; supported: " + supported_model_types());
}

// RoPE settings live in `rope_scaling` (transformers 4.x: rope_type, or the legacy "type") with
// rope_theta at the top level, or in `rope_parameters` (transformers 5) holding both.
void parse_rope(const JsonFields& f, ModelConfig& c) {
  const json* scaling = f.find("rope_parameters");
  std::string where = "rope_parameters";
  if (scaling) {
    if (!scaling->is_object()) f.fail("field 'rope_parameters' must be an object");
    JsonFields params(*scaling, f.origin());
    if (auto theta = params.optional_positive_number("rope_theta")) c.rope_theta = *theta;
  } else {
    scaling = f.find("rope_scaling");
    where = "rope_scaling";
  }
  if (auto theta = f.optional_positive_number("rope_theta")) c.rope_theta = *theta;
  if (auto partial = f.optional_number("partial_rotary_factor"); partial && *partial != 1.0) {
    f.fail("partial_rotary_factor " + json_brief(*f.find("partial_rotary_factor")) +
           " is not supported (only 1: RoPE over the whole head)");
  }
  if (!scaling) return;
  if (!scaling->is_object()) f.fail("field '" + where + "' must be an object or null");
  JsonFields s(*scaling, f.origin());
  std::optional<std::string> type = s.optional_string("rope_type");
  if (!type) type = s.optional_string("type");
  if (!type || *type == "default") return;
  if (*type != "llama3") {
    f.fail(where + " type '" + *type + "' is not supported; supported: default, llama3");
  }
  ModelConfig::Llama3Scaling l3;
  auto need = [&](const char* key) {
    const std::optional<double> v = s.optional_positive_number(key);
    if (!v) f.fail(where + " of type 'llama3' is missing '" + key + "'");
    return *v;
  };
  l3.factor = need("factor");
  l3.low_freq_factor = need("low_freq_factor");
  l3.high_freq_factor = need("high_freq_factor");
  l3.original_max_position_embeddings = need("original_max_position_embeddings");
  if (!(l3.high_freq_factor > l3.low_freq_factor)) {
    f.fail(where + " high_freq_factor must be greater than low_freq_factor");
  }
  c.rope_llama3 = l3;
}

void parse_llama_family(const JsonFields& f, ModelConfig& c) {
  c.vocab_size = f.positive_int("vocab_size");
  c.hidden_size = f.positive_int("hidden_size");
  c.layers = f.positive_int("num_hidden_layers");
  c.heads = f.positive_int("num_attention_heads");
  c.intermediate_size = f.positive_int("intermediate_size");
  c.kv_heads = f.optional_positive_int("num_key_value_heads").value_or(c.heads);
  if (auto hd = f.optional_positive_int("head_dim")) {
    c.head_dim = *hd;
  } else {
    if (c.hidden_size % c.heads != 0) {
      f.fail("hidden_size " + std::to_string(c.hidden_size) +
             " is not divisible by num_attention_heads " + std::to_string(c.heads) +
             " (and no head_dim is given)");
    }
    c.head_dim = c.hidden_size / c.heads;
  }
  if (c.heads % c.kv_heads != 0) {
    f.fail("num_attention_heads " + std::to_string(c.heads) +
           " is not a multiple of num_key_value_heads " + std::to_string(c.kv_heads));
  }
  if (c.head_dim % 2 != 0) {
    f.fail("head_dim " + std::to_string(c.head_dim) + " is odd; RoPE needs an even head_dim");
  }
  const int64_t default_positions = c.family == ModelFamily::llama     ? 2048
                                    : c.family == ModelFamily::mistral ? 4096 * 32
                                                                       : 32768;
  c.max_positions = f.optional_positive_int("max_position_embeddings").value_or(default_positions);
  c.norm_eps = f.optional_positive_number("rms_norm_eps").value_or(1e-6);
  c.activation = f.optional_string("hidden_act").value_or("silu");
  if (c.activation != "silu") {
    f.fail("hidden_act '" + c.activation + "' is not supported for " +
           std::string(family_name(c.family)) + "; supported: silu");
  }
  c.tie_word_embeddings = f.optional_bool("tie_word_embeddings").value_or(false);
  switch (c.family) {
    case ModelFamily::llama:
      c.attention_bias = f.optional_bool("attention_bias").value_or(false);
      c.mlp_bias = f.optional_bool("mlp_bias").value_or(false);
      break;
    case ModelFamily::mistral: {
      // MistralConfig's default window is 4096; an explicit null means full attention.
      if (!f.present("sliding_window")) {
        c.window = 4096;
      } else {
        c.window = f.optional_positive_int("sliding_window");
      }
      break;
    }
    case ModelFamily::qwen2:
    case ModelFamily::qwen3:
      if (f.optional_bool("use_sliding_window").value_or(false)) {
        f.fail("use_sliding_window true is not supported for " +
               std::string(family_name(c.family)) + " (only full attention in every layer)");
      }
      c.qkv_bias = c.family == ModelFamily::qwen2;
      c.qk_norm = c.family == ModelFamily::qwen3;
      if (c.family == ModelFamily::qwen3) {
        c.attention_bias = f.optional_bool("attention_bias").value_or(false);
      }
      break;
    case ModelFamily::gpt2:
      break;
  }
  parse_rope(f, c);
}

void parse_gpt2(const JsonFields& f, ModelConfig& c) {
  c.vocab_size = f.positive_int("vocab_size");
  c.hidden_size = f.positive_int("n_embd");
  c.layers = f.positive_int("n_layer");
  c.heads = f.positive_int("n_head");
  c.max_positions = f.positive_int("n_positions");
  c.kv_heads = c.heads;
  if (c.hidden_size % c.heads != 0) {
    f.fail("n_embd " + std::to_string(c.hidden_size) + " is not divisible by n_head " +
           std::to_string(c.heads));
  }
  c.head_dim = c.hidden_size / c.heads;
  c.intermediate_size = f.optional_positive_int("n_inner").value_or(4 * c.hidden_size);
  c.norm_eps = f.optional_positive_number("layer_norm_epsilon").value_or(1e-5);
  c.activation = f.optional_string("activation_function").value_or("gelu_new");
  if (c.activation != "gelu_new" && c.activation != "gelu") {
    f.fail("activation_function '" + c.activation +
           "' is not supported for gpt2; supported: gelu_new, gelu");
  }
  if (f.optional_bool("scale_attn_by_inverse_layer_idx").value_or(false)) {
    f.fail("scale_attn_by_inverse_layer_idx true is not supported");
  }
  if (!f.optional_bool("scale_attn_weights").value_or(true)) {
    f.fail("scale_attn_weights false is not supported (attention is scaled by head_dim^-1/2)");
  }
  // GPT2LMHeadModel always ties its head to wte.
  c.tie_word_embeddings = true;
}

}  // namespace

std::string_view family_name(ModelFamily family) {
  for (const auto& [name, f] : kFamilies) {
    if (f == family) return name;
  }
  return "?";
}

std::string supported_model_types() {
  std::string out;
  for (const auto& [name, f] : kFamilies) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

ModelConfig ModelConfig::from_json(std::string_view text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(origin + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw Error(origin + ": not a JSON object");
  const JsonFields f(root, origin);
  ModelConfig c;
  c.family = parse_family(f);
  if (c.family == ModelFamily::gpt2) {
    parse_gpt2(f, c);
  } else {
    parse_llama_family(f, c);
  }
  return c;
}

std::vector<double> ModelConfig::rope_inv_freq() const {
  const int64_t half = head_dim / 2;
  std::vector<double> out(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    out[size_t(i)] = std::pow(rope_theta, -double(2 * i) / double(head_dim));
  }
  if (!rope_llama3) return out;
  // Llama 3.1's band rewrite: short wavelengths kept, long ones divided by `factor`, a linear
  // blend between the two in the middle band.
  const Llama3Scaling& s = *rope_llama3;
  const double orig = s.original_max_position_embeddings;
  const double low_wavelen = orig / s.low_freq_factor;
  const double high_wavelen = orig / s.high_freq_factor;
  for (double& inv : out) {
    const double wavelen = 2 * M_PI / inv;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      inv /= s.factor;
      continue;
    }
    const double smooth =
        (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    inv = (1 - smooth) * inv / s.factor + smooth * inv;
  }
  return out;
}

AttentionProblem ModelConfig::attention_problem(int64_t tokens) const {
  const bool windowed = window && *window < tokens;
  AttentionProblem p = AttentionProblem::defaults(windowed ? VariantId::swa : VariantId::dense);
  p.shape = {1, heads, kv_heads, tokens, tokens, head_dim, head_dim};
  p.causal = true;
  p.scale.reset();  // the variant's default, head_dim^-1/2, as every family here uses
  if (windowed) {
    p.swa.window = *window;
    p.swa.sinks = 0;
  }
  return p;
}

std::string ModelConfig::describe() const {
  std::ostringstream o;
  o << family_name(family) << ": " << layers << " layers, d " << hidden_size << ", " << heads
    << " heads";
  if (kv_heads != heads) o << " (" << kv_heads << " kv)";
  o << " x " << head_dim << ", vocab " << vocab_size;
  if (window) o << ", window " << *window;
  return o.str();
}

}  // namespace attnscope
