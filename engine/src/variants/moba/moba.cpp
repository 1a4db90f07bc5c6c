// Mixture of Block Attention (docs/variants/moba.md): each query attends to its own block and the
// top_k - 1 complete past blocks whose mean key it matches best. The module's descriptor: knobs,
// selection, cost (closed form, no loop over rows) and cache layout (dense pages plus block means).
#include <algorithm>
#include <cmath>
#include <string>

#include "variants/dense/dense.hpp"
#include "variants/moba/moba.hpp"
#include "variants/module.hpp"

namespace attnscope::variant_modules {
namespace {

using module::i128;

// Σ_{p=0..n-1} of MoBA's own-block keys (p mod B) + 1.
i128 own_sum(i128 n, i128 block) {
  if (n <= 0) return 0;
  return (n / block) * module::triangle(block) + module::triangle(n % block);
}

// Σ_{p=0..n-1} min(cap, p / B): past blocks attended (cap = top_k - 1) or scored by the gate
// (cap = unlimited). Whole blocks c < n / B contribute B rows each, the partial one n mod B rows.
i128 past_blocks_sum(i128 n, i128 block, i128 cap) {
  if (n <= 0 || cap <= 0) return 0;
  const i128 q = n / block;
  const i128 r = n % block;
  // Σ_{c=0..q-1} min(cap, c) = Σ_{x=1..q-1} min(cap, x)
  return block * module::capped_ramp_sum(q - 1, cap) + r * std::min(cap, q);
}

struct Counts {
  i128 pairs = 0;        // attended (query, key) pairs, one head
  i128 gate_scores = 0;  // (query, complete past block) gate dot products, one head
};

// MoBA is defined only under the causal mask, so the problem's causal flag is not consulted.
Counts counts(const AttentionProblem& p) {
  const auto& s = p.shape;
  Counts out;
  const i128 block = p.moba.block_size;
  if (s.q_len <= 0 || s.kv_len <= 0 || block <= 0) return out;
  const i128 a = module::first_position(s.q_len, s.kv_len);
  const i128 n = s.kv_len;
  const i128 past_cap = std::max<int64_t>(0, p.moba.top_k - 1);
  const i128 unlimited = n;  // p / B < Lk, so Lk never binds
  out.pairs = (own_sum(n, block) - own_sum(a, block)) +
              block * (past_blocks_sum(n, block, past_cap) - past_blocks_sum(a, block, past_cap));
  out.gate_scores = past_blocks_sum(n, block, unlimited) - past_blocks_sum(a, block, unlimited);
  return out;
}

void moba_cost(const AttentionProblem& problem, double e, Cost& c) {
  const ProblemShape& s = problem.shape;
  const double B = double(s.batch), H = double(s.heads), Hkv = double(s.kv_heads);
  const double Lq = double(s.q_len), Lk = double(s.kv_len);
  const double Dk = double(s.head_dim), Dv = double(s.v_head_dim);
  const Counts n = counts(problem);
  const double pairs = static_cast<double>(n.pairs);
  const double gate_scores = static_cast<double>(n.gate_scores);
  const double blocks = problem.moba.block_size > 0
                            ? static_cast<double>((s.kv_len - 1) / problem.moba.block_size + 1)
                            : 0.0;
  c.visible_pairs = module::saturate(n.pairs * (i128{s.batch} * s.heads));
  c.flops = B * H * pairs * 2 * (Dk + Dv)   // attention over the selected keys
            + B * H * gate_scores * 2 * Dk  // gate q · k̄_c for every complete past block
            + B * Hkv * Lk * Dk;            // block means: one add per key element
  const double top_k = static_cast<double>(problem.moba.top_k);
  c.bytes = e * B * (H * Lq * Dk + Hkv * Lk * (Dk + Dv) + H * Lq * Dv) +
            4 * B * H * Lq * (1 + top_k);  // lse + int32 selection
  c.kv_values_per_token = Hkv * (Dk + Dv);
  c.kv_bytes_per_token = c.kv_values_per_token * e;
  // A decode loop keeps the block-mean keys next to the cache so it need not re-average.
  c.kv_cache_bytes = B * Lk * c.kv_bytes_per_token + B * Hkv * blocks * Dk * e;
}

// The block means are cached (computed once as blocks fill), so a decode step neither re-reads
// every key nor re-averages; it reads q, the means, the selected keys and writes o.
void moba_decode_cost(const AttentionProblem& p, int64_t L, Cost& c) {
  const double e = 4;
  const double H = double(p.shape.heads), Hkv = double(p.shape.kv_heads);
  const double Dk = double(p.shape.head_dim), Dv = double(p.shape.v_head_dim);
  const double bs = double(p.moba.block_size);
  const double blocks = std::floor(double(L) / bs);
  const double keys = std::min(double(L), double(p.moba.top_k) * bs);
  c.flops -= Hkv * double(L) * Dk;
  c.bytes = e * (H * Dk + Hkv * blocks * Dk + Hkv * keys * (Dk + Dv) + H * Dv) +
            4 * H * (1 + double(p.moba.top_k));
}

}  // namespace

VariantInfo moba() {
  // Dense attention's q/k/v and cache pages; its own selection, cost, oracle and fast path.
  VariantInfo v = dense();
  v.id = VariantId::moba;
  v.aliases = {};
  v.low_precision = false;
  v.name = "moba";
  v.title = "Mixture of Block Attention";
  v.short_title = "MoBA";
  v.summary =
      "each query attends to its own block plus the top_k - 1 past blocks whose mean key it "
      "matches best";
  v.params = {
      {.key = "block_size",
       .label = "Block size",
       .help = "Keys per block; each block is summarized by the mean of its keys for routing.",
       .min = 1,
       .max = 1 << 16,
       ATTNSCOPE_PARAM_ACCESS(moba, block_size)},
      {.key = "top_k",
       .label = "Top-k blocks",
       .help = "Blocks each query attends to, its own (causal) block included; the rest is "
               "skipped.",
       .min = 1,
       .max = 4096,
       ATTNSCOPE_PARAM_ACCESS(moba, top_k)},
  };
  v.causal_only = true;
  v.selection = [](const AttentionProblem& p) {
    return BlockSelection{p.moba.block_size, p.moba.top_k};
  };
  v.validate = [](const AttentionProblem& p) -> std::optional<std::string> {
    if (p.moba.block_size < 1) {
      return "block_size must be at least 1 (got " + std::to_string(p.moba.block_size) + ")";
    }
    if (p.moba.top_k < 1) {
      return "top_k must be at least 1: it counts the query's own block (got " +
             std::to_string(p.moba.top_k) + ")";
    }
    return std::nullopt;
  };
  v.cost = moba_cost;
  v.decode_cost = moba_decode_cost;
  v.cache = [](const AttentionProblem& p) {
    CacheSpec c = module::kv_cache(p);
    c.mean_block = p.moba.block_size;
    return c;
  };
  v.reference = reference::moba_run;
  v.map_tile = reference::moba_map_tile;
  v.cpu_run = cpu::run_moba;
  v.route = cpu::moba_route;
  return v;
}

}  // namespace attnscope::variant_modules
