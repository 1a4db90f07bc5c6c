// The cuda backend's bf16/fp16 tensor-core path against the float64 reference on the rounded
// inputs, by flash-attention's rule: no worse than twice the error of the naive bf16/fp16
// computation (tests/lowp_check.hpp). Without a device the kernel tests skip and say why; the
// support rules are a pure function of the problem and are checked on every machine.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attnscope/cuda/backend.hpp"
#include "attnscope/cuda/tensor_core.hpp"
#include "attnscope/error.hpp"
#include "attnscope/lowp.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "cuda_test_util.hpp"
#include "lowp_check.hpp"

using namespace attnscope;
using lowp_test::Case;
using lowp_test::problem_of;

namespace {

void check_case(const AttentionProblem& p, uint64_t seed) {
  SCOPED_TRACE(p.describe() + " seed " + std::to_string(seed));
  auto backend = cuda::make_cuda_backend();
  const Support s = backend->supports(p);
  ASSERT_TRUE(s.ok) << s.why_not;
  const Inputs in = make_inputs(p, "random", seed);
  const Inputs rounded = round_inputs(in, p.precision);
  const RunResult got = backend->run(p, in, {}, {});
  EXPECT_EQ(got.backend, "cuda");
  const RunResult ref = lowp_test::reference_on(p, rounded);
  const RunResult naive = naive_lowp_reference(p, in);
  EXPECT_TRUE(lowp_test::output_within_twice_naive(got.o, ref.o, naive.o));
  EXPECT_TRUE(lowp_test::lse_within_fp32_accumulation(got.lse, ref.lse, p, rounded));
}

// Fresh random shapes per run (the seed is printed on failure): odd lengths, GQA groups 1/2/4/8,
// MQA, causal or not, Lq != Lk both ways, both head dims, SWA with and without sinks.
std::vector<Case> random_cases(std::mt19937_64& rng, int count) {
  std::vector<Case> cases;
  const int64_t groups[] = {1, 2, 4, 8};
  for (int n = 0; n < count; ++n) {
    Case c;
    const int64_t kv_heads = 1 + int64_t(rng() % 3);
    const int64_t group = groups[rng() % 4];
    const int64_t dim = rng() % 2 ? 64 : 128;
    const int64_t lq = (1 + int64_t(rng() % 300)) | 1;  // odd
    const int64_t lk = rng() % 4 == 0 ? lq : ((1 + int64_t(rng() % 400)) | 1);
    c.shape = {1 + int64_t(rng() % 2), kv_heads * group, kv_heads, lq, lk, dim, dim};
    c.causal = rng() % 3 != 0;
    if (c.causal && rng() % 2) {
      c.window = 1 + int64_t(rng() % 100);
      c.sinks = rng() % 2 ? int64_t(rng() % 8) : 0;
    }
    cases.push_back(c);
  }
  return cases;
}

const std::vector<Case>& fixed_cases() {
  static const std::vector<Case> cases = {
      {{1, 4, 4, 37, 37, 64, 64}, true},            // MHA, odd length, one ragged tile
      {{2, 8, 2, 65, 129, 64, 64}, true},           // GQA 4, Lq < Lk, ragged tiles
      {{1, 8, 1, 33, 70, 128, 128}, false},         // MQA, non-causal
      {{1, 8, 1, 1, 333, 128, 128}, true},          // decode-like: one query row
      {{1, 2, 2, 150, 40, 64, 64}, true},           // Lq > Lk: 110 rows see nothing
      {{1, 16, 2, 129, 129, 128, 128}, true},       // GQA 8, D = 128, two query tiles
      {{1, 4, 2, 200, 200, 64, 64}, true, 1, 0},    // W = 1: only itself
      {{1, 4, 2, 200, 200, 64, 64}, true, 17, 4},   // window + sinks: middle tiles skipped
      {{1, 4, 4, 70, 50, 128, 128}, true, 300, 4},  // W >= Lk (equals causal), Lq > Lk
      {{2, 4, 1, 61, 517, 64, 64}, true, 100, 3},   // MQA, Lq < Lk, window well inside
  };
  return cases;
}

TEST(CudaLowp, Bf16WithinTwiceTheNaiveError) {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 5000;
  for (const Case& c : fixed_cases()) check_case(problem_of(c, Precision::bf16), ++seed);
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t base = rng();
  for (const Case& c : random_cases(rng, 12))
    check_case(problem_of(c, Precision::bf16), base + ++seed);
}

TEST(CudaLowp, Fp16WithinTwiceTheNaiveError) {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 6000;
  for (const Case& c : fixed_cases()) check_case(problem_of(c, Precision::fp16), ++seed);
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t base = rng();
  for (const Case& c : random_cases(rng, 12))
    check_case(problem_of(c, Precision::fp16), base + ++seed);
}

// Rows that see nothing: o = 0 exactly and lse = -inf, in whole blocks (all 64 rows) and in the
// block that straddles the first visible row.
TEST(CudaLowp, FullyMaskedRowsAreZeroWithMinusInfLse) {
  REQUIRE_CUDA_DEVICE();
  for (Precision prec : {Precision::bf16, Precision::fp16}) {
    const AttentionProblem p = problem_of({{1, 2, 1, 200, 70, 64, 64}, true}, prec);
    const Inputs in = make_inputs(p, "random", 77);
    const RunResult got = cuda::make_cuda_backend()->run(p, in, {}, {});
    const int64_t blind = p.shape.q_len - p.shape.kv_len;  // rows with p < 0
    for (int64_t h = 0; h < p.shape.heads; ++h) {
      for (int64_t i = 0; i < p.shape.q_len; ++i) {
        const float lse = got.lse.at({0, h, i});
        if (i < blind) {
          ASSERT_EQ(lse, -INFINITY) << "row " << i;
          for (int64_t d = 0; d < p.shape.v_head_dim; ++d) ASSERT_EQ(got.o.at({0, h, i, d}), 0.0f);
        } else {
          ASSERT_TRUE(std::isfinite(lse)) << "row " << i;
        }
      }
    }
  }
}

// A finite fp32 input that fp16 cannot hold is refused with the tensor and index named; bf16
// holds it.
TEST(CudaLowp, Fp16OverflowIsRefusedByName) {
  REQUIRE_CUDA_DEVICE();
  AttentionProblem p = problem_of({{1, 2, 2, 16, 16, 64, 64}, true}, Precision::fp16);
  Inputs in = make_inputs(p, "random", 3);
  Tensor v = in.at("v");
  v.data()[5] = 70000.0f;
  in.set("v", v);
  auto backend = cuda::make_cuda_backend();
  try {
    backend->run(p, in, {}, {});
    ADD_FAILURE() << "fp16 run accepted 70000";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'v' element 5"), std::string::npos) << e.what();
  }
  p.precision = Precision::bf16;
  EXPECT_NO_THROW(backend->run(p, in, {}, {}));
}

// The support rules (no device needed): bf16/fp16 only for dense/swa, Dk = Dv in {64, 128}; the
// reason names what would work.
TEST(CudaLowpSupport, RejectsWhatTheTensorCoreKernelDoesNotCover) {
  for (Precision prec : {Precision::bf16, Precision::fp16}) {
    AttentionProblem p = problem_of({{1, 4, 2, 64, 64, 64, 64}, true}, prec);
    EXPECT_TRUE(cuda::tensor_core_support(p).ok);
    p.shape.head_dim = p.shape.v_head_dim = 128;
    EXPECT_TRUE(cuda::tensor_core_support(p).ok);
    p.variant = VariantId::swa;
    EXPECT_TRUE(cuda::tensor_core_support(p).ok);

    AttentionProblem odd = p;
    odd.shape.head_dim = odd.shape.v_head_dim = 96;
    Support s = cuda::tensor_core_support(odd);
    EXPECT_FALSE(s.ok);
    EXPECT_NE(s.why_not.find("head_dim 64 and 128 (got 96)"), std::string::npos) << s.why_not;

    AttentionProblem unequal = p;
    unequal.shape.v_head_dim = 64;
    s = cuda::tensor_core_support(unequal);
    EXPECT_FALSE(s.ok);
    EXPECT_NE(s.why_not.find("v_head_dim equal to head_dim"), std::string::npos) << s.why_not;

    for (VariantId id : {VariantId::mla, VariantId::moba, VariantId::gated_delta}) {
      AttentionProblem other = AttentionProblem::defaults(id);
      other.precision = prec;
      s = cuda::tensor_core_support(other);
      EXPECT_FALSE(s.ok) << variant_info(id).name;
      EXPECT_NE(s.why_not.find("fp32 only"), std::string::npos) << s.why_not;
      EXPECT_NE(s.why_not.find(std::string(variant_info(id).name)), std::string::npos) << s.why_not;
    }
  }
  EXPECT_FALSE(cuda::tensor_core_support(AttentionProblem::defaults(VariantId::dense)).ok);
}

// Through the backend on a device: the same reasons, and run() refuses rather than computing in
// fp32.
TEST(CudaLowpSupport, BackendRefusesUnsupportedLowPrecision) {
  REQUIRE_CUDA_DEVICE();
  auto backend = cuda::make_cuda_backend();
  AttentionProblem moba = AttentionProblem::defaults(VariantId::moba);
  moba.shape.q_len = moba.shape.kv_len = 128;
  moba.precision = Precision::bf16;
  const Support s = backend->supports(moba);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.why_not.find("fp32 only"), std::string::npos) << s.why_not;
  EXPECT_THROW(backend->run(moba, make_inputs(moba, "random", 1), {}, {}), Error);
  AttentionProblem wide = problem_of({{1, 2, 2, 16, 16, 256, 256}, true}, Precision::fp16);
  EXPECT_FALSE(backend->supports(wide).ok);
  EXPECT_THROW(backend->run(wide, make_inputs(wide, "random", 1), {}, {}), Error);
}

}  // namespace
