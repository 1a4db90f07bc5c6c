// Shared pieces of the variant modules, and the registry-wide helpers that read ParamSpecs.
#include "variants/module.hpp"

#include <algorithm>

#include "attnscope/error.hpp"

namespace attnscope {

std::string ParamSpec::flag() const {
  std::string f = "--";
  f += key;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

std::optional<BlockSelection> block_selection(const AttentionProblem& problem) {
  const VariantInfo& info = variant_info(problem.variant);
  if (!info.has_selection()) return std::nullopt;
  return info.selection(problem);
}

bool sets_widths(const VariantInfo& info) {
  return std::any_of(info.params.begin(), info.params.end(),
                     [](const ParamSpec& p) { return p.shape; });
}

std::string describe_params(const AttentionProblem& problem) {
  const VariantInfo& info = variant_info(problem.variant);
  if (info.describe) return info.describe(problem);
  std::string s;
  for (const ParamSpec& p : info.params) {
    const int64_t v = p.get(problem);
    if (p.type == ParamSpec::Type::boolean && !v) continue;
    s += ' ';
    s += p.key;
    if (p.type == ParamSpec::Type::integer) {
      s += '=';
      s += std::to_string(v);
    }
  }
  return s;
}

void normalize_shape(AttentionProblem& problem) {
  if (auto fn = variant_info(problem.variant).normalize_shape) fn(problem);
}

int token_axis(VariantId variant, std::string_view tensor) {
  const auto own = variant_info(variant).token_axis;
  return own ? own(tensor) : 2;
}

AttentionProblem decode_form(const AttentionProblem& problem) {
  AttentionProblem p = problem;
  if (auto fn = variant_info(problem.variant).decode_form) fn(p);
  return p;
}

namespace module {

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

// q, k and v carry no value rules beyond finiteness.
std::optional<std::string> no_value_rules(const Inputs&) {
  return std::nullopt;
}

void masked_softmax_cost(const AttentionProblem& p, double e, Cost& c) {
  const ProblemShape& s = p.shape;
  const double B = double(s.batch), H = double(s.heads), Hkv = double(s.kv_heads);
  const double Lq = double(s.q_len), Lk = double(s.kv_len);
  const double Dk = double(s.head_dim), Dv = double(s.v_head_dim);
  const KeyMask mask = KeyMask::of(p);
  const i128 pairs = dense_pairs(mask, s.q_len, s.kv_len);
  const double keys_read = static_cast<double>(touched_keys(mask, s.q_len, s.kv_len));
  c.visible_pairs = saturate(pairs * (i128{s.batch} * s.heads));
  c.flops = B * H * static_cast<double>(pairs) * 2 * (Dk + Dv);
  c.bytes = e * B * (H * Lq * Dk + Hkv * keys_read * (Dk + Dv) + H * Lq * Dv) + 4 * B * H * Lq;
  c.kv_values_per_token = Hkv * (Dk + Dv);
  c.kv_bytes_per_token = c.kv_values_per_token * e;
  // A window keeps a ring buffer of the last W keys plus the S sinks; W = 0 means unlimited.
  double held = Lk;
  if (mask.window > 0) held = std::min(Lk, static_cast<double>(mask.window + mask.sinks));
  c.kv_cache_bytes = B * held * c.kv_bytes_per_token;
}

CacheSpec kv_cache(const AttentionProblem& p) {
  CacheSpec c;
  c.layout = CacheLayout::kv;
  c.heads = p.shape.kv_heads;
  c.key_width = p.shape.head_dim;
  c.value_width = p.shape.v_head_dim;
  return c;
}

}  // namespace module
}  // namespace attnscope
