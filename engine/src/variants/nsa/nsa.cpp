// Native Sparse Attention (docs/variants/nsa.md): three causal branches over the same q/k/v — block
// means (compressed), the blocks a kv group selects from the compressed scores, and a sliding
// window — mixed by per-head gates. The module's descriptor: knobs, gates, cost (a loop over key
// blocks, not rows) and cache layout (dense pages plus block means, as MoBA's).
#include <algorithm>
#include <cmath>
#include <string>

#include "attnscope/error.hpp"
#include "variants/dense/dense.hpp"
#include "variants/module.hpp"
#include "variants/nsa/nsa.hpp"

namespace attnscope {
namespace cpu {
RunResult decode_nsa(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel);  // decode.cpp
}  // namespace cpu

namespace variant_modules {
namespace {

using module::i128;
using module::require;
using module::require_dim;

constexpr const char* kGates[] = {"g_cmp", "g_slc", "g_swa"};

// Σ_{p=lo}^{hi-1} min(cap, p + 1) for 0 <= lo <= hi: a difference of two capped ramps.
i128 capped_count_sum(i128 lo, i128 hi, i128 cap) {
  return module::capped_ramp_sum(hi, cap) - module::capped_ramp_sum(lo, cap);
}

// Per head of one sequence: the (query, block) pairs of the compressed branch, the (query, key)
// pairs of the selected and window branches.
struct Counts {
  i128 compressed = 0, selected = 0, window = 0;
};

// Walks the queries' positions block by block (Lk / BS steps): within key block c every position
// has the same own block, so each branch's count is an arithmetic series there.
Counts counts(const AttentionProblem& p) {
  Counts n;
  const ProblemShape& s = p.shape;
  const i128 bs = p.nsa.block_size, S = p.nsa.block_count, W = p.nsa.window;
  if (s.q_len <= 0 || s.kv_len <= 0 || bs <= 0) return n;
  const i128 first = module::first_position(s.q_len, s.kv_len), Lk = s.kv_len;
  for (i128 c = first / bs; c * bs < Lk; ++c) {
    const i128 lo = std::max(first, c * bs), hi = std::min(Lk, (c + 1) * bs);
    if (lo >= hi) continue;
    const i128 rows = hi - lo;
    // Complete blocks before position p: c, plus one at the block's last position.
    n.compressed += rows * c + (hi == (c + 1) * bs ? 1 : 0);
    // Selected: min(S, c + 1) blocks, all complete but the own one, which has p - c·BS + 1 keys.
    const i128 full = std::min(S, c + 1) - 1;
    n.selected += rows * full * bs +
                  ((hi - c * bs) * (hi - c * bs + 1) - (lo - c * bs) * (lo - c * bs + 1)) / 2;
    if (W > 0) n.window += capped_count_sum(lo, hi, W);
  }
  return n;
}

void nsa_cost(const AttentionProblem& problem, double e, Cost& c) {
  const ProblemShape& s = problem.shape;
  const double B = double(s.batch), H = double(s.heads), Hkv = double(s.kv_heads);
  const double Lq = double(s.q_len), Lk = double(s.kv_len);
  const double Dk = double(s.head_dim), Dv = double(s.v_head_dim);
  const Counts n = counts(problem);
  const i128 pairs = n.compressed + n.selected + n.window;
  c.visible_pairs = module::saturate(pairs * (i128{s.batch} * s.heads));
  const double blocks =
      problem.nsa.block_size > 0 ? std::ceil(Lk / double(problem.nsa.block_size)) : 0.0;
  // Every branch scores and mixes its pairs; the block means are one add per key element.
  c.flops = B * H * double(pairs) * 2 * (Dk + Dv) + B * Hkv * Lk * (Dk + Dv);
  c.bytes = e * B * (H * Lq * Dk + Hkv * Lk * (Dk + Dv) + H * Lq * Dv)  // q, k, v, o
            + 4 * B * H * Lq * 6                                        // three gates, three lse
            + 4 * B * Hkv * Lq * double(problem.nsa.block_count);       // int32 selection
  c.kv_values_per_token = Hkv * (Dk + Dv);
  c.kv_bytes_per_token = c.kv_values_per_token * e;
  // The cache keeps the mean key and value of every complete block beside the pages.
  c.kv_cache_bytes = B * Lk * c.kv_bytes_per_token + B * Hkv * blocks * (Dk + Dv) * e;
}

// A decode step reads q and the gates, the cached block means (keys and values; averaging them is
// done once, when each block fills), the selected blocks' keys and values and the window's (a key
// in both is counted twice), and writes o, the three lse's and the selection.
void nsa_decode_cost(const AttentionProblem& p, int64_t L, Cost& c) {
  const double e = 4;
  const double H = double(p.shape.heads), Hkv = double(p.shape.kv_heads);
  const double Dk = double(p.shape.head_dim), Dv = double(p.shape.v_head_dim);
  const double blocks = p.nsa.block_size > 0 ? std::floor(double(L) / double(p.nsa.block_size)) : 0;
  const Counts n = counts(p);  // one row at position L - 1: keys per query head
  c.flops -= Hkv * double(L) * (Dk + Dv);
  c.bytes = e * (H * Dk + Hkv * blocks * (Dk + Dv) +
                 Hkv * double(n.selected + n.window) * (Dk + Dv) + H * Dv) +
            4 * H * 6 + 4 * Hkv * double(p.nsa.block_count);
}

std::optional<std::string> nsa_validate(const AttentionProblem& p) {
  const NsaParams& n = p.nsa;
  if (n.block_size < 1) {
    return "block_size must be at least 1 (got " + std::to_string(n.block_size) + ")";
  }
  if (n.block_count < 3) {
    return "block_count must be at least 3, so that the forced blocks (the first, the own and "
           "the previous one) always fit (got " +
           std::to_string(n.block_count) + ")";
  }
  if (n.window < 0) {
    return "window must be 0 (no window branch) or more (got " + std::to_string(n.window) + ")";
  }
  return std::nullopt;
}

std::vector<TensorSpec> nsa_inputs(const AttentionProblem& p) {
  std::vector<TensorSpec> in = module::qkv_inputs(p);
  const ProblemShape& s = p.shape;
  in.push_back({"g_cmp",
                {s.batch, s.heads, s.q_len},
                false,
                "gate of the compressed branch [B, H, Lq], in [0, 1]"});
  in.push_back({"g_slc",
                {s.batch, s.heads, s.q_len},
                false,
                "gate of the selected branch [B, H, Lq], in [0, 1]"});
  in.push_back({"g_swa",
                {s.batch, s.heads, s.q_len},
                false,
                "gate of the window branch [B, H, Lq], in [0, 1]"});
  return in;
}

void nsa_infer(const Inputs& in, AttentionProblem& p) {
  module::qkv_infer(in, p);
  for (const char* name : kGates) {
    if (!in.has(name)) {
      throw Error("input tensor '" + std::string(name) +
                  "' is missing: NSA mixes its three branches by the gates g_cmp, g_slc and g_swa "
                  "[batch, heads, q_len], each in [0, 1]");
    }
    const Tensor& g = require(in, name, 3, "[batch, heads, q_len]");
    require_dim(g, name, 0, p.shape.batch, "batch, as in q");
    require_dim(g, name, 1, p.shape.heads, "heads, as in q");
    require_dim(g, name, 2, p.shape.q_len, "q_len, as in q");
  }
}

// Gates are the output of a sigmoid: anything outside [0, 1] did not come from one.
std::optional<std::string> nsa_check_values(const Inputs& in) {
  for (const char* name : kGates) {
    const Tensor& g = in.at(name);
    const float* x = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) {
      if (!(x[i] >= 0.0f && x[i] <= 1.0f)) {
        return "input tensor '" + std::string(name) + "' holds " + std::to_string(x[i]) +
               " at flat index " + std::to_string(i) +
               ": NSA's gates are sigmoid outputs and must lie in [0, 1]";
      }
    }
  }
  return std::nullopt;
}

}  // namespace

VariantInfo nsa() {
  // Dense attention's q/k/v (GQA layout) and cache pages; its own branches, gates and selection.
  VariantInfo v = dense();
  v.id = VariantId::nsa;
  v.aliases = {};
  v.low_precision = false;
  v.name = "nsa";
  v.title = "Native Sparse Attention";
  v.short_title = "NSA";
  v.summary =
      "three gated branches: block means, the blocks a kv group selects from them, and a "
      "sliding window";
  v.params = {
      {.key = "block_size",
       .label = "Block size",
       .help = "Keys per block; each block is summarized by the mean of its keys for routing.",
       .min = 1,
       .max = 1 << 16,
       ATTNSCOPE_PARAM_ACCESS(nsa, block_size)},
      {.key = "block_count",
       .label = "Selected blocks",
       .help = "Blocks each kv group attends to in the selected branch, the first, own and "
               "previous block (always chosen) included; at least 3.",
       .min = 3,
       .max = 4096,
       ATTNSCOPE_PARAM_ACCESS(nsa, block_count)},
      {.key = "window",
       .label = "Window",
       .help = "Keys the window branch sees, the query itself included; 0 turns the branch off.",
       .min = 0,
       .max = 1 << 20,
       ATTNSCOPE_PARAM_ACCESS(nsa, window)},
  };
  v.causal_only = true;
  v.map_kind = MapKind::mixture;
  v.sparse_of = VariantId::dense;
  v.selection = nullptr;  // group-shared blocks: RunResult::extra_index["selection"]
  v.mask = nullptr;
  v.validate = nsa_validate;
  v.inputs = nsa_inputs;
  v.infer_shape = nsa_infer;
  v.check_values = nsa_check_values;
  v.input_family = InputFamily::qkv_branch_gates;
  v.extra_outputs = {"lse_cmp", "lse_slc", "lse_swa", "selection"};
  v.extra_output_bytes = [](const AttentionProblem& p) {
    const ProblemShape& s = p.shape;
    const int64_t rows = checked_mul(checked_mul(s.batch, s.heads, "lse"), s.q_len, "lse");
    const int64_t sel =
        checked_mul(checked_mul(s.batch, s.kv_heads, "selection"),
                    checked_mul(s.q_len, p.nsa.block_count, "selection"), "selection");
    return checked_add(checked_mul(rows, 12, "lse"), checked_mul(sel, 4, "selection"),
                       "NSA's outputs");
  };
  v.cost = nsa_cost;
  v.decode_cost = nsa_decode_cost;
  v.cache = [](const AttentionProblem& p) {
    CacheSpec c = module::kv_cache(p);
    c.mean_block = p.nsa.block_size;
    c.mean_values = true;  // the compressed branch attends to the mean values as well
    return c;
  };
  v.reference = reference::nsa_run;
  v.map_tile = reference::nsa_map_tile;
  v.cpu_run = cpu::run_nsa;
  v.cpu_decode = cpu::decode_nsa;
  v.route = nullptr;
  return v;
}

}  // namespace variant_modules
}  // namespace attnscope
