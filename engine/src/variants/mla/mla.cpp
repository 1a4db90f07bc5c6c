// DeepSeek's multi-head latent attention (docs/variants/mla.md): q, the cached latent c_kv and
// shared rotary key k_rope, and the per-head up-projections w_uk / w_uv. The module's descriptor:
// knobs, shapes, cost, cache layout and the fp32 range bound.
#include <string>

#include "attnscope/error.hpp"
#include "core/score_range.hpp"
#include "variants/mla/mla.hpp"
#include "variants/module.hpp"

namespace attnscope {

int64_t MlaParams::q_head_dim() const {
  int64_t dim = 0;
  if (__builtin_add_overflow(nope_dim, rope_dim, &dim)) {
    // Named by the schema's keys, which the CLI flags and file keys are both spelled from.
    throw Error("'mla.nope_dim' + 'mla.rope_dim' overflows (" + std::to_string(nope_dim) + " + " +
                std::to_string(rope_dim) + "): MLA's query width must fit 64-bit size arithmetic");
  }
  return dim;
}

namespace variant_modules {
namespace {

using module::require;
using module::require_dim;

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

void mla_cost(const AttentionProblem& problem, double e, Cost& c) {
  const ProblemShape& s = problem.shape;
  const double B = double(s.batch), H = double(s.heads), Lq = double(s.q_len);
  const double Lk = double(s.kv_len), Dv = double(s.v_head_dim);
  const double Dc = static_cast<double>(problem.mla.kv_lora_rank);
  const double Dr = static_cast<double>(problem.mla.rope_dim);
  const double Dn = static_cast<double>(problem.mla.nope_dim);
  const module::i128 pairs_i = module::dense_pairs(KeyMask::of(problem), s.q_len, s.kv_len);
  const double pairs = static_cast<double>(pairs_i);
  c.visible_pairs = module::saturate(pairs_i * (module::i128{s.batch} * s.heads));
  if (problem.mla.absorbed) {
    // Per head: q̃ = w_ukᵀ q_nope and o = w_uv x once per query; per pair the score reads
    // Dc + Dr values and x = Σ p c accumulates Dc.
    c.flops = B * H * (Lq * 2 * Dc * (Dn + Dv) + pairs * 2 * (2 * Dc + Dr));
  } else {
    // Per head: expand k_nope = c_kv w_ukᵀ and v = c_kv w_uvᵀ for every key, then dense
    // attention with Dk = Dn + Dr.
    c.flops = B * H * (Lk * 2 * Dc * (Dn + Dv) + pairs * 2 * (Dn + Dr + Dv));
  }
  c.bytes = e * (B * H * Lq * (Dn + Dr)  // q
                 + B * Lk * (Dc + Dr)    // c_kv, k_rope
                 + H * Dc * (Dn + Dv)    // w_uk, w_uv
                 + B * H * Lq * Dv)      // o
            + 4 * B * H * Lq;            // lse
  c.kv_values_per_token = Dc + Dr;       // one latent + one rotary key shared by all heads
  c.kv_bytes_per_token = c.kv_values_per_token * e;
  c.kv_cache_bytes = B * Lk * c.kv_bytes_per_token;
}

// MLA's keys are W_uk c_kv, bounded by the Frobenius norm of W_uk times |c_kv|; its values
// W_uv c_kv likewise.
std::optional<std::string> mla_score_range(const AttentionProblem& p, const Inputs& in) {
  using namespace score_range;
  const double scale = p.effective_scale();
  auto m = [&](const char* name) { return double(max_abs(in.at(name))); };
  const double dn = double(p.mla.nope_dim), dr = double(p.mla.rope_dim);
  const double dc = double(p.mla.kv_lora_rank);
  {
    const double c = m("c_kv"), k_nope = dc * m("w_uk") * c, v = dc * m("w_uv") * c;
    const double k_rope = dr ? m("k_rope") : 0.0;
    const double score = scale * m("q") * (dn * k_nope + dr * k_rope);
    if (k_nope <= kLimit && v <= kLimit && score <= kLimit) return std::nullopt;
  }
  const int64_t n = p.mla.nope_dim, r = p.mla.rope_dim;
  const Tensor& q = in.at("q");
  const double c = max_row_norm(in.at("c_kv"));
  const double k_nope = max_matrix_norm(in.at("w_uk")) * c;  // every entry of W_uk c_kv
  const double v = max_matrix_norm(in.at("w_uv")) * c;
  const double k_rope = r ? max_row_norm(in.at("k_rope")) : 0.0;
  const double score =
      scale * (max_row_norm(q, 0, n) * k_nope + (r ? max_row_norm(q, n, n + r) * k_rope : 0.0));
  if (auto why = too_large(k_nope, "a key w_uk·c_kv (tensors 'w_uk', 'c_kv')")) return why;
  if (auto why = too_large(v, "a value w_uv·c_kv (tensors 'w_uv', 'c_kv')")) return why;
  return too_large(score, "a score q·k·scale (tensors 'q', 'w_uk', 'c_kv', 'k_rope')");
}

}  // namespace

VariantInfo mla() {
  VariantInfo v;
  v.id = VariantId::mla;
  v.name = "mla";
  v.title = "Multi-head latent attention (DeepSeek)";
  v.short_title = "MLA";
  v.input_family = InputFamily::latent;
  v.summary =
      "keys and values rebuilt from a small shared latent cache; absorbed form never expands them";
  v.params = {
      {.key = "kv_lora_rank",
       .label = "Latent rank Dc",
       .help = "Width of the cached latent c_kv: the KV cache holds Dc + Dr values per token "
               "(576 in DeepSeek-V3) instead of 2·H·D.",
       .min = 1,
       .max = 4096,
       .shape = true,
       ATTNSCOPE_PARAM_ACCESS(mla, kv_lora_rank)},
      {.key = "rope_dim",
       .label = "RoPE dim Dr",
       .help = "Width of the shared rotary key k_rope (decoupled RoPE); head_dim = nope + rope.",
       .min = 1,
       .max = 512,
       .shape = true,
       ATTNSCOPE_PARAM_ACCESS(mla, rope_dim)},
      {.key = "nope_dim",
       .label = "NoPE dim Dn",
       .help = "Position-free part of q and k, reconstructed from the latent by W_UK.",
       .min = 1,
       .max = 1024,
       .shape = true,
       ATTNSCOPE_PARAM_ACCESS(mla, nope_dim)},
      {.key = "absorbed",
       .label = "Absorbed (decode) form",
       .help = "Fold W_UK into the query and W_UV into the output so attention runs directly on "
               "the latent cache; same result, different cost.",
       .type = ParamSpec::Type::boolean,
       .min = 0,
       .max = 1,
       .form = true,
       ATTNSCOPE_PARAM_ACCESS(mla, absorbed)},
  };
  v.defaults = [](AttentionProblem& p) {
    p.shape.kv_heads = 1;
    p.shape.head_dim = p.mla.q_head_dim();
    p.shape.v_head_dim = 128;
  };
  v.normalize_shape = [](AttentionProblem& p) {
    p.shape.kv_heads = 1;  // one latent shared by all heads; q carries nope + rope
    p.shape.head_dim = p.mla.q_head_dim();
  };
  v.decode_form = [](AttentionProblem& p) { p.mla.absorbed = true; };  // decode reads the latent
  v.scale_dim = [](const AttentionProblem& p) {
    return double(p.mla.nope_dim) + double(p.mla.rope_dim);
  };
  v.describe = mla_describe;
  v.validate = mla_validate;
  v.inputs = mla_inputs;
  v.check_values = module::no_value_rules;
  v.score_range = mla_score_range;
  v.infer_shape = mla_infer;
  v.token_axis = [](std::string_view name) {
    if (name == "w_uk" || name == "w_uv") return -1;
    return name == "c_kv" || name == "k_rope" ? 1 : 2;
  };
  v.cost = mla_cost;
  v.cache = [](const AttentionProblem& p) {
    CacheSpec c;
    c.layout = CacheLayout::latent;
    c.key_tensor = "c_kv";
    c.value_tensor = "k_rope";
    c.heads = 1;
    c.key_width = p.mla.kv_lora_rank;
    c.value_width = p.mla.rope_dim;
    c.default_page_size = 64;  // FlashMLA's pages
    return c;
  };
  v.reference = reference::mla_run;
  v.map_tile = reference::mla_map_tile;
  v.cpu_run = cpu::run_mla;
  v.cpu_decode = cpu::decode_mla;
  return v;
}

}  // namespace variant_modules
}  // namespace attnscope
