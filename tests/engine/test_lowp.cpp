// bf16/fp16 on the host: the conversions bit for bit (known patterns, ties to even, overflow,
// subnormals, NaN, and an independent nearest-value oracle), the naive low-precision baseline
// against the float64 reference, and how problems, backends, decode and sweeps treat a precision.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/lowp.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/sweep.hpp"
#include "attnscope/workload.hpp"

using namespace attnscope;

namespace {

float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}
uint32_t bits_of(float x) {
  return std::bit_cast<uint32_t>(x);
}
bool bf16_is_nan(uint16_t b) {
  return (b & 0x7fff) > 0x7f80;
}
bool fp16_is_nan(uint16_t b) {
  return (b & 0x7fff) > 0x7c00;
}

// ---- conversions ---------------------------------------------------------------------------

TEST(LowpConvert, Bf16KnownPatternsAndTiesToEven) {
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_bf16_bits(0.0f), 0x0000);
  EXPECT_EQ(float_to_bf16_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x40490fdb)), 0x4049);  // pi rounds down
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x3f808000)), 0x3f80);  // tie, 0x3f80 is even
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x3f818000)), 0x3f82);  // tie, 0x3f81 is odd: up
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x3f808001)), 0x3f81);  // just above the tie
  EXPECT_EQ(float_to_bf16_bits(from_bits(0xbf818000)), 0xbf82);  // ties are symmetric in sign
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x3fffffff)), 0x4000);  // carry into the exponent
  EXPECT_EQ(bf16_bits_to_float(0x3f81), 1.0078125f);
  EXPECT_EQ(bf16_bits_to_float(0xc000), -2.0f);
}

TEST(LowpConvert, Bf16OverflowInfinityNanAndSubnormals) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_EQ(float_to_bf16_bits(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x7f7f7fff)), 0x7f7f);  // largest that stays finite
  EXPECT_EQ(float_to_bf16_bits(overflow_threshold(Precision::bf16)), 0x7f80);
  EXPECT_EQ(bits_of(overflow_threshold(Precision::bf16)), 0x7f7f8000u);
  EXPECT_EQ(float_to_bf16_bits(inf), 0x7f80);
  EXPECT_EQ(float_to_bf16_bits(-inf), 0xff80);
  EXPECT_TRUE(bf16_is_nan(float_to_bf16_bits(std::nanf(""))));
  // A NaN whose payload sits only in the low 16 bits must not truncate to infinity.
  EXPECT_TRUE(bf16_is_nan(float_to_bf16_bits(from_bits(0x7f800001))));
  EXPECT_TRUE(bf16_is_nan(float_to_bf16_bits(from_bits(0xff800001))));
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(0x7fc0)));
  // fp32 subnormals: bf16 has the same exponent range, so they round like any other value.
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x00000001)), 0x0000);
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x00008000)), 0x0000);  // tie to even 0
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x00018000)), 0x0002);  // tie to even 2
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x00010000)), 0x0001);  // exact
  EXPECT_EQ(float_to_bf16_bits(from_bits(0x007fffff)), 0x0080);  // up to the smallest normal
}

TEST(LowpConvert, Fp16KnownPatternsTiesOverflowSubnormalsNan) {
  EXPECT_EQ(float_to_fp16_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_fp16_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_fp16_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_fp16_bits(0.1f), 0x2e66);
  EXPECT_EQ(float_to_fp16_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie: even
  EXPECT_EQ(float_to_fp16_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie: odd goes up
  EXPECT_EQ(float_to_fp16_bits(65504.0f), 0x7bff);                          // largest finite
  EXPECT_EQ(float_to_fp16_bits(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(float_to_fp16_bits(65520.0f), 0x7c00);  // halfway to 2^16 (odd 0x7bff): inf
  EXPECT_EQ(float_to_fp16_bits(-1e5f), 0xfc00);
  EXPECT_EQ(overflow_threshold(Precision::fp16), 65520.0f);
  EXPECT_EQ(float_to_fp16_bits(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(fp16_is_nan(float_to_fp16_bits(std::nanf(""))));
  EXPECT_TRUE(fp16_is_nan(float_to_fp16_bits(from_bits(0x7f800001))));  // payload in low bits
  EXPECT_TRUE(std::isnan(fp16_bits_to_float(0x7e00)));
  EXPECT_EQ(fp16_bits_to_float(0x7c00), std::numeric_limits<float>::infinity());
  // Subnormals count units of 2^-24.
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(1.0f, -25)), 0x0000);  // half a unit: tie to 0
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(1.5f, -25)), 0x0001);  // 0.75 units
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units: tie to 2
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 units: tie to 2
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)),
            0x0400);  // 1023.5 units: tie to the even 1024, the smallest normal
  EXPECT_EQ(float_to_fp16_bits(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(float_to_fp16_bits(from_bits(0x00000001)), 0x0000);  // fp32 subnormal: flushed
  EXPECT_EQ(fp16_bits_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_bits_to_float(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp16_bits_to_float(0x7bff), 65504.0f);
}

// Every 16-bit pattern converts to float and back to itself (NaNs stay NaN: a signalling pattern
// comes back quiet).
TEST(LowpConvert, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const auto bits = uint16_t(b);
    if (bf16_is_nan(bits)) {
      EXPECT_TRUE(bf16_is_nan(float_to_bf16_bits(bf16_bits_to_float(bits)))) << b;
    } else {
      ASSERT_EQ(float_to_bf16_bits(bf16_bits_to_float(bits)), bits) << b;
    }
    if (fp16_is_nan(bits)) {
      EXPECT_TRUE(fp16_is_nan(float_to_fp16_bits(fp16_bits_to_float(bits)))) << b;
    } else {
      ASSERT_EQ(float_to_fp16_bits(fp16_bits_to_float(bits)), bits) << b;
    }
  }
}

// An independent oracle: the nearest representable value found by search in double arithmetic,
// ties to the even pattern, infinity standing for the next value past the largest finite one.
uint16_t nearest(float x, const std::vector<double>& values, uint16_t inf_bits, double beyond) {
  const double a = std::fabs(double(x));
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  // values[i] is the magnitude of pattern i (ascending); beyond plays the role of infinity.
  const auto it = std::upper_bound(values.begin(), values.end(), a);
  const size_t hi = size_t(it - values.begin());  // first pattern strictly above a
  if (hi == 0) return sign;                       // a == 0 is values[0]
  const size_t lo = hi - 1;
  if (values[lo] == a) return uint16_t(sign | lo);
  const double up = hi < values.size() ? values[hi] : beyond;
  const uint16_t up_bits = hi < values.size() ? uint16_t(hi) : inf_bits;
  const double dl = a - values[lo], du = up - a;
  if (dl < du || (dl == du && lo % 2 == 0)) return uint16_t(sign | lo);
  return uint16_t(sign | up_bits);
}

TEST(LowpConvert, MatchesANearestValueOracleOnRandomFloats) {
  std::vector<double> bf16_values, fp16_values;
  for (uint32_t b = 0; b < 0x7f80; ++b) bf16_values.push_back(bf16_bits_to_float(uint16_t(b)));
  for (uint32_t b = 0; b < 0x7c00; ++b) fp16_values.push_back(fp16_bits_to_float(uint16_t(b)));
  ASSERT_TRUE(std::is_sorted(bf16_values.begin(), bf16_values.end()));
  ASSERT_TRUE(std::is_sorted(fp16_values.begin(), fp16_values.end()));
  const double bf16_beyond = std::ldexp(1.0, 128), fp16_beyond = 65536.0;
  std::mt19937 rng(42);
  auto check = [&](float x) {
    ASSERT_EQ(float_to_bf16_bits(x), nearest(x, bf16_values, 0x7f80, bf16_beyond))
        << std::hex << bits_of(x);
    ASSERT_EQ(float_to_fp16_bits(x), nearest(x, fp16_values, 0x7c00, fp16_beyond))
        << std::hex << bits_of(x);
  };
  for (int n = 0; n < 400000; ++n) {
    const uint32_t u = rng();
    if ((u & 0x7f800000u) == 0x7f800000u) continue;  // inf/NaN have their own tests
    check(from_bits(u));
  }
  // Dense sweeps where the rounding changes character: fp16's subnormal range and its top, the
  // bf16 top, and ties (patterns whose dropped bits are exactly half).
  for (uint32_t u = 0x33000000u - 64; u < 0x38800000u + 64; u += 997) check(from_bits(u));
  for (uint32_t u = 0x477fe000u - 4096; u < 0x47800000u + 4096; u += 3) check(from_bits(u));
  for (uint32_t u = 0x7f7f0000u; u < 0x7f800000u; u += 7) check(from_bits(u));
  for (uint32_t e = 1; e < 255; ++e) {
    for (uint32_t m : {0x8000u, 0x18000u, 0x1000u, 0x3000u, 0x7fffu})
      check(from_bits((e << 23) | m));
  }
}

TEST(LowpConvert, RoundInputsAndUnrepresentableValues) {
  Inputs in;
  Tensor t({4});
  t.data()[0] = 1.0f + std::ldexp(1.0f, -9);  // a bf16 tie, fine in fp16
  t.data()[1] = 0.1f;
  t.data()[2] = 65519.0f;  // rounds to 65504 in fp16
  t.data()[3] = 70000.0f;  // beyond fp16
  in.set("x", t);
  const Inputs bf = round_inputs(in, Precision::bf16);
  const Inputs fp = round_inputs(in, Precision::fp16);
  const Inputs same = round_inputs(in, Precision::fp32);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(bf.at("x").data()[i], round_to(t.data()[i], Precision::bf16));
    EXPECT_EQ(fp.at("x").data()[i], round_to(t.data()[i], Precision::fp16));
    EXPECT_EQ(same.at("x").data()[i], t.data()[i]);
  }
  EXPECT_EQ(bf.at("x").data()[0], 1.0f);
  EXPECT_EQ(fp.at("x").data()[2], 65504.0f);
  EXPECT_TRUE(std::isinf(fp.at("x").data()[3]));
  EXPECT_EQ(first_unrepresentable(t, Precision::fp16), 3);
  EXPECT_EQ(first_unrepresentable(t, Precision::bf16), -1);
  EXPECT_EQ(first_unrepresentable(t, Precision::fp32), -1);
}

// ---- the naive low-precision baseline --------------------------------------------------------

RunResult reference_of(AttentionProblem p, const Inputs& in) {
  p.precision = Precision::fp32;
  return make_backend("reference")->run(p, in, {}, {});
}

// max over elements of |got - want| / (1 + |want|); -inf must match exactly.
double scaled_error(const Tensor& got, const Tensor& want) {
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data()[i], w = want.data()[i];
    if (std::isinf(w) || std::isinf(g)) {
      if (g != w) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::fabs(g - w) / (1 + std::fabs(w)));
  }
  return worst;
}

AttentionProblem lowp_problem(VariantId id, ProblemShape shape, bool causal, Precision precision) {
  AttentionProblem p = AttentionProblem::defaults(id);
  p.shape = shape;
  p.causal = causal;
  p.precision = precision;
  return p;
}

// The naive result sits at the precision's rounding level from the exact answer on the same
// (rounded) inputs: close at that tolerance, and measurably not fp32-accurate (so that the CUDA
// rule "2x the naive error" is a real bound, not a vacuous one). The tolerance is 8 units of the
// format's spacing at 1 (2^-8 bf16, 2^-11 fp16) relative to 1 + |ref|: a few roundings of scores of
// magnitude ~4 (standard normal inputs, scale 1/sqrt(Dk)) plus the rounding of P and of o. These
// seeds measure 0.9 to 2.9 units for o and below 1 unit for lse.
TEST(LowpNaive, WithinRoundingOfTheReferenceButNotFp32Accurate) {
  struct Case {
    VariantId id;
    ProblemShape shape;
    bool causal;
  };
  const std::vector<Case> cases = {
      {VariantId::dense, {1, 4, 2, 37, 53, 64, 64}, true},
      {VariantId::dense, {2, 4, 1, 20, 33, 32, 48}, false},
      {VariantId::swa, {1, 2, 2, 60, 60, 64, 64}, true},
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    for (Precision prec : {Precision::bf16, Precision::fp16}) {
      AttentionProblem p = lowp_problem(c.id, c.shape, c.causal, prec);
      if (c.id == VariantId::swa) p.swa = {16, 2};
      SCOPED_TRACE(p.describe());
      const Inputs in = make_inputs(p, "random", ++seed);
      const RunResult ref = reference_of(p, round_inputs(in, prec));
      const RunResult naive = naive_lowp_reference(p, in);
      const double unit = prec == Precision::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
      const double o_err = scaled_error(naive.o, ref.o);
      EXPECT_LE(o_err, 8 * unit);
      EXPECT_GT(o_err, 1e-5) << "naive " << precision_name(prec) << " looks fp32-accurate";
      EXPECT_LE(scaled_error(naive.lse, ref.lse), 8 * unit);
      EXPECT_EQ(naive.backend, "naive " + std::string(precision_name(prec)));
    }
  }
}

// With precision fp32 every rounding is the identity: the naive program is plain fp32 attention.
TEST(LowpNaive, Fp32IsPlainFp32Attention) {
  const AttentionProblem p =
      lowp_problem(VariantId::dense, {1, 2, 2, 30, 41, 16, 16}, true, Precision::fp32);
  const Inputs in = make_inputs(p, "random", 3);
  const RunResult ref = reference_of(p, in);
  const RunResult naive = naive_lowp_reference(p, in);
  EXPECT_LE(scaled_error(naive.o, ref.o), 1e-5);
  EXPECT_LE(scaled_error(naive.lse, ref.lse), 1e-5);
}

// SWA masking: W = 1 sees only itself, so o is that key's rounded value exactly; keys outside
// window and sinks do not move a row at all; rows that see nothing are 0 / -inf.
TEST(LowpNaive, SlidingWindowSinksAndMaskedRows) {
  AttentionProblem p = lowp_problem(VariantId::swa, {1, 2, 1, 24, 24, 8, 8}, true, Precision::bf16);
  p.swa = {1, 0};
  const Inputs in = make_inputs(p, "random", 5);
  const Inputs rounded = round_inputs(in, Precision::bf16);
  RunResult r = naive_lowp_reference(p, in);
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < 24; ++i) {
      for (int64_t d = 0; d < 8; ++d)
        ASSERT_EQ(r.o.at({0, h, i, d}), rounded.at("v").at({0, 0, i, d}));
    }
  }

  p.swa = {5, 2};  // row i sees keys (i - 5, i] and keys 0, 1
  r = naive_lowp_reference(p, in);
  EXPECT_LE(scaled_error(r.o, reference_of(p, rounded).o), 8 * std::ldexp(1.0, -8));
  Inputs moved = in;
  Tensor k = moved.at("k"), v = moved.at("v");
  for (int64_t d = 0; d < 8; ++d) {
    k.at({0, 0, 10, d}) += 3.0f;
    v.at({0, 0, 10, d}) -= 2.0f;
  }
  moved.set("k", k);
  moved.set("v", v);
  const RunResult r2 = naive_lowp_reference(p, moved);
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < 24; ++i) {
      const bool sees_10 = i >= 10 && i < 15;
      for (int64_t d = 0; d < 8; ++d) {
        if (sees_10) continue;
        ASSERT_EQ(r2.o.at({0, h, i, d}), r.o.at({0, h, i, d})) << "row " << i;
      }
    }
  }

  AttentionProblem blind =
      lowp_problem(VariantId::dense, {1, 1, 1, 9, 4, 8, 8}, true, Precision::fp16);
  const RunResult rb = naive_lowp_reference(blind, make_inputs(blind, "random", 6));
  for (int64_t i = 0; i < 5; ++i) {  // p = i - 5 < 0
    EXPECT_EQ(rb.lse.at({0, 0, i}), -INFINITY);
    for (int64_t d = 0; d < 8; ++d) EXPECT_EQ(rb.o.at({0, 0, i, d}), 0.0f);
  }
  EXPECT_TRUE(std::isfinite(rb.lse.at({0, 0, 5})));
}

TEST(LowpNaive, OtherVariantsAreRefused) {
  for (VariantId id : {VariantId::mla, VariantId::moba, VariantId::gated_delta}) {
    AttentionProblem p = AttentionProblem::defaults(id);
    p.shape.q_len = p.shape.kv_len = 16;
    p.precision = Precision::bf16;
    EXPECT_THROW(naive_lowp_reference(p, make_inputs(p, "random", 1)), Error);
  }
}

// ---- precision on problems, backends, decode and sweeps ---------------------------------------

TEST(LowpPrecision, NamesParseValidateAndDescribe) {
  for (Precision prec : {Precision::fp32, Precision::bf16, Precision::fp16}) {
    EXPECT_EQ(parse_precision(precision_name(prec)), prec);
  }
  EXPECT_EQ(precision_name(Precision::bf16), "bf16");
  EXPECT_FALSE(parse_precision("BF16"));
  EXPECT_FALSE(parse_precision("fp8"));
  EXPECT_FALSE(parse_precision(""));
  EXPECT_EQ(precision_names(), "fp32, bf16, fp16");
  EXPECT_EQ(element_bytes(Precision::fp32), 4);
  EXPECT_EQ(element_bytes(Precision::bf16), 2);
  EXPECT_EQ(element_bytes(Precision::fp16), 2);

  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  EXPECT_EQ(p.precision, Precision::fp32);
  EXPECT_EQ(p.describe().find("fp32"), std::string::npos);  // the default is not repeated
  p.precision = Precision::fp16;
  EXPECT_FALSE(p.validate());  // a valid problem; whether a backend computes it is supports()'s
  EXPECT_NE(p.describe().find(" fp16"), std::string::npos) << p.describe();
  p.precision = static_cast<Precision>(7);
  ASSERT_TRUE(p.validate());
  EXPECT_NE(p.validate()->find("precision must be one of fp32, bf16, fp16"), std::string::npos);
  EXPECT_THROW(p.check(), Error);
}

TEST(LowpPrecision, CostUsesTwoByteElements) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.precision = Precision::bf16;
  const Cost wide = cost_of(p), narrow = cost_of(p, element_bytes(p.precision));
  EXPECT_EQ(narrow.flops, wide.flops);
  EXPECT_LT(narrow.bytes, wide.bytes);
  EXPECT_EQ(narrow.kv_bytes_per_token * 2, wide.kv_bytes_per_token);
}

// The host backends compute in fp32 (cpu) or float64 (reference): they say no to bf16/fp16, with a
// sentence pointing at the cuda backend, and run() refuses instead of silently computing in fp32.
TEST(LowpPrecision, HostBackendsRefuseLowPrecisionClearly) {
  for (const char* name : {"reference", "cpu"}) {
    auto backend = make_backend(name);
    AttentionProblem p =
        lowp_problem(VariantId::dense, {1, 2, 2, 8, 8, 16, 16}, true, Precision::bf16);
    const Inputs in = make_inputs(p, "random", 1);
    const Support s = backend->supports(p);
    EXPECT_FALSE(s.ok) << name;
    EXPECT_NE(s.why_not.find("bf16 needs the cuda backend"), std::string::npos) << s.why_not;
    try {
      backend->run(p, in, {}, {});
      ADD_FAILURE() << name << " ran a bf16 problem";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs the cuda backend"), std::string::npos)
          << e.what();
    }
    p.precision = Precision::fp16;
    EXPECT_FALSE(backend->supports(p).ok);
    p.precision = Precision::fp32;
    EXPECT_TRUE(backend->supports(p).ok) << name;
    EXPECT_NO_THROW(backend->run(p, in, {}, {}));
  }
}

TEST(LowpPrecision, PagedDecodeRefusesLowPrecisionModels) {
  AttentionProblem model =
      lowp_problem(VariantId::dense, {1, 2, 2, 1, 1, 16, 16}, true, Precision::bf16);
  PagedKvCache cache(KvCacheConfig{model, 16, 0});
  const int64_t seq = cache.add_sequence();
  AttentionProblem row = model;
  row.shape.batch = 1;
  const Inputs in = make_inputs(row, "random", 2);
  DecodeStep step;
  step.sequences = {seq};
  step.inputs = in;
  auto backend = make_backend("reference");
  try {
    decode_step(*backend, cache, step);
    ADD_FAILURE() << "decoded a bf16 model in fp32";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp32 only"), std::string::npos) << e.what();
  }
}

// A sweep on host backends skips bf16 points with the backend's reason, and the precision survives
// the JSON round trip; files written before precision existed read as fp32.
TEST(LowpPrecision, SweepsSkipWithTheReasonAndKeepThePrecision) {
  SweepConfig c;
  c.variants = {"dense"};
  c.seq_lens = {16};
  c.backends = {"reference"};
  c.repetitions = 1;
  c.base.shape = {1, 2, 2, 16, 16, 16, 16};
  c.base.precision = Precision::bf16;
  const SweepResult r = run_sweep(c);
  ASSERT_EQ(r.points.size(), 1u);
  EXPECT_NE(r.points[0].skipped.find("needs the cuda backend"), std::string::npos)
      << r.points[0].skipped;
  EXPECT_EQ(r.points[0].cost.kv_bytes_per_token,
            cost_of(r.points[0].problem, 2).kv_bytes_per_token);
  const std::string json = sweep_to_json(r);
  EXPECT_NE(json.find("\"precision\": \"bf16\""), std::string::npos);
  EXPECT_EQ(sweep_from_json(json).config.base.precision, Precision::bf16);
  std::string old = json;
  for (size_t at; (at = old.find("\"precision\": \"bf16\",")) != std::string::npos;) {
    old.erase(at, std::string("\"precision\": \"bf16\",").size());
  }
  EXPECT_EQ(sweep_from_json(old).config.base.precision, Precision::fp32);
  std::string bad = json;
  bad.replace(bad.find("\"precision\": \"bf16\""), 19, "\"precision\": \"fp64\"");
  EXPECT_THROW(sweep_from_json(bad), Error);
}

}  // namespace
