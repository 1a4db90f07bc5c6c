// The acceptance rule of the bf16/fp16 tensor-core path, shared by the CUDA tests (real kernel) and
// the host emulation (the kernel's block code on CPU threads), so the rule itself runs on CPU too.
//   o:   max|got - ref| <= 2 max|naive - ref| + 1e-6   (flash-attention's
//   tests/test_flash_attn.py),
//        ref = float64 reference on the ROUNDED inputs, naive = naive_lowp_reference.
//   lse: -inf exactly where ref is -inf; elsewhere within what fp32 accumulation allows (below).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "attnscope/backend.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/lowp.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope::lowp_test {

// The float64 reference on the rounded inputs: what an exact computation in that precision's
// input format gives. (The reference backend refuses bf16/fp16 problems, so it runs the problem's
// fp32 twin; both read the same rounded numbers.)
inline RunResult reference_on(const AttentionProblem& p, const Inputs& rounded) {
  AttentionProblem exact = p;
  exact.precision = Precision::fp32;
  return make_backend("reference")->run(exact, rounded, {}, {});
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(double(a.data()[i]) - double(b.data()[i]));
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

// The absolute epsilon of the o rule: 1e-6 is ~8 fp32 ulps at |o| ~ 1. It matters only where the
// naive baseline happens to be exact (a row that sees one key: p = 1 and o = v in both, so both
// errors are 0 up to the fp32 normalization 1/l), never where the bf16/fp16 roundings dominate
// (naive errors there are ~1e-3 for bf16 and ~1e-4 for fp16).
inline constexpr double kOutputEpsilon = 1e-6;

inline ::testing::AssertionResult output_within_twice_naive(const Tensor& got, const Tensor& ref,
                                                            const Tensor& naive) {
  if (got.shape() != ref.shape() || naive.shape() != ref.shape()) {
    return ::testing::AssertionFailure()
           << "o: shape " << shape_str(got.shape()) << " vs " << shape_str(ref.shape());
  }
  const double naive_err = max_abs_diff(naive, ref);
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data()[i], w = ref.data()[i];
    if (!std::isfinite(g)) {
      return ::testing::AssertionFailure() << "o[" << i << "] = " << g << ", want " << w;
    }
    if (std::fabs(g - w) > worst) worst = std::fabs(g - w), at = i;
  }
  const double bound = 2 * naive_err + kOutputEpsilon;
  if (worst > bound) {
    return ::testing::AssertionFailure()
           << "o[" << at << "] = " << got.data()[at] << ", want " << ref.data()[at] << ": error "
           << worst << " > 2 x naive error " << naive_err << " + " << kOutputEpsilon;
  }
  return ::testing::AssertionSuccess() << "o error " << worst << " <= " << bound;
}

// lse: ref = float64 on the rounded inputs. The kernel's scores are fp32 sums of exact products
// (16-bit x 16-bit fits in fp32); with truncating tensor-core accumulation each of the Dk
// additions may lose up to one fp32 ulp of the running sum, so |δs_j| <= 2·Dk·2^-24·a_i with
// a_i = scale · max_j Σ_d |q_d k_jd| over the row's visible keys, and lse moves by at most
// max_j |δs_j| (its gradient is the softmax, which sums to 1). The fp32 row sum l of n_i terms adds
// <= n_i·2^-24 relative, i.e. that much to log l. Exp2/log2, the scale's rounding and the final
// product add a few fp32 ulps of |lse|, covered by the 1e-5 (1 + |ref|) of the fp32 rule.
inline ::testing::AssertionResult lse_within_fp32_accumulation(const Tensor& got, const Tensor& ref,
                                                               const AttentionProblem& p,
                                                               const Inputs& rounded) {
  if (got.shape() != ref.shape()) {
    return ::testing::AssertionFailure()
           << "lse: shape " << shape_str(got.shape()) << " vs " << shape_str(ref.shape());
  }
  const ProblemShape& s = p.shape;
  const int64_t group = s.heads / s.kv_heads, Dk = s.head_dim;
  const KeyMask mask = KeyMask::of(p);
  const double scale = p.effective_scale();
  const double ulp = std::ldexp(1.0, -24);
  const Tensor& q = rounded.at("q");
  const Tensor& k = rounded.at("k");
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const float* kb = k.data() + (b * s.kv_heads + h / group) * s.kv_len * Dk;
      for (int64_t i = 0; i < s.q_len; ++i) {
        const int64_t row = (b * s.heads + h) * s.q_len + i;
        const double g = got.data()[row], w = ref.data()[row];
        if (std::isinf(w) || !std::isfinite(g)) {
          if (g == w) continue;
          return ::testing::AssertionFailure() << "lse[" << row << "] = " << g << ", want " << w;
        }
        const float* qi = q.data() + row * Dk;
        double a = 0;
        int64_t n = 0;
        for (int64_t j = 0; j < s.kv_len; ++j) {
          if (!mask.visible(i, j)) continue;
          double sum_abs = 0;
          for (int64_t d = 0; d < Dk; ++d) sum_abs += std::fabs(double(qi[d]) * kb[j * Dk + d]);
          a = std::max(a, scale * sum_abs);
          ++n;
        }
        const double tol =
            1e-5 * (1 + std::fabs(w)) + ulp * (2.0 * double(Dk) * a + 2.0 * double(n));
        if (std::fabs(g - w) > tol) {
          return ::testing::AssertionFailure()
                 << "lse[" << row << "] = " << g << ", want " << w << " (error " << std::fabs(g - w)
                 << " > " << tol << ")";
        }
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// A dense (window == 0) or SWA case of the tensor-core path's tests, GPU and emulation alike.
struct Case {
  ProblemShape shape;  // B, H, Hkv, Lq, Lk, Dk, Dv
  bool causal;
  int64_t window = 0, sinks = 0;  // window > 0: swa
};

inline AttentionProblem problem_of(const Case& c, Precision precision) {
  AttentionProblem p = AttentionProblem::defaults(c.window > 0 ? VariantId::swa : VariantId::dense);
  p.shape = c.shape;
  p.causal = c.causal;
  if (c.window > 0) p.swa = {c.window, c.sinks};
  p.precision = precision;
  return p;
}

}  // namespace attnscope::lowp_test
