// Descriptors of the softmax variants over q/k/v (dense MHA/GQA/MQA, sliding window, MoBA):
// they share the PyTorch SDPA layout and differ only in their mask knobs.
#include <string>

#include "attnscope/error.hpp"
#include "variants/variants.hpp"

namespace attnscope::descriptor {

const Tensor& require(const Inputs& in, const char* name, int rank, const char* layout) {
  const Tensor& t = in.at(name);
  if (t.rank() != rank) {
    throw Error("input tensor '" + std::string(name) + "' must have " + std::to_string(rank) +
                " dimensions " + layout + ", got shape " + shape_str(t.shape()));
  }
  return t;
}

void require_dim(const Tensor& t, const char* name, int axis, int64_t expected, const char* what) {
  if (t.dim(axis) != expected) {
    throw Error("input tensor '" + std::string(name) + "' has shape " + shape_str(t.shape()) +
                ": dimension " + std::to_string(axis) + " (" + what + ") must be " +
                std::to_string(expected));
  }
}

namespace {

std::vector<TensorSpec> qkv_inputs(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  return {{"q", {s.batch, s.heads, s.q_len, s.head_dim}, false, "queries [B, H, Lq, Dk]"},
          {"k", {s.batch, s.kv_heads, s.kv_len, s.head_dim}, false, "keys [B, Hkv, Lk, Dk]"},
          {"v", {s.batch, s.kv_heads, s.kv_len, s.v_head_dim}, false, "values [B, Hkv, Lk, Dv]"}};
}

void qkv_infer(const Inputs& in, AttentionProblem& p) {
  const Tensor& q = require(in, "q", 4, "[batch, heads, q_len, head_dim]");
  const Tensor& k = require(in, "k", 4, "[batch, kv_heads, kv_len, head_dim]");
  const Tensor& v = require(in, "v", 4, "[batch, kv_heads, kv_len, v_head_dim]");
  require_dim(k, "k", 0, q.dim(0), "batch, as in q");
  require_dim(k, "k", 3, q.dim(3), "head_dim, as in q");
  require_dim(v, "v", 0, q.dim(0), "batch, as in q");
  require_dim(v, "v", 1, k.dim(1), "kv_heads, as in k");
  require_dim(v, "v", 2, k.dim(2), "kv_len, as in k");
  p.shape = {q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3), v.dim(3)};
}

}  // namespace

std::string dense_describe(const AttentionProblem&) {
  return "";
}
std::optional<std::string> dense_validate(const AttentionProblem&) {
  return std::nullopt;
}
std::vector<TensorSpec> dense_inputs(const AttentionProblem& p) {
  return qkv_inputs(p);
}
void dense_infer(const Inputs& in, AttentionProblem& p) {
  qkv_infer(in, p);
}

std::string swa_describe(const AttentionProblem& p) {
  return " window=" + std::to_string(p.swa.window) + " sinks=" + std::to_string(p.swa.sinks);
}
std::optional<std::string> swa_validate(const AttentionProblem& p) {
  if (p.swa.window < 1) {
    return "window must be at least 1 (it counts the keys a query sees, itself included; got " +
           std::to_string(p.swa.window) + ")";
  }
  if (p.swa.sinks < 0) return "sinks must be 0 or more (got " + std::to_string(p.swa.sinks) + ")";
  return std::nullopt;
}
std::vector<TensorSpec> swa_inputs(const AttentionProblem& p) {
  return qkv_inputs(p);
}
void swa_infer(const Inputs& in, AttentionProblem& p) {
  qkv_infer(in, p);
}

std::string moba_describe(const AttentionProblem& p) {
  return " block_size=" + std::to_string(p.moba.block_size) +
         " top_k=" + std::to_string(p.moba.top_k);
}
std::optional<std::string> moba_validate(const AttentionProblem& p) {
  if (p.moba.block_size < 1) {
    return "block_size must be at least 1 (got " + std::to_string(p.moba.block_size) + ")";
  }
  if (p.moba.top_k < 1) {
    return "top_k must be at least 1: it counts the query's own block (got " +
           std::to_string(p.moba.top_k) + ")";
  }
  return std::nullopt;
}
std::vector<TensorSpec> moba_inputs(const AttentionProblem& p) {
  return qkv_inputs(p);
}
void moba_infer(const Inputs& in, AttentionProblem& p) {
  qkv_infer(in, p);
}

// q, k and v carry no value rules beyond finiteness.
std::optional<std::string> dense_check_values(const Inputs&) {
  return std::nullopt;
}
std::optional<std::string> swa_check_values(const Inputs&) {
  return std::nullopt;
}
std::optional<std::string> moba_check_values(const Inputs&) {
  return std::nullopt;
}

}  // namespace attnscope::descriptor
