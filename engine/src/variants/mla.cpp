// Descriptor of DeepSeek's multi-head latent attention: q, the cached latent c_kv and shared rotary
// key k_rope, and the per-head up-projections w_uk / w_uv (docs/variants/mla.md).
#include <string>

#include "attnscope/error.hpp"
#include "variants/variants.hpp"

namespace attnscope::descriptor {

std::string mla_describe(const AttentionProblem& p) {
  return " kv_lora_rank=" + std::to_string(p.mla.kv_lora_rank) +
         " rope_dim=" + std::to_string(p.mla.rope_dim) +
         " nope_dim=" + std::to_string(p.mla.nope_dim) + (p.mla.absorbed ? " absorbed" : " naive");
}

std::optional<std::string> mla_validate(const AttentionProblem& p) {
  const MlaParams& m = p.mla;
  if (m.kv_lora_rank < 1) {
    return "kv_lora_rank must be at least 1 (got " + std::to_string(m.kv_lora_rank) + ")";
  }
  if (m.nope_dim < 1) return "nope_dim must be at least 1 (got " + std::to_string(m.nope_dim) + ")";
  if (m.rope_dim < 0) return "rope_dim must be 0 or more (got " + std::to_string(m.rope_dim) + ")";
  if (p.shape.kv_heads != 1) {
    return "MLA caches one latent shared by all heads, so kv_heads must be 1 (got " +
           std::to_string(p.shape.kv_heads) + ")";
  }
  if (m.nope_dim > INT64_MAX - m.rope_dim) {
    return "nope_dim + rope_dim is too large (overflows 64-bit size arithmetic)";
  }
  if (p.shape.head_dim != m.nope_dim + m.rope_dim) {
    return "MLA's query head_dim must equal nope_dim + rope_dim = " +
           std::to_string(m.nope_dim + m.rope_dim) + " (got " + std::to_string(p.shape.head_dim) +
           ")";
  }
  return std::nullopt;
}

std::vector<TensorSpec> mla_inputs(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  const MlaParams& m = p.mla;
  return {
      {"q",
       {s.batch, s.heads, s.q_len, m.nope_dim + m.rope_dim},
       false,
       "queries [B, H, Lq, Dn + Dr]: position-free part first, rotary part last"},
      {"c_kv", {s.batch, s.kv_len, m.kv_lora_rank}, false, "cached latent [B, Lk, Dc]"},
      {"k_rope", {s.batch, s.kv_len, m.rope_dim}, false, "shared rotary key [B, Lk, Dr]"},
      {"w_uk", {s.heads, m.nope_dim, m.kv_lora_rank}, false, "key up-projection [H, Dn, Dc]"},
      {"w_uv", {s.heads, s.v_head_dim, m.kv_lora_rank}, false, "value up-projection [H, Dv, Dc]"}};
}

std::optional<std::string> mla_check_values(const Inputs&) {
  return std::nullopt;
}

void mla_infer(const Inputs& in, AttentionProblem& p) {
  const Tensor& q = require(in, "q", 4, "[batch, heads, q_len, nope_dim + rope_dim]");
  const Tensor& c = require(in, "c_kv", 3, "[batch, kv_len, kv_lora_rank]");
  const Tensor& kr = require(in, "k_rope", 3, "[batch, kv_len, rope_dim]");
  const Tensor& wk = require(in, "w_uk", 3, "[heads, nope_dim, kv_lora_rank]");
  const Tensor& wv = require(in, "w_uv", 3, "[heads, v_head_dim, kv_lora_rank]");
  require_dim(c, "c_kv", 0, q.dim(0), "batch, as in q");
  require_dim(kr, "k_rope", 0, q.dim(0), "batch, as in q");
  require_dim(kr, "k_rope", 1, c.dim(1), "kv_len, as in c_kv");
  require_dim(wk, "w_uk", 0, q.dim(1), "heads, as in q");
  require_dim(wk, "w_uk", 2, c.dim(2), "kv_lora_rank, as in c_kv");
  require_dim(wv, "w_uv", 0, q.dim(1), "heads, as in q");
  require_dim(wv, "w_uv", 2, c.dim(2), "kv_lora_rank, as in c_kv");
  require_dim(q, "q", 3, wk.dim(1) + kr.dim(2), "nope_dim (w_uk dim 1) + rope_dim (k_rope dim 2)");
  p.mla.kv_lora_rank = c.dim(2);
  p.mla.rope_dim = kr.dim(2);
  p.mla.nope_dim = wk.dim(1);
  p.shape = {q.dim(0), q.dim(1), 1, q.dim(2), c.dim(1), q.dim(3), wv.dim(1)};
}

}  // namespace attnscope::descriptor
