// Gated DeltaNet, the gated delta rule (docs/variants/gated_delta.md): q, k, v plus per-token
// log-gate g and write strength beta, and an optional initial state. The module's descriptor:
// knobs, shapes, value rules, cost, and its cache, which is a constant-size state.
#include <algorithm>
#include <string>

#include "attnscope/error.hpp"
#include "core/score_range.hpp"
#include "variants/gated_delta/gated_delta.hpp"
#include "variants/module.hpp"

namespace attnscope::variant_modules {
namespace {

using module::i128;
using module::require;
using module::require_dim;

std::string gated_delta_describe(const AttentionProblem& p) {
  std::string s = p.gated_delta.recurrent
                      ? " recurrent"
                      : " chunk_size=" + std::to_string(p.gated_delta.chunk_size);
  return p.gated_delta.qk_l2norm ? s + " qk_l2norm" : s;
}

std::optional<std::string> gated_delta_validate(const AttentionProblem& p) {
  if (p.shape.q_len != p.shape.kv_len) {
    return "Gated DeltaNet reads q, k and v at the same positions, so q_len must equal kv_len "
           "(got " +
           std::to_string(p.shape.q_len) + " and " + std::to_string(p.shape.kv_len) + ")";
  }
  if (p.shape.kv_heads != p.shape.heads) {
    return "Gated DeltaNet keeps one state per head, so kv_heads must equal heads (got " +
           std::to_string(p.shape.kv_heads) + " and " + std::to_string(p.shape.heads) + ")";
  }
  if (p.gated_delta.chunk_size < 1) {
    return "chunk_size must be at least 1 (got " + std::to_string(p.gated_delta.chunk_size) + ")";
  }
  return std::nullopt;
}

std::vector<TensorSpec> gated_delta_inputs(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  return {{"q", {s.batch, s.heads, s.q_len, s.head_dim}, false, "queries [B, H, L, Dk]"},
          {"k", {s.batch, s.heads, s.q_len, s.head_dim}, false, "keys [B, H, L, Dk]"},
          {"v", {s.batch, s.heads, s.q_len, s.v_head_dim}, false, "values [B, H, L, Dv]"},
          {"g", {s.batch, s.heads, s.q_len}, false, "log decay per token [B, H, L], <= 0"},
          {"beta", {s.batch, s.heads, s.q_len}, false, "write strength [B, H, L], in (0, 1)"},
          {"initial_state",
           {s.batch, s.heads, s.head_dim, s.v_head_dim},
           true,
           "state before the first token [B, H, Dk, Dv]"}};
}

// g is a log decay (exp(g) <= 1) and beta a write strength in (0, 1); outside those ranges the
// state grows without bound and the output is numerically meaningless, not an answer
// (docs/variants/gated_delta.md).
std::optional<std::string> gated_delta_check_values(const Inputs& in) {
  const Tensor& g = in.at("g");
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (g.data()[i] > 0.0f) {
      return "input tensor 'g' must be <= 0 (a log decay; exp(g) <= 1), but g[" +
             std::to_string(i) + "] = " + std::to_string(g.data()[i]);
    }
  }
  const Tensor& beta = in.at("beta");
  for (int64_t i = 0; i < beta.numel(); ++i) {
    const float b = beta.data()[i];
    if (!(b >= 0.0f && b <= 1.0f)) {
      return "input tensor 'beta' must lie in [0, 1] (a write strength), but beta[" +
             std::to_string(i) + "] = " + std::to_string(b);
    }
  }
  return std::nullopt;
}

void gated_delta_infer(const Inputs& in, AttentionProblem& p) {
  const Tensor& q = require(in, "q", 4, "[batch, heads, seq_len, head_dim]");
  const Tensor& k = require(in, "k", 4, "[batch, heads, seq_len, head_dim]");
  const Tensor& v = require(in, "v", 4, "[batch, heads, seq_len, v_head_dim]");
  for (int axis = 0; axis < 4; ++axis) require_dim(k, "k", axis, q.dim(axis), "as in q");
  for (int axis = 0; axis < 3; ++axis) require_dim(v, "v", axis, q.dim(axis), "as in q");
  for (const char* name : {"g", "beta"}) {
    const Tensor& t = require(in, name, 3, "[batch, heads, seq_len]");
    for (int axis = 0; axis < 3; ++axis) require_dim(t, name, axis, q.dim(axis), "as in q");
  }
  p.shape = {q.dim(0), q.dim(1), q.dim(1), q.dim(2), q.dim(2), q.dim(3), v.dim(3)};
}

// Its q·k and k·k products, or with qk_l2norm the squared norms it divides by.
std::optional<std::string> gated_delta_score_range(const AttentionProblem& p, const Inputs& in) {
  using namespace score_range;
  const double scale = p.effective_scale();
  {
    const double d = double(p.shape.head_dim), q = max_abs(in.at("q")), k = max_abs(in.at("k"));
    if (p.gated_delta.qk_l2norm ? d * std::max(q, k) * std::max(q, k) <= kLimit
                                : d * std::max(scale * q, k) * k <= kLimit) {
      return std::nullopt;
    }
  }
  const double q = max_row_norm(in.at("q")), k = max_row_norm(in.at("k"));
  if (p.gated_delta.qk_l2norm) {
    return too_large(std::max(q, k) * std::max(q, k), "a squared norm |q|² or |k|² (qk_l2norm)");
  }
  if (auto why = too_large(k * k, "a product k·k (tensor 'k')")) return why;
  return too_large(scale * q * k, "a score q·k·scale (tensors 'q', 'k')");
}

// One chunk of c tokens in the WY/UT chunked gated delta rule (per head): matrix-shaped work only.
// Products are counted at their full GEMM size (the triangular masks are applied afterwards, as
// fla's chunked form does); the forward substitution counts Σ_{i<c} i² multiply-adds.
double chunk_flops(double c, double dk, double dv) {
  // Intra-chunk GEMMs: A = K Kᵀ, W = T (β ⊙ K ⊙ e^γ) and Q Kᵀ are c×c×Dk; U = T (β ⊙ V) and
  // (Q Kᵀ ⊙ Γ) V' are c×c×Dv. The β, Γ and e^γ scalings are elementwise and not counted.
  const double intra = 3 * (2 * c * c * dk) + 2 * (2 * c * c * dv);
  // T = (I + A)⁻¹ by forward substitution: row i updates its i entries with i-term sums.
  const double solve = (c - 1) * c * (2 * c - 1) / 3;
  // Against the carried state: W S, (Q ⊙ e^γ) S and S += (K ⊙ e^{γ_C - γ})ᵀ V' are c×Dk×Dv;
  // the decay S ← e^{γ_C} S is one multiply per state entry.
  const double state = 3 * (2 * c * dk * dv) + dk * dv;
  return intra + solve + state;
}

void gated_delta_cost(const AttentionProblem& problem, double e, Cost& c) {
  const ProblemShape& s = problem.shape;
  const double B = double(s.batch), H = double(s.heads);
  const double Dk = double(s.head_dim), Dv = double(s.v_head_dim);
  const int64_t L = s.q_len;
  const double Ld = static_cast<double>(L);
  // The implicit attention matrix is lower-triangular: token t mixes values 0..t.
  c.visible_pairs = module::saturate(module::triangle(L) * (i128{s.batch} * s.heads));
  double per_head = 0;
  if (problem.gated_delta.recurrent || problem.gated_delta.chunk_size <= 0) {
    // Per token: decay (Dk·Dv), Sᵀk, rank-1 update k uᵀ, output Sᵀq (2·Dk·Dv each).
    per_head = Ld * 7 * Dk * Dv;
  } else {
    const int64_t C = problem.gated_delta.chunk_size;
    const double full_chunks = static_cast<double>(L / C);
    const double tail = static_cast<double>(L % C);
    per_head = full_chunks * chunk_flops(static_cast<double>(C), Dk, Dv);
    if (tail > 0) per_head += chunk_flops(tail, Dk, Dv);
  }
  c.flops = B * H * per_head;
  // q, k, v, g, beta in; o out; the final state is fp32. No initial state is assumed (the
  // problem has no flag for it): a given one adds B·H·Dk·Dv·element_bytes.
  c.bytes = e * B * H * Ld * (2 * Dk + Dv + 2 + Dv) + 4 * B * H * Dk * Dv;
  c.kv_values_per_token = 0;
  c.kv_bytes_per_token = 0;
  c.kv_cache_bytes = 4 * B * H * Dk * Dv;  // the fp32 state, whatever the context length
}

}  // namespace

VariantInfo gated_delta() {
  VariantInfo v;
  v.id = VariantId::gated_delta;
  v.name = "gated_delta";
  v.aliases = {"gdn", "gated_deltanet"};
  v.title = "Gated DeltaNet";
  v.short_title = "Gated DeltaNet";
  v.input_family = InputFamily::gated_qkv;
  v.summary = "linear attention with a gated delta-rule state: constant memory, no softmax";
  v.params = {
      {.key = "chunk_size",
       .label = "Chunk size",
       .help = "Tokens per chunk of the chunked (WY/UT) form; the result does not depend on it.",
       .min = 1,
       .max = 4096,
       .form = true,
       ATTNSCOPE_PARAM_ACCESS(gated_delta, chunk_size)},
      {.key = "qk_l2norm",
       .label = "L2-normalize q and k",
       .help = "Normalize q and k per token, as Gated DeltaNet models do; keeps the delta rule's "
               "update (I - beta k kᵀ) a contraction.",
       .type = ParamSpec::Type::boolean,
       .min = 0,
       .max = 1,
       ATTNSCOPE_PARAM_ACCESS(gated_delta, qk_l2norm)},
      {.key = "recurrent",
       .label = "Recurrent form",
       .help = "Step token by token instead of the chunked form (slower, same result).",
       .type = ParamSpec::Type::boolean,
       .min = 0,
       .max = 1,
       .form = true,
       ATTNSCOPE_PARAM_ACCESS(gated_delta, recurrent)},
  };
  v.json_aliases = {"gdn"};
  v.causal_only = true;
  v.map_kind = MapKind::implicit;
  v.has_state = true;
  v.normalize_shape = [](AttentionProblem& p) { p.shape.kv_heads = p.shape.heads; };
  v.decode_form = [](AttentionProblem& p) { p.gated_delta.recurrent = true; };
  v.describe = gated_delta_describe;
  v.validate = gated_delta_validate;
  v.inputs = gated_delta_inputs;
  v.check_values = gated_delta_check_values;
  v.score_range = gated_delta_score_range;
  v.overflow_hint =
      " (Gated DeltaNet's state grows without bound when beta·|k|² > 2; normalize q and k with "
      "qk_l2norm, or rescale k)";
  v.infer_shape = gated_delta_infer;
  v.token_axis = [](std::string_view name) { return name == "initial_state" ? -1 : 2; };
  v.cost = gated_delta_cost;
  v.decode_cost = [](const AttentionProblem& p, int64_t, Cost& c) {
    const ProblemShape& s = p.shape;
    c.bytes += 4 * double(s.heads) * double(s.head_dim) * double(s.v_head_dim);  // state read too
  };
  v.cache = [](const AttentionProblem& p) {
    CacheSpec c;
    c.layout = CacheLayout::state;
    c.key_tensor = c.value_tensor = "";
    c.heads = p.shape.heads;
    return c;
  };
  v.reference = reference::gated_delta_run;
  v.map_tile = reference::gated_delta_map_tile;
  v.cpu_run = cpu::run_gated_delta;
  v.cpu_decode = cpu::decode_gated_delta;
  return v;
}

}  // namespace attnscope::variant_modules
