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
#include "core/score_range.hpp"

namespace attnscope {
namespace {

// The fast backends compute scores q·k·scale in fp32, the reference in float64. Inputs whose
// scores could leave the fp32 range would make the backends disagree (an overflowed score reads as
// an empty row on one, a huge finite answer on the other), so they are refused up front, the same
// way for every backend. The test is Cauchy-Schwarz: |q·k| <= |q| |k|, which also bounds every
// partial sum, in any order of accumulation. Variants with other products (latent keys, a
// recurrent state) bring their own bound (VariantInfo::score_range).
std::optional<std::string> check_score_range(const AttentionProblem& p, const Inputs& in) {
  if (auto own = variant_info(p.variant).score_range) return own(p, in);
  using namespace score_range;
  const double scale = p.effective_scale();
  // First a bound from the cached max |x| (no pass over the data): |q·k| <= D max|q| max|k|.
  // Only inputs that fail it, which real data never does, pay for the exact row norms below.
  if (scale * double(p.shape.head_dim) * max_abs(in.at("q")) * max_abs(in.at("k")) <= kLimit) {
    return std::nullopt;
  }
  const double q = max_row_norm(in.at("q")), k = max_row_norm(in.at("k"));
  return too_large(scale * q * k, "a score q·k·scale (tensors 'q', 'k')");
}

}  // namespace

void CancelToken::throw_if_cancelled() const {
  if (cancelled()) throw Cancelled();
}

Support host_fp32_support(const AttentionProblem& problem, std::string_view backend,
                          std::string_view computes) {
  if (problem.precision == Precision::fp32) return Support::yes();
  std::string why = "the ";
  why += backend;
  why += " backend computes in ";
  why += computes;
  why += "; ";
  why += precision_name(problem.precision);
  why += " needs the cuda backend (run with --precision fp32 here)";
  return Support::no(why);
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
      why += std::string(variant_info(problem.variant).overflow_hint);
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
