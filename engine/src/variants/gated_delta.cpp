// Descriptor of Gated DeltaNet (the gated delta rule): q, k, v plus per-token log-gate g and
// write strength beta, and an optional initial state (docs/variants/gated_delta.md).
#include <string>

#include "attnscope/error.hpp"
#include "variants/variants.hpp"

namespace attnscope::descriptor {

std::string gated_delta_describe(const AttentionProblem& p) {
  std::string s =
      p.gdn.recurrent ? " recurrent" : " chunk_size=" + std::to_string(p.gdn.chunk_size);
  return p.gdn.qk_l2norm ? s + " qk_l2norm" : s;
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
  if (p.gdn.chunk_size < 1) {
    return "chunk_size must be at least 1 (got " + std::to_string(p.gdn.chunk_size) + ")";
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

}  // namespace attnscope::descriptor
