// DeepSeek Sparse Attention (docs/variants/dsa.md): MLA's absorbed form over only the top_k keys a
// lightning indexer (Hi small ReLU heads over one shared index key per token) ranks highest for
// each query. The module's descriptor: MLA's knobs and tensors plus the indexer's, cost, cache.
#include <algorithm>
#include <cmath>
#include <string>

#include "attnscope/error.hpp"
#include "variants/dsa/dsa.hpp"
#include "variants/module.hpp"

namespace attnscope {
namespace cpu {
RunResult decode_dsa(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel);  // decode.cpp
}  // namespace cpu

namespace variant_modules {
VariantInfo mla();

namespace {

using module::i128;
using module::require;
using module::require_dim;

// MLA's own hooks, for the parts DSA shares with it unchanged.
const VariantInfo& base() {
  return variant_info(VariantId::mla);
}

// Σ_{p=lo}^{hi-1} min(cap, p + 1) for 0 <= lo <= hi: a difference of two capped ramps.
i128 capped_count_sum(i128 lo, i128 hi, i128 cap) {
  return module::capped_ramp_sum(hi, cap) - module::capped_ramp_sum(lo, cap);
}

std::optional<std::string> dsa_validate(const AttentionProblem& p) {
  if (auto why = base().validate(p)) return why;
  const DsaParams& d = p.dsa;
  if (d.top_k < 1) return "top_k must be at least 1 (got " + std::to_string(d.top_k) + ")";
  if (d.index_heads < 1) {
    return "index_heads must be at least 1 (got " + std::to_string(d.index_heads) + ")";
  }
  if (d.index_head_dim < 1) {
    return "index_head_dim must be at least 1 (got " + std::to_string(d.index_head_dim) + ")";
  }
  if (p.shape.kv_len > INT32_MAX) {
    return "DSA's selection stores key positions as 32-bit integers: kv_len must be at most " +
           std::to_string(INT32_MAX) + " (got " + std::to_string(p.shape.kv_len) + ")";
  }
  return std::nullopt;
}

std::vector<TensorSpec> dsa_inputs(const AttentionProblem& p) {
  std::vector<TensorSpec> in = base().inputs(p);
  const ProblemShape& s = p.shape;
  const DsaParams& d = p.dsa;
  in.push_back({"q_idx",
                {s.batch, d.index_heads, s.q_len, d.index_head_dim},
                false,
                "index queries [B, Hi, Lq, Di]"});
  in.push_back({"k_idx",
                {s.batch, s.kv_len, d.index_head_dim},
                false,
                "index keys [B, Lk, Di], one per token shared by every index head"});
  in.push_back(
      {"w_idx", {s.batch, s.q_len, d.index_heads}, false, "index head weights [B, Lq, Hi]"});
  return in;
}

void dsa_infer(const Inputs& in, AttentionProblem& p) {
  base().infer_shape(in, p);
  for (const char* name : {"q_idx", "k_idx", "w_idx"}) {
    if (!in.has(name)) {
      throw Error("input tensor '" + std::string(name) +
                  "' is missing: DSA's indexer needs q_idx [batch, index_heads, q_len, "
                  "index_head_dim], k_idx [batch, kv_len, index_head_dim] and w_idx [batch, "
                  "q_len, index_heads]");
    }
  }
  const Tensor& qi = require(in, "q_idx", 4, "[batch, index_heads, q_len, index_head_dim]");
  const Tensor& ki = require(in, "k_idx", 3, "[batch, kv_len, index_head_dim]");
  const Tensor& wi = require(in, "w_idx", 3, "[batch, q_len, index_heads]");
  require_dim(qi, "q_idx", 0, p.shape.batch, "batch, as in q");
  require_dim(qi, "q_idx", 2, p.shape.q_len, "q_len, as in q");
  require_dim(ki, "k_idx", 0, p.shape.batch, "batch, as in q");
  require_dim(ki, "k_idx", 1, p.shape.kv_len, "kv_len, as in c_kv");
  require_dim(ki, "k_idx", 2, qi.dim(3), "index_head_dim, as in q_idx");
  require_dim(wi, "w_idx", 0, p.shape.batch, "batch, as in q");
  require_dim(wi, "w_idx", 1, p.shape.q_len, "q_len, as in q");
  require_dim(wi, "w_idx", 2, qi.dim(1), "index_heads, as in q_idx");
  p.dsa.index_heads = qi.dim(1);
  p.dsa.index_head_dim = qi.dim(3);
  p.mla.absorbed = true;
}

// Per sequence: (query, key) pairs the indexer scores (every causal pair) and pairs attended.
struct Counts {
  i128 scored = 0, attended = 0;
};

Counts counts(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  if (s.q_len <= 0 || s.kv_len <= 0) return {};
  const i128 first = module::first_position(s.q_len, s.kv_len);
  return {capped_count_sum(first, s.kv_len, s.kv_len),
          capped_count_sum(first, s.kv_len, std::max<int64_t>(p.dsa.top_k, 0))};
}

// Index keys in FP8 are one byte per value plus one fp32 scale per token (Di <= 128: one block).
double index_bytes_per_token(const AttentionProblem& p, double e) {
  const double Di = double(p.dsa.index_head_dim);
  return p.dsa.index_fp8 ? Di + 4.0 * std::ceil(Di / 128.0) : Di * e;
}

void dsa_cost(const AttentionProblem& problem, double e, Cost& c) {
  const ProblemShape& s = problem.shape;
  const double B = double(s.batch), H = double(s.heads), Lq = double(s.q_len);
  const double Lk = double(s.kv_len), Dv = double(s.v_head_dim);
  const double Dc = double(problem.mla.kv_lora_rank), Dr = double(problem.mla.rope_dim);
  const double Dn = double(problem.mla.nope_dim);
  const double Hi = double(problem.dsa.index_heads), Di = double(problem.dsa.index_head_dim);
  const Counts n = counts(problem);
  c.visible_pairs = module::saturate(n.attended * (i128{s.batch} * s.heads));
  // Indexer: Hi dot products of Di and a weighted ReLU per scored pair. Attention: MLA's absorbed
  // form (q̃ = w_ukᵀ q_nope and o = w_uv x per row; score and x = Σ p c per attended pair).
  c.flops = B * double(n.scored) * 2 * Hi * (Di + 1) +
            B * H * (Lq * 2 * Dc * (Dn + Dv) + double(n.attended) * 2 * (2 * Dc + Dr));
  c.bytes = e * (B * H * Lq * (Dn + Dr) + B * Lk * (Dc + Dr) + H * Dc * (Dn + Dv) +
                 B * H * Lq * Dv + B * Hi * Lq * Di + B * Lk * Di + B * Lq * Hi) +
            4 * B * H * Lq + 4 * B * Lq * double(problem.dsa.top_k);  // lse, int32 selection
  c.kv_values_per_token = Dc + Dr + Di;
  c.kv_bytes_per_token = (Dc + Dr) * e + index_bytes_per_token(problem, e);
  c.kv_cache_bytes = B * Lk * c.kv_bytes_per_token;
}

// A decode step reads q and the indexer's query and weights, every cached index key (the indexer
// scores all of them), the top_k selected latent rows and the up-projections, and writes o, lse
// and the selection. The flops of the one-row problem stand.
void dsa_decode_cost(const AttentionProblem& p, int64_t L, Cost& c) {
  const double e = 4;
  const double H = double(p.shape.heads), Dv = double(p.shape.v_head_dim);
  const double Dc = double(p.mla.kv_lora_rank), Dr = double(p.mla.rope_dim);
  const double Dn = double(p.mla.nope_dim);
  const double Hi = double(p.dsa.index_heads), Di = double(p.dsa.index_head_dim);
  const double rows = std::min(double(L), double(p.dsa.top_k));
  c.bytes = e * (H * (Dn + Dr) + Hi * Di + Hi + rows * (Dc + Dr) + H * Dc * (Dn + Dv) + H * Dv) +
            double(L) * index_bytes_per_token(p, e) + 4 * H + 4 * double(p.dsa.top_k);
}

std::string dsa_describe(const AttentionProblem& p) {
  return " kv_lora_rank=" + std::to_string(p.mla.kv_lora_rank) +
         " rope_dim=" + std::to_string(p.mla.rope_dim) +
         " nope_dim=" + std::to_string(p.mla.nope_dim) + " top_k=" + std::to_string(p.dsa.top_k) +
         " index_heads=" + std::to_string(p.dsa.index_heads) +
         " index_head_dim=" + std::to_string(p.dsa.index_head_dim) +
         (p.dsa.index_fp8 ? " index_fp8" : "");
}

}  // namespace

VariantInfo dsa() {
  VariantInfo v = mla();
  v.id = VariantId::dsa;
  v.name = "dsa";
  v.aliases = {};
  v.title = "DeepSeek Sparse Attention";
  v.short_title = "DSA";
  v.summary = "MLA over only the top_k keys a lightning indexer ranks highest for each query";
  // MLA's widths (not its form knob: DSA always scores the latent directly), then the indexer's.
  std::erase_if(v.params, [](const ParamSpec& s) { return s.form; });
  for (ParamSpec& s : v.params) s.shared = true;  // files keep them in MLA's object
  v.params.push_back({.key = "top_k",
                      .label = "Top-k keys",
                      .help = "Keys each query attends to, chosen by the indexer (every past key "
                              "when the query has fewer).",
                      .min = 1,
                      .max = 1 << 20,
                      ATTNSCOPE_PARAM_ACCESS(dsa, top_k)});
  v.params.push_back({.key = "index_heads",
                      .label = "Index heads Hi",
                      .help = "Heads of the lightning indexer (64 in DeepSeek-V3.2).",
                      .min = 1,
                      .max = 1024,
                      .shape = true,
                      ATTNSCOPE_PARAM_ACCESS(dsa, index_heads)});
  v.params.push_back({.key = "index_head_dim",
                      .label = "Index head dim Di",
                      .help = "Width of an index query and of the one index key each token "
                              "caches (128 in DeepSeek-V3.2).",
                      .min = 1,
                      .max = 1024,
                      .shape = true,
                      ATTNSCOPE_PARAM_ACCESS(dsa, index_head_dim)});
  v.params.push_back({.key = "index_fp8",
                      .label = "FP8 indexer",
                      .help = "Round the indexer's queries and keys to e4m3 with one power-of-two "
                              "scale per 128 values, as the released model computes them.",
                      .type = ParamSpec::Type::boolean,
                      .min = 0,
                      .max = 1,
                      ATTNSCOPE_PARAM_ACCESS(dsa, index_fp8)});
  v.causal_only = true;
  v.sparse_of = VariantId::mla;
  v.low_precision = false;
  v.defaults = [](AttentionProblem& p) {
    p.mla.absorbed = true;
    p.shape.kv_heads = 1;
    p.shape.head_dim = p.mla.q_head_dim();
    p.shape.v_head_dim = 128;
  };
  v.normalize_shape = [](AttentionProblem& p) {
    p.mla.absorbed = true;
    p.shape.kv_heads = 1;
    p.shape.head_dim = p.mla.q_head_dim();
  };
  v.describe = dsa_describe;
  v.validate = dsa_validate;
  v.inputs = dsa_inputs;
  v.infer_shape = dsa_infer;
  v.token_axis = [](std::string_view name) {
    if (name == "w_uk" || name == "w_uv") return -1;
    if (name == "c_kv" || name == "k_rope" || name == "k_idx" || name == "w_idx") return 1;
    return 2;  // q, q_idx
  };
  v.input_family = InputFamily::latent_indexed;
  v.extra_outputs = {"selection"};
  v.extra_output_bytes = [](const AttentionProblem& p) {
    return checked_mul(checked_mul(p.shape.batch, p.shape.q_len, "selection"),
                       checked_mul(p.dsa.top_k, 4, "selection"), "the key selection");
  };
  v.cost = dsa_cost;
  v.decode_cost = dsa_decode_cost;
  // MLA's latent pages, plus one index key per token beside them (rounded to e4m3 as stored with
  // index_fp8, which is what the full run's indexer reads).
  v.cache = [](const AttentionProblem& p) {
    CacheSpec c = base().cache(p);
    c.side_tensor = "k_idx";
    c.side_width = p.dsa.index_head_dim;
    c.side_transform = p.dsa.index_fp8 ? dsa::fake_quantize_e4m3 : nullptr;
    return c;
  };
  v.reference = reference::dsa_run;
  v.map_tile = reference::dsa_map_tile;
  v.cpu_run = cpu::run_dsa;
  v.cpu_decode = cpu::decode_dsa;
  return v;
}

}  // namespace variant_modules
}  // namespace attnscope
