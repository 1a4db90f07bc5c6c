// Input checking shared by every backend: the problem is valid, every tensor the variant needs is
// present with the right shape, and nothing is NaN/Inf. One place, so every backend says the same.
#include "attnscope/backend.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "attnscope/error.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

namespace attnscope {
namespace {

// The largest L2 norm over the rows of t's columns [col0, col1) (rows: every index but the last),
// in double so that the squares of fp32 values cannot overflow.
double max_row_norm(const Tensor& t, int64_t col0, int64_t col1) {
  const int64_t width = t.shape().back(), rows = width ? t.numel() / width : 0;
  double best = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = t.data() + r * width;
    double sum = 0;
    for (int64_t c = col0; c < col1; ++c) sum += double(row[c]) * double(row[c]);
    best = std::max(best, sum);
  }
  return std::sqrt(best);
}
double max_row_norm(const Tensor& t) {
  return max_row_norm(t, 0, t.shape().back());
}

// The largest Frobenius norm of the matrices t[h] over its first index (MLA's per-head W_uk).
double max_matrix_norm(const Tensor& t) {
  const int64_t n = t.shape()[0], size = n ? t.numel() / n : 0;
  double best = 0;
  for (int64_t h = 0; h < n; ++h) {
    double sum = 0;
    for (int64_t i = 0; i < size; ++i)
      sum += double(t.data()[h * size + i]) * t.data()[h * size + i];
    best = std::max(best, sum);
  }
  return std::sqrt(best);
}

std::string sci(double x) {
  std::ostringstream s;
  s.precision(3);
  s << x;
  return s.str();
}

// The fast backends compute scores q·k·scale (Gated DeltaNet: also k·k, or the norms of
// qk_l2norm) in fp32, the reference in float64. Inputs whose scores could leave the fp32 range
// would make the backends disagree (an overflowed score reads as an empty row on one, a huge finite
// answer on the other), so they are refused up front, the same way for every backend. The test is
// Cauchy-Schwarz: |q·k| <= |q| |k|, which also bounds every partial sum, in any order of
// accumulation; half of FLT_MAX leaves room for rounding. MLA's keys are W_uk c_kv, bounded by the
// Frobenius norm.
std::optional<std::string> check_score_range(const AttentionProblem& p, const Inputs& in) {
  constexpr double kLimit = 0.5 * std::numeric_limits<float>::max();
  const double scale = p.effective_scale();
  // First a bound from the cached max |x| (no pass over the data): |q·k| <= D max|q| max|k|.
  // Only inputs that fail it, which real data never does, pay for the exact row norms below.
  auto m = [&](const char* name) { return double(max_abs(in.at(name))); };
  if (p.variant == VariantId::mla) {
    const double dn = double(p.mla.nope_dim), dr = double(p.mla.rope_dim);
    const double dc = double(p.mla.kv_lora_rank);
    const double c = m("c_kv"), k_nope = dc * m("w_uk") * c, v = dc * m("w_uv") * c;
    const double k_rope = dr ? m("k_rope") : 0.0;
    const double score = scale * m("q") * (dn * k_nope + dr * k_rope);
    if (k_nope <= kLimit && v <= kLimit && score <= kLimit) return std::nullopt;
  } else if (p.variant == VariantId::gated_delta) {
    // Its q·k and k·k products, or with qk_l2norm the squared norms it divides by.
    const double d = double(p.shape.head_dim), q = m("q"), k = m("k");
    if (p.gdn.qk_l2norm ? d * std::max(q, k) * std::max(q, k) <= kLimit
                        : d * std::max(scale * q, k) * k <= kLimit) {
      return std::nullopt;
    }
  } else if (scale * double(p.shape.head_dim) * m("q") * m("k") <= kLimit) {
    return std::nullopt;
  }
  auto too_large = [&](double bound, const std::string& what) -> std::optional<std::string> {
    if (bound <= kLimit) return std::nullopt;
    return "the inputs are too large for fp32 attention: " + what + " can reach " + sci(bound) +
           ", beyond the fp32 range (" + sci(std::numeric_limits<float>::max()) +
           "); rescale the inputs";
  };
  if (p.variant == VariantId::mla) {
    const int64_t dn = p.mla.nope_dim, dr = p.mla.rope_dim;
    const Tensor& q = in.at("q");
    const double c = max_row_norm(in.at("c_kv"));
    const double k_nope = max_matrix_norm(in.at("w_uk")) * c;  // every entry of W_uk c_kv
    const double v = max_matrix_norm(in.at("w_uv")) * c;
    const double k_rope = dr ? max_row_norm(in.at("k_rope")) : 0.0;
    const double score = scale * (max_row_norm(q, 0, dn) * k_nope +
                                  (dr ? max_row_norm(q, dn, dn + dr) * k_rope : 0.0));
    if (auto why = too_large(k_nope, "a key w_uk·c_kv (tensors 'w_uk', 'c_kv')")) return why;
    if (auto why = too_large(v, "a value w_uv·c_kv (tensors 'w_uv', 'c_kv')")) return why;
    return too_large(score, "a score q·k·scale (tensors 'q', 'w_uk', 'c_kv', 'k_rope')");
  }
  const double q = max_row_norm(in.at("q")), k = max_row_norm(in.at("k"));
  if (p.variant == VariantId::gated_delta) {
    if (p.gdn.qk_l2norm) {
      return too_large(std::max(q, k) * std::max(q, k), "a squared norm |q|² or |k|² (qk_l2norm)");
    }
    if (auto why = too_large(k * k, "a product k·k (tensor 'k')")) return why;
  }
  return too_large(scale * q * k, "a score q·k·scale (tensors 'q', 'k')");
}

}  // namespace

void CancelToken::throw_if_cancelled() const {
  if (cancelled()) throw Cancelled();
}

void check_inputs(const AttentionProblem& problem, const Inputs& inputs) {
  problem.check();
  for (const TensorSpec& spec : variant_info(problem.variant).inputs(problem)) {
    if (!inputs.has(spec.name)) {
      if (spec.optional) continue;
      throw Error("missing input tensor '" + spec.name + "' (" + std::string(spec.doc) + ")");
    }
    const Tensor& t = inputs.at(spec.name);
    if (t.shape() != spec.shape) {
      throw Error("input tensor '" + spec.name + "' has shape " + shape_str(t.shape()) +
                  " but the problem needs " + shape_str(spec.shape) + " (" + std::string(spec.doc) +
                  ")");
    }
    if (const int64_t bad = first_non_finite(t); bad >= 0) {
      throw Error("input tensor '" + spec.name +
                  "' holds a non-finite value (NaN or Inf) at flat "
                  "index " +
                  std::to_string(bad));
    }
  }
  if (auto why = variant_info(problem.variant).check_values(inputs)) throw Error(*why);
  if (auto why = check_score_range(problem, inputs)) throw Error(*why);
}

}  // namespace attnscope

namespace attnscope {

RunResult Backend::decode(PagedKvCache&, const DecodeStep&, const Probes&, const CancelToken&) {
  throw Error("the " + std::string(name()) + " backend has no paged-KV decode path");
}

DevicePeak Backend::measure_peak(const CancelToken&) {
  throw Error("the " + std::string(name()) + " backend cannot measure its device's peak");
}

void check_outputs_finite(const AttentionProblem& problem, const RunResult& r) {
  auto check = [&](const Tensor& t, const char* name) {
    if (const int64_t bad = first_non_finite(t); bad >= 0) {
      std::string why = "the result overflowed fp32: output '" + std::string(name) +
                        "' is not finite at flat index " + std::to_string(bad);
      if (problem.variant == VariantId::gated_delta) {
        why +=
            " (Gated DeltaNet's state grows without bound when beta·|k|² > 2; normalize q and "
            "k with qk_l2norm, or rescale k)";
      }
      throw Error(why);
    }
  };
  check(r.o, "o");
  if (r.final_state) check(*r.final_state, "final_state");
}

Tensor Backend::attention_map(const AttentionProblem& problem, const Inputs& inputs,
                              const RunResult& result, const MapRequest& request,
                              const CancelToken& cancel) {
  return attnscope::attention_map(problem, inputs, result, request, cancel);
}

}  // namespace attnscope
