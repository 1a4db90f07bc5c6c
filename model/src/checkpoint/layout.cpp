// Tensor names and shapes per family, as transformers' modeling files name their parameters
// (state_dict keys) and size them from the config.
#include "checkpoint/layout.hpp"

namespace attnscope::checkpoint_detail {

namespace {

void llama_layer(const ModelConfig& c, int64_t i, std::vector<TensorSpec>& out) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  const int64_t d = c.hidden_size, q_out = c.heads * c.head_dim, kv_out = c.kv_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;
  const bool qkv_bias = c.attention_bias || c.qkv_bias;
  out.push_back({Role::in_norm, p + "input_layernorm.weight", {d}});
  out.push_back({Role::q, p + "self_attn.q_proj.weight", {q_out, d}});
  out.push_back({Role::k, p + "self_attn.k_proj.weight", {kv_out, d}});
  out.push_back({Role::v, p + "self_attn.v_proj.weight", {kv_out, d}});
  if (qkv_bias) {
    out.push_back({Role::q_bias, p + "self_attn.q_proj.bias", {q_out}});
    out.push_back({Role::k_bias, p + "self_attn.k_proj.bias", {kv_out}});
    out.push_back({Role::v_bias, p + "self_attn.v_proj.bias", {kv_out}});
  }
  if (c.qk_norm) {
    out.push_back({Role::q_norm, p + "self_attn.q_norm.weight", {c.head_dim}});
    out.push_back({Role::k_norm, p + "self_attn.k_norm.weight", {c.head_dim}});
  }
  out.push_back({Role::o, p + "self_attn.o_proj.weight", {d, q_out}});
  if (c.attention_bias) out.push_back({Role::o_bias, p + "self_attn.o_proj.bias", {d}});
  out.push_back({Role::post_norm, p + "post_attention_layernorm.weight", {d}});
  out.push_back({Role::gate, p + "mlp.gate_proj.weight", {inter, d}});
  out.push_back({Role::up, p + "mlp.up_proj.weight", {inter, d}});
  out.push_back({Role::down, p + "mlp.down_proj.weight", {d, inter}});
  if (c.mlp_bias) {
    out.push_back({Role::gate_bias, p + "mlp.gate_proj.bias", {inter}});
    out.push_back({Role::up_bias, p + "mlp.up_proj.bias", {inter}});
    out.push_back({Role::down_bias, p + "mlp.down_proj.bias", {d}});
  }
}

void gpt2_layer(const ModelConfig& c, const std::string& prefix, int64_t i,
                std::vector<TensorSpec>& out) {
  const std::string p = prefix + "h." + std::to_string(i) + ".";
  const int64_t d = c.hidden_size, inter = c.intermediate_size;
  out.push_back({Role::in_norm, p + "ln_1.weight", {d}});
  out.push_back({Role::in_norm_bias, p + "ln_1.bias", {d}});
  out.push_back({Role::qkv, p + "attn.c_attn.weight", {d, 3 * d}});
  out.push_back({Role::qkv_bias, p + "attn.c_attn.bias", {3 * d}});
  out.push_back({Role::o, p + "attn.c_proj.weight", {d, d}});
  out.push_back({Role::o_bias, p + "attn.c_proj.bias", {d}});
  out.push_back({Role::post_norm, p + "ln_2.weight", {d}});
  out.push_back({Role::post_norm_bias, p + "ln_2.bias", {d}});
  out.push_back({Role::up, p + "mlp.c_fc.weight", {d, inter}});
  out.push_back({Role::up_bias, p + "mlp.c_fc.bias", {inter}});
  out.push_back({Role::down, p + "mlp.c_proj.weight", {inter, d}});
  out.push_back({Role::down_bias, p + "mlp.c_proj.bias", {d}});
}

const TensorSpec* find_role(const std::vector<TensorSpec>& specs, Role role) {
  for (const TensorSpec& s : specs) {
    if (s.role == role) return &s;
  }
  return nullptr;
}

}  // namespace

const TensorSpec* WeightLayout::global(Role role) const {
  return find_role(globals, role);
}

const TensorSpec* WeightLayout::layer(int64_t index, Role role) const {
  return find_role(layers[static_cast<size_t>(index)], role);
}

std::vector<const TensorSpec*> WeightLayout::all() const {
  std::vector<const TensorSpec*> out;
  const TensorSpec* embed = global(Role::embed);
  for (const TensorSpec& s : globals) {
    if (s.role == Role::lm_head && embed && s.name == embed->name) continue;
    out.push_back(&s);
  }
  for (const auto& layer : layers) {
    for (const TensorSpec& s : layer) out.push_back(&s);
  }
  return out;
}

WeightLayout weight_layout(const ModelConfig& c, const std::function<bool(std::string_view)>& has) {
  WeightLayout w;
  const int64_t d = c.hidden_size, vocab = c.vocab_size;
  w.layers.resize(static_cast<size_t>(c.layers));
  if (c.family == ModelFamily::gpt2) {
    w.conv1d = true;
    // GPT2LMHeadModel saves "transformer.wte.weight", GPT2Model "wte.weight".
    const std::string prefix = !has("wte.weight") && has("transformer.wte.weight") ? "transformer."
                               : has("wte.weight")                                 ? ""
                                                                                   : "transformer.";
    w.globals.push_back({Role::embed, prefix + "wte.weight", {vocab, d}});
    w.globals.push_back({Role::positions, prefix + "wpe.weight", {c.max_positions, d}});
    w.globals.push_back({Role::final_norm, prefix + "ln_f.weight", {d}});
    w.globals.push_back({Role::final_norm_bias, prefix + "ln_f.bias", {d}});
    w.globals.push_back({Role::lm_head, prefix + "wte.weight", {vocab, d}});
    for (int64_t i = 0; i < c.layers; ++i) gpt2_layer(c, prefix, i, w.layers[size_t(i)]);
    return w;
  }
  w.globals.push_back({Role::embed, "model.embed_tokens.weight", {vocab, d}});
  w.globals.push_back({Role::final_norm, "model.norm.weight", {d}});
  w.globals.push_back({Role::lm_head,
                       c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight",
                       {vocab, d}});
  for (int64_t i = 0; i < c.layers; ++i) llama_layer(c, i, w.layers[size_t(i)]);
  return w;
}

}  // namespace attnscope::checkpoint_detail
