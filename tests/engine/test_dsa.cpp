// DeepSeek Sparse Attention: an own float64 oracle written from VARIANTS.md ("DeepSeek Sparse
// Attention": lightning indexer, top-k with ties to the lower key, absorbed MLA over the selected
// keys), the e4m3 rounding against a table enumerated from the bit layout, both backends against
// the oracle on random shapes, the invariants, the map tile, bad inputs and the CLI.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/slicing.hpp"
#include "attnscope/variant.hpp"
#include "oracle.hpp"

// The engine's e4m3 rounding (engine/src/variants/dsa/dsa.hpp; the tests do not see engine/src).
namespace attnscope::dsa {
float round_e4m3(float x);
void fake_quantize_e4m3(float* data, int64_t rows, int64_t width);
}  // namespace attnscope::dsa

using namespace attnscope;
using namespace attnscope_tests;
namespace fs = std::filesystem;

namespace {

struct DsaCase {
  int64_t B = 2, H = 2, Lq = 9, Lk = 9, Dc = 16, Dr = 4, Dn = 8, Dv = 8, Hi = 2, Di = 8, top_k = 4;
  bool fp8 = false;
};

AttentionProblem make_problem(const DsaCase& c) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dsa);
  p.causal = true;
  p.shape = {c.B, c.H, 1, c.Lq, c.Lk, c.Dn + c.Dr, c.Dv};
  p.mla = {c.Dc, c.Dr, c.Dn, true};
  p.dsa = {c.top_k, c.Hi, c.Di, c.fp8};
  return p;
}

// Weights scaled so that scores stay O(1): softmax rows are neither flat nor one-hot.
Inputs make_dsa_inputs(const AttentionProblem& p, uint64_t seed) {
  Rng rng(seed);
  const ProblemShape& s = p.shape;
  const int64_t Dc = p.mla.kv_lora_rank, Dr = p.mla.rope_dim, Dn = p.mla.nope_dim;
  const int64_t Hi = p.dsa.index_heads, Di = p.dsa.index_head_dim;
  Inputs in;
  in.set("q", random_normal({s.batch, s.heads, s.q_len, Dn + Dr}, rng));
  in.set("c_kv", random_normal({s.batch, s.kv_len, Dc}, rng));
  in.set("k_rope", random_normal({s.batch, s.kv_len, Dr}, rng));
  in.set("w_uk", random_normal({s.heads, Dn, Dc}, rng, 1.0 / std::sqrt(double(Dn))));
  in.set("w_uv", random_normal({s.heads, s.v_head_dim, Dc}, rng, 1.0 / std::sqrt(double(Dc))));
  in.set("q_idx", random_normal({s.batch, Hi, s.q_len, Di}, rng));
  in.set("k_idx", random_normal({s.batch, s.kv_len, Di}, rng));
  in.set("w_idx", random_normal({s.batch, s.q_len, Hi}, rng, 1.0 / std::sqrt(double(Hi))));
  return in;
}

// --- e4m3 from its bit layout ----------------------------------------------------------------

// Value of an e4m3fn code (1 sign, 4 exponent bits with bias 7, 3 mantissa bits); NaN for the two
// NaN codes (exponent and mantissa all ones).
double e4m3_value(int code) {
  const int sign = code >> 7, exponent = (code >> 3) & 15, mantissa = code & 7;
  if (exponent == 15 && mantissa == 7) return std::nan("");
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return sign ? -magnitude : magnitude;
}

// Non-negative finite e4m3 values with their codes, ascending.
std::vector<std::pair<double, int>> e4m3_table() {
  std::vector<std::pair<double, int>> t;
  for (int code = 0; code < 128; ++code) {
    if (!std::isnan(e4m3_value(code))) t.push_back({e4m3_value(code), code});
  }
  std::sort(t.begin(), t.end());
  return t;
}

// Nearest table value, ties to the even code, saturating at 448: the oracle's e4m3 rounding.
double table_round(double x) {
  static const std::vector<std::pair<double, int>> table = e4m3_table();
  const double a = std::fabs(x);
  double best = table.back().first;
  if (a < table.back().first) {
    auto hi = std::lower_bound(table.begin(), table.end(), std::make_pair(a, -1));
    auto lo = hi == table.begin() ? hi : hi - 1;
    const double dl = a - lo->first, dh = hi->first - a;
    best = dl < dh ? lo->first : dh < dl ? hi->first : (lo->second % 2 == 0 ? lo : hi)->first;
  }
  return std::copysign(best, x);
}

// DeepSeek's act_quant with power-of-two scales, from the spec: per 128 values amax (>= 1e-4),
// scale = 2^ceil(log2(amax / 448)), x = round(x / scale) * scale.
Tensor table_fake_quantize(const Tensor& t, int64_t width) {
  Tensor out = t;
  const int64_t rows = t.numel() / width;
  for (int64_t r = 0; r < rows; ++r) {
    float* x = out.data() + r * width;
    for (int64_t b0 = 0; b0 < width; b0 += 128) {
      const int64_t b1 = std::min(width, b0 + 128);
      float amax = 1e-4f;
      for (int64_t k = b0; k < b1; ++k) amax = std::max(amax, std::fabs(x[k]));
      const double scale = std::exp2(std::ceil(std::log2(double(amax / 448.0f))));
      for (int64_t k = b0; k < b1; ++k) x[k] = float(table_round(double(x[k]) / scale) * scale);
    }
  }
  return out;
}

// --- The float64 oracle --------------------------------------------------------------------------

struct Want {
  DTensor o, lse;   // [B, H, Lq, Dv], [B, H, Lq]
  IndexTensor sel;  // [B, Lq, top_k]
  DTensor P;        // [B, H, Lq, Lk]: probabilities, 0 outside the selection
  DTensor index;    // [B, Lq, Lk]: I, -inf for keys after the query
};

Want dsa_oracle(const AttentionProblem& p, const Inputs& in) {
  const int64_t B = p.shape.batch, H = p.shape.heads, Lq = p.shape.q_len, Lk = p.shape.kv_len;
  const int64_t Dc = p.mla.kv_lora_rank, Dr = p.mla.rope_dim, Dn = p.mla.nope_dim;
  const int64_t Dv = p.shape.v_head_dim, Hi = p.dsa.index_heads, Di = p.dsa.index_head_dim;
  const int64_t K = p.dsa.top_k;
  const DTensor q = to_double(in.at("q")), c_kv = to_double(in.at("c_kv"));
  const DTensor k_rope = to_double(in.at("k_rope")), w_uk = to_double(in.at("w_uk"));
  const DTensor w_uv = to_double(in.at("w_uv")), w_idx = to_double(in.at("w_idx"));
  const DTensor q_idx =
      to_double(p.dsa.index_fp8 ? table_fake_quantize(in.at("q_idx"), Di) : in.at("q_idx"));
  const DTensor k_idx =
      to_double(p.dsa.index_fp8 ? table_fake_quantize(in.at("k_idx"), Di) : in.at("k_idx"));
  const double scale = 1.0 / std::sqrt(double(Dn + Dr));
  Want w{DTensor({B, H, Lq, Dv}), DTensor({B, H, Lq}), IndexTensor({B, Lq, K}, -1),
         DTensor({B, H, Lq, Lk}), DTensor({B, Lq, Lk}, kNegInf)};
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < Lq; ++i) {
      const int64_t pos = i + Lk - Lq;
      for (int64_t s = 0; s <= pos && s < Lk; ++s) {
        double I = 0;
        for (int64_t j = 0; j < Hi; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < Di; ++e) dot += q_idx.at({b, j, i, e}) * k_idx.at({b, s, e});
          I += w_idx.at({b, i, j}) * std::max(dot, 0.0);
        }
        w.index.at({b, i, s}) = I / std::sqrt(double(Di));
      }
      std::vector<int64_t> order;
      for (int64_t s = 0; s <= pos && s < Lk; ++s) order.push_back(s);
      std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
        const double ix = w.index.at({b, i, x}), iy = w.index.at({b, i, y});
        return ix > iy || (ix == iy && x < y);
      });
      order.resize(std::min<size_t>(order.size(), size_t(K)));
      std::sort(order.begin(), order.end());
      for (size_t t = 0; t < order.size(); ++t)
        w.sel.data()[(b * Lq + i) * K + t] = int32_t(order[t]);
      for (int64_t h = 0; h < H; ++h) {
        if (order.empty()) {
          w.lse.at({b, h, i}) = kNegInf;
          continue;
        }
        std::vector<double> qt(size_t(Dc), 0.0), x(size_t(Dc), 0.0);
        for (int64_t c = 0; c < Dc; ++c) {
          for (int64_t n = 0; n < Dn; ++n) qt[c] += q.at({b, h, i, n}) * w_uk.at({h, n, c});
        }
        std::vector<double> s(size_t(Lk), kNegInf);  // the full row, -inf off the selection
        double m = kNegInf;
        for (int64_t t : order) {
          double dot = 0;
          for (int64_t c = 0; c < Dc; ++c) dot += qt[c] * c_kv.at({b, t, c});
          for (int64_t r = 0; r < Dr; ++r) dot += q.at({b, h, i, Dn + r}) * k_rope.at({b, t, r});
          s[t] = dot * scale;
          m = std::max(m, s[t]);
        }
        double sum = 0;
        for (int64_t t = 0; t < Lk; ++t) sum += s[t] == kNegInf ? 0.0 : std::exp(s[t] - m);
        const double lse = m + std::log(sum);
        w.lse.at({b, h, i}) = lse;
        for (int64_t t = 0; t < Lk; ++t) {
          const double prob = s[t] == kNegInf ? 0.0 : std::exp(s[t] - lse);
          w.P.at({b, h, i, t}) = prob;
          for (int64_t c = 0; c < Dc; ++c) x[c] += prob * c_kv.at({b, t, c});
        }
        for (int64_t e = 0; e < Dv; ++e) {
          double acc = 0;
          for (int64_t c = 0; c < Dc; ++c) acc += w_uv.at({h, e, c}) * x[c];
          w.o.at({b, h, i, e}) = acc;
        }
      }
    }
  }
  return w;
}

std::string describe(const DsaCase& c) {
  std::ostringstream s;
  s << "B=" << c.B << " H=" << c.H << " Lq=" << c.Lq << " Lk=" << c.Lk << " Dc=" << c.Dc
    << " Dr=" << c.Dr << " Dn=" << c.Dn << " Dv=" << c.Dv << " Hi=" << c.Hi << " Di=" << c.Di
    << " top_k=" << c.top_k << (c.fp8 ? " fp8" : "");
  return s.str();
}

const IndexTensor& selection_of(const RunResult& r) {
  return r.extra_index.at("selection");
}

// Both backends against the oracle: selection exactly, o and lse under the project's tolerance.
void check_case(const DsaCase& c, uint64_t seed) {
  SCOPED_TRACE(describe(c) + " seed=" + std::to_string(seed));
  const AttentionProblem p = make_problem(c);
  const Inputs in = make_dsa_inputs(p, seed);
  const Want want = dsa_oracle(p, in);
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    const RunResult r = make_backend(name)->run(p, in, {}, {});
    EXPECT_FALSE(r.selection.has_value());  // MoBA's [B, H, Lq, top_k] layout stays unused
    ASSERT_TRUE(r.extra_index.count("selection"));
    EXPECT_TRUE(same_indices("selection", selection_of(r), want.sel));
    EXPECT_TRUE(all_close("o", r.o, want.o));
    EXPECT_TRUE(all_close("lse", r.lse, want.lse));
  }
}

DsaCase random_case(Rng& rng, int64_t Lq, int64_t Lk, bool fp8) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return lo + int64_t(rng.uniform() * double(hi - lo + 1));
  };
  DsaCase c;
  c.B = 2, c.H = pick(1, 8), c.Dc = pick(8, 32), c.Dr = pick(0, 8), c.Dn = pick(4, 16);
  c.Dv = pick(4, 16), c.Hi = pick(1, 4), c.Di = pick(4, 16);
  c.Lq = Lq, c.Lk = Lk, c.top_k = pick(1, std::max(Lq, Lk) + 3), c.fp8 = fp8;
  return c;
}

}  // namespace

// --- FP8 ---------------------------------------------------------------------------------------

TEST(DsaFp8, EveryCodeRoundsToItself) {
  int finite = 0;
  for (int code = 0; code < 256; ++code) {
    const double v = e4m3_value(code);
    if (std::isnan(v)) continue;
    ++finite;
    EXPECT_EQ(double(dsa::round_e4m3(float(v))), v) << "code " << code;
  }
  EXPECT_EQ(finite, 254);
  EXPECT_EQ(e4m3_table().back().first, 448.0);
  EXPECT_EQ(e4m3_table()[1].first, std::ldexp(1.0, -9));  // smallest subnormal
}

TEST(DsaFp8, MidpointsRoundToEvenAndNeighboursToNearest) {
  const auto table = e4m3_table();
  for (size_t k = 0; k + 1 < table.size(); ++k) {
    const auto [lo, lo_code] = table[k];
    const auto [hi, hi_code] = table[k + 1];
    const float mid = float((lo + hi) / 2);  // exact: both have at most 4 significant bits
    ASSERT_EQ(double(mid), (lo + hi) / 2);
    const double even = lo_code % 2 == 0 ? lo : hi;
    EXPECT_EQ(double(dsa::round_e4m3(mid)), even) << "between " << lo << " and " << hi;
    EXPECT_EQ(double(dsa::round_e4m3(-mid)), -even) << "between " << -lo << " and " << -hi;
    EXPECT_EQ(double(dsa::round_e4m3(std::nextafter(mid, 0.0f))), lo);
    EXPECT_EQ(double(dsa::round_e4m3(std::nextafter(mid, 1e9f))), hi);
  }
  // Random magnitudes across the whole range against the table's nearest value.
  Rng rng(7);
  for (int t = 0; t < 20000; ++t) {
    const float x = float((rng.uniform() - 0.5) * std::exp2(rng.uniform() * 22 - 12));
    ASSERT_EQ(double(dsa::round_e4m3(x)), table_round(x)) << x;
  }
}

TEST(DsaFp8, SaturatesAtTheLargestFiniteValue) {
  for (float x : {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, 3e38f}) {
    EXPECT_EQ(dsa::round_e4m3(x), 448.0f) << x;
    EXPECT_EQ(dsa::round_e4m3(-x), -448.0f) << x;
  }
  EXPECT_EQ(dsa::round_e4m3(447.0f), 448.0f);
  EXPECT_EQ(dsa::round_e4m3(415.0f), 416.0f);
  EXPECT_EQ(dsa::round_e4m3(0.0f), 0.0f);
  EXPECT_EQ(dsa::round_e4m3(std::ldexp(1.0f, -10)), 0.0f);  // half the smallest subnormal: even
}

TEST(DsaFp8, FakeQuantizeHandExample) {
  // One row of 130: a block of 128 (amax 1000 -> scale 2^ceil(log2(1000/448)) = 4) and a block of
  // 2 (amax 1e-3 -> scale 2^-18); then a row of zeros (amax clamped to 1e-4: stays zero).
  std::vector<float> x(260, 0.0f);
  x[0] = 1.0f, x[1] = -3.3f, x[2] = 1000.0f, x[3] = 4.25f, x[4] = 4.75f, x[5] = 0.3f;
  x[128] = 1e-3f, x[129] = -2e-4f;
  dsa::fake_quantize_e4m3(x.data(), 2, 130);
  EXPECT_EQ(x[0], 1.0f);     // 0.25 exactly
  EXPECT_EQ(x[1], -3.25f);   // -0.825 -> -0.8125 (spacing 1/16 in [0.5, 1))
  EXPECT_EQ(x[2], 1024.0f);  // 250 -> 256 (spacing 16 in [128, 256))
  EXPECT_EQ(x[3], 4.0f);     // 1.0625: midway between 1 and 1.125, even mantissa 1.0
  EXPECT_EQ(x[4], 5.0f);     // 1.1875: midway between 1.125 and 1.25, even mantissa 1.25
  EXPECT_EQ(x[5], 0.3125f);  // 0.075 -> 0.078125 (spacing 1/128 in [2^-4, 2^-3))
  EXPECT_EQ(x[128], std::ldexp(1.0f, -10));    // 262.144 -> 256 (spacing 32), times 2^-18
  EXPECT_EQ(x[129], -std::ldexp(52.0f, -18));  // -52.4288 -> -52 (spacing 4 in [32, 64))
  for (int k = 6; k < 128; ++k) EXPECT_EQ(x[k], 0.0f);
  for (int k = 130; k < 260; ++k) EXPECT_EQ(x[k], 0.0f);
  // The table oracle agrees on random data too.
  Rng rng(3);
  const Tensor t = random_normal({7, 300}, rng, 5.0);
  Tensor got = t;
  dsa::fake_quantize_e4m3(got.data(), 7, 300);
  const Tensor want = table_fake_quantize(t, 300);
  for (int64_t k = 0; k < t.numel(); ++k) ASSERT_EQ(got.data()[k], want.data()[k]) << k;
}

// --- Backends against the oracle -----------------------------------------------------------------

TEST(DsaOracle, BothBackendsOnRandomShapes) {
  Rng rng(20250601);
  struct Len {
    int64_t Lq, Lk;
  };
  // Lq < Lk (a suffix of the keys), Lq = 1 (decode), Lq > Lk (leading rows see nothing), Lq = Lk.
  const std::vector<Len> lens = {{7, 19}, {1, 23}, {1, 1}, {21, 9}, {16, 16}, {12, 30}};
  uint64_t seed = 100;
  for (bool fp8 : {false, true}) {
    for (const Len& l : lens) {
      for (int rep = 0; rep < 4; ++rep) check_case(random_case(rng, l.Lq, l.Lk, fp8), seed++);
    }
  }
}

TEST(DsaOracle, ManyExactZeroTiesBreakToTheLowerKey) {
  // One index head: half the keys score exactly 0 (ReLU), so cuts land inside runs of ties; a
  // negative head weight ranks every positive dot product below the zeros.
  for (bool fp8 : {false, true}) {
    for (uint64_t seed : {1, 2, 3}) {
      DsaCase c;
      c.Hi = 1, c.Lq = 20, c.Lk = 40, c.top_k = 13, c.fp8 = fp8;
      check_case(c, seed);
    }
  }
}

TEST(DsaOracle, IndexScoresBeyondFp32RangeStillSelectLikeTheOracle) {
  // Finite index tensors near 1e18 pass every input check, but their fp32 dot products overflow:
  // the fast paths must rank such rows in float64 (they once read past an empty buffer here),
  // in the full run and in decode alike.
  for (double sign : {1.0, -1.0}) {
    DsaCase c;
    c.B = 1, c.Lq = 40, c.Lk = 40, c.top_k = 8;
    const AttentionProblem p = make_problem(c);
    Inputs in = make_dsa_inputs(p, 17);
    Rng rng(5);
    for (const char* name : {"q_idx", "k_idx"}) {
      Tensor t = in.at(name);
      for (float& x : t.span()) x = float(sign * (std::fabs(rng.normal()) + 1.0) * 1e18);
      in.set(name, t);
    }
    Tensor w = in.at("w_idx");
    for (float& x : w.span()) x = float((std::fabs(rng.normal()) + 1.0) * 1e10);
    in.set("w_idx", w);
    const Want want = dsa_oracle(p, in);
    for (const char* backend : {"reference", "cpu"}) {
      SCOPED_TRACE(std::string(backend) + (sign > 0 ? " positive" : " negative"));
      const RunResult r = make_backend(backend)->run(p, in, {}, {});
      EXPECT_TRUE(same_indices("selection", selection_of(r), want.sel));
      EXPECT_TRUE(all_close("o", r.o, want.o));
    }
    // Decode: the last row through the paged cache, from a prefill of the first Lk - 1 tokens.
    auto cpu = make_backend("cpu");
    PagedKvCache cache(KvCacheConfig{p, 0, 0});
    AttentionProblem prompt = p;
    prompt.shape.q_len = prompt.shape.kv_len = c.Lk - 1;
    Inputs head, step;
    for (const auto& [name, t] : in.tensors) {
      const int axis = token_axis(VariantId::dsa, name);
      if (axis < 0) {
        head.set(name, t);
        step.set(name, t);
      } else {
        head.set(name, slice_axis(t, axis, 0, c.Lk - 1));
        step.set(name, slice_axis(t, axis, c.Lk - 1, c.Lk));
      }
    }
    const PrefillResult pre = prefill(*cpu, cache, prompt, head);
    const RunResult last = decode_step(*cpu, cache, DecodeStep{{pre.sequence}, step});
    const IndexTensor& got = last.extra_index.at("selection");
    for (int64_t t = 0; t < c.top_k; ++t) {
      EXPECT_EQ(got.data()[t], want.sel.data()[(c.Lq - 1) * c.top_k + t]) << t;
    }
  }
}

TEST(DsaOracle, LongKeysExerciseTheRunningTopK) {
  // More keys than the cpu path's candidate buffer and key tile: its pruning and tile edges.
  Rng rng(99);
  uint64_t seed = 500;
  for (int64_t Hi : {1, 3}) {
    DsaCase c;
    c.B = 2, c.H = 2, c.Dc = 8, c.Dr = 2, c.Dn = 4, c.Dv = 4, c.Di = 8, c.Hi = Hi;
    c.Lq = 6, c.Lk = 2600, c.top_k = Hi == 1 ? 300 : 17;
    check_case(c, seed++);
  }
}

TEST(DsaOracle, CutInsideALongRunOfZeroScores) {
  // One index head and top_k above the count of positive scores: the cut lies among ~1300 exact
  // zeros, which the cpu path must keep through its pruning and order by key.
  DsaCase c;
  c.B = 2, c.H = 2, c.Dc = 8, c.Dr = 2, c.Dn = 4, c.Dv = 4, c.Di = 8, c.Hi = 1;
  c.Lq = 4, c.Lk = 2600, c.top_k = 1500;
  check_case(c, 41);
}

TEST(DsaOracle, DuplicatedIndexKeysTieToTheLowerKey) {
  // Every index key repeats one of 7 rows: exact ties at every level, across key tiles.
  for (bool fp8 : {false, true}) {
    DsaCase c;
    c.B = 2, c.H = 3, c.Hi = 3, c.Di = 8, c.Lq = 8, c.Lk = 700, c.top_k = 150, c.fp8 = fp8;
    SCOPED_TRACE(describe(c));
    const AttentionProblem p = make_problem(c);
    Inputs in = make_dsa_inputs(p, 61);
    Tensor k_idx = in.at("k_idx");
    for (int64_t b = 0; b < c.B; ++b) {
      for (int64_t s = 7; s < c.Lk; ++s) {
        std::copy_n(k_idx.data() + (b * c.Lk + s % 7) * c.Di, c.Di,
                    k_idx.data() + (b * c.Lk + s) * c.Di);
      }
    }
    in.set("k_idx", k_idx);
    const Want want = dsa_oracle(p, in);
    for (const char* name : {"reference", "cpu"}) {
      const RunResult r = make_backend(name)->run(p, in, {}, {});
      EXPECT_TRUE(same_indices("selection", selection_of(r), want.sel)) << name;
      EXPECT_TRUE(all_close("o", r.o, want.o)) << name;
      EXPECT_TRUE(all_close("lse", r.lse, want.lse)) << name;
    }
  }
}

// --- Invariants ----------------------------------------------------------------------------------

TEST(DsaInvariants, TopKCoveringEveryKeyIsCausalMla) {
  Rng rng(5);
  for (auto [Lq, Lk] : {std::pair<int64_t, int64_t>{11, 11}, {5, 17}, {14, 6}}) {
    DsaCase c = random_case(rng, Lq, Lk, false);
    c.top_k = Lk + int64_t(rng.uniform() * 3);
    SCOPED_TRACE(describe(c));
    const AttentionProblem p = make_problem(c);
    const Inputs in = make_dsa_inputs(p, 77);
    AttentionProblem mla = AttentionProblem::defaults(VariantId::mla);
    mla.causal = true;
    mla.shape = p.shape;
    mla.mla = p.mla;
    Inputs mla_in;
    for (const char* name : {"q", "c_kv", "k_rope", "w_uk", "w_uv"}) mla_in.set(name, in.at(name));
    const RunResult want = make_backend("reference")->run(mla, mla_in, {}, {});
    for (const char* name : {"reference", "cpu"}) {
      SCOPED_TRACE(name);
      const RunResult r = make_backend(name)->run(p, in, {}, {});
      EXPECT_TRUE(all_close("o", r.o, want.o));
      EXPECT_TRUE(all_close("lse", r.lse, want.lse));
    }
  }
}

TEST(DsaInvariants, SelectionSizesAndOrder) {
  Rng rng(8);
  for (auto [Lq, Lk] : {std::pair<int64_t, int64_t>{13, 29}, {25, 10}, {1, 40}}) {
    for (int64_t top_k : {int64_t(1), int64_t(5), Lk, Lk + 2}) {
      DsaCase c = random_case(rng, Lq, Lk, false);
      c.top_k = top_k;
      SCOPED_TRACE(describe(c));
      const AttentionProblem p = make_problem(c);
      const Inputs in = make_dsa_inputs(p, 9);
      for (const char* name : {"reference", "cpu"}) {
        const RunResult r = make_backend(name)->run(p, in, {}, {});
        const IndexTensor& sel = selection_of(r);
        ASSERT_EQ(sel.shape(), (Shape{c.B, Lq, top_k}));
        for (int64_t b = 0; b < c.B; ++b) {
          for (int64_t i = 0; i < Lq; ++i) {
            const int64_t pos = i + Lk - Lq;
            const int64_t want = std::clamp<int64_t>(pos + 1, 0, top_k);
            const int32_t* row = sel.data() + (b * Lq + i) * top_k;
            for (int64_t t = 0; t < top_k; ++t) {
              if (t < want) {
                EXPECT_GE(row[t], 0) << name << " row " << i;
                EXPECT_LE(row[t], pos) << name << " row " << i;
                if (t > 0) {
                  EXPECT_LT(row[t - 1], row[t]) << name << " row " << i;
                }
              } else {
                EXPECT_EQ(row[t], -1) << name << " row " << i;
              }
            }
            if (pos < 0) {
              for (int64_t h = 0; h < c.H; ++h) {
                EXPECT_EQ(r.lse.data()[(b * c.H + h) * Lq + i],
                          -std::numeric_limits<float>::infinity());
                for (int64_t e = 0; e < c.Dv; ++e) {
                  EXPECT_EQ(r.o.data()[((b * c.H + h) * Lq + i) * c.Dv + e], 0.0f);
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST(DsaMap, TileIsTheOracleProbabilityOnTheSelection) {
  Rng rng(12);
  for (auto [Lq, Lk] : {std::pair<int64_t, int64_t>{17, 17}, {9, 26}, {20, 8}}) {
    DsaCase c = random_case(rng, Lq, Lk, false);
    c.top_k = std::max<int64_t>(1, Lk / 3);
    SCOPED_TRACE(describe(c));
    const AttentionProblem p = make_problem(c);
    const Inputs in = make_dsa_inputs(p, 13);
    const Want want = dsa_oracle(p, in);
    const VariantInfo& info = variant_info(VariantId::dsa);
    for (const char* name : {"reference", "cpu"}) {
      SCOPED_TRACE(name);
      const RunResult r = make_backend(name)->run(p, in, {}, {});
      struct Region {
        int64_t i0, i1, j0, j1;
      };
      for (const Region& g : {Region{0, Lq, 0, Lk}, Region{Lq / 3, Lq, Lk / 4, Lk - Lk / 5}}) {
        for (int64_t b = 0; b < c.B; ++b) {
          for (int64_t h : {int64_t(0), c.H - 1}) {
            const int64_t rows = g.i1 - g.i0, cols = g.j1 - g.j0;
            Tensor got({rows, cols});
            info.map_tile(p, in, r, b, h, g.i0, g.i1, g.j0, g.j1, got.data());
            DTensor expect({rows, cols});
            for (int64_t i = 0; i < rows; ++i) {
              for (int64_t j = 0; j < cols; ++j) {
                expect.at({i, j}) = want.P.at({b, h, g.i0 + i, g.j0 + j});
              }
            }
            EXPECT_TRUE(all_close("map tile", got, expect)) << "b=" << b << " h=" << h;
          }
        }
      }
    }
  }
}

TEST(DsaMap, IndexScoreTileIsTheOracleIndexScore) {
  Rng rng(14);
  for (bool fp8 : {false, true}) {
    for (auto [Lq, Lk] : {std::pair<int64_t, int64_t>{15, 15}, {7, 23}, {19, 6}}) {
      const DsaCase c = random_case(rng, Lq, Lk, fp8);
      SCOPED_TRACE(describe(c));
      const AttentionProblem p = make_problem(c);
      const Inputs in = make_dsa_inputs(p, 15);
      const Want want = dsa_oracle(p, in);
      const int64_t i0 = Lq / 4, j0 = Lk / 3;
      for (int64_t b = 0; b < c.B; ++b) {
        Tensor got({Lq - i0, Lk - j0});
        index_score_tile(p, in, b, i0, Lq, j0, Lk, got.data());
        DTensor expect({Lq - i0, Lk - j0});
        for (int64_t i = i0; i < Lq; ++i) {
          for (int64_t s = j0; s < Lk; ++s) {
            const double v = want.index.at({b, i, s});
            const float g = got.data()[(i - i0) * (Lk - j0) + (s - j0)];
            if (v == kNegInf) {  // after the query: not eligible
              EXPECT_TRUE(std::isnan(g)) << "b=" << b << " i=" << i << " s=" << s;
              got.data()[(i - i0) * (Lk - j0) + (s - j0)] = 0.0f;
              expect.at({i - i0, s - j0}) = 0.0;
            } else {
              expect.at({i - i0, s - j0}) = v;
            }
          }
        }
        EXPECT_TRUE(all_close("index scores", got, expect)) << "b=" << b;
      }
    }
  }
  AttentionProblem mla = AttentionProblem::defaults(VariantId::mla);
  float x = 0;
  EXPECT_THROW(index_score_tile(mla, Inputs{}, 0, 0, 1, 0, 1, &x), Error);
}

// --- Bad inputs ----------------------------------------------------------------------------------

TEST(DsaErrors, MissingOrMismatchedIndexerInputs) {
  DsaCase c;
  const AttentionProblem p = make_problem(c);
  const Inputs good = make_dsa_inputs(p, 1);
  for (const char* name : {"reference", "cpu"}) {
    auto be = make_backend(name);
    Inputs missing = good;
    missing.tensors.erase("q_idx");
    try {
      be->run(p, missing, {}, {});
      ADD_FAILURE() << name << ": missing q_idx accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("q_idx"), std::string::npos) << e.what();
    }
    Inputs wide = good;  // k_idx with Di + 1 columns: q_idx and k_idx disagree on Di
    Rng rng(2);
    wide.set("k_idx", random_normal({c.B, c.Lk, c.Di + 1}, rng));
    EXPECT_THROW(be->run(p, wide, {}, {}), Error) << name;
    // infer_shape (the CLI's path from files) names the disagreement too.
    AttentionProblem inferred = AttentionProblem::defaults(VariantId::dsa);
    try {
      variant_info(VariantId::dsa).infer_shape(wide, inferred);
      ADD_FAILURE() << "mismatched Di accepted by infer_shape";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("k_idx"), std::string::npos) << e.what();
    }
  }
  AttentionProblem zero = p;
  zero.dsa.top_k = 0;
  ASSERT_TRUE(zero.validate().has_value());
  EXPECT_NE(zero.validate()->find("top_k must be at least 1"), std::string::npos)
      << *zero.validate();
  EXPECT_THROW(make_backend("cpu")->run(zero, good, {}, {}), Error);
}

// --- CLI -----------------------------------------------------------------------------------------

namespace {

struct CliResult {
  int code = -1;
  std::string err;
};

fs::path dsa_tmp() {
  const fs::path d = fs::path(ATTNSCOPE_TEST_TMP) / "dsa";
  fs::create_directories(d);
  return d;
}

CliResult run_cli(const std::string& args) {
  static int n = 0;
  const fs::path err =
      dsa_tmp() / ("stderr_" + std::to_string(getpid()) + "_" + std::to_string(n++) + ".txt");
  const std::string cmd = std::string(ATTNSCOPE_CLI_PATH) + " " + args + " >/dev/null 2>" +
                          err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream f(err);
  std::stringstream s;
  s << f.rdbuf();
  r.err = s.str();
  return r;
}

}  // namespace

TEST(DsaCli, RunFromFileWritesTheLibraryResult) {
  DsaCase c;
  c.B = 2, c.H = 3, c.Lq = 10, c.Lk = 14, c.Hi = 2, c.top_k = 5;
  const AttentionProblem p = make_problem(c);
  const Inputs in = make_dsa_inputs(p, 31);
  const fs::path in_file = dsa_tmp() / ("in_" + std::to_string(getpid()) + ".safetensors");
  io::save_safetensors(in_file.string(), in.tensors);
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    const fs::path out =
        dsa_tmp() / (std::string("out_") + name + "_" + std::to_string(getpid()) + ".safetensors");
    fs::remove(out);
    const CliResult r = run_cli("run --variant dsa --top-k 5 --backend " + std::string(name) +
                                " --inputs " + in_file.string() + " --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const TensorMap got = io::load_safetensors(out.string());
    const RunResult want = make_backend(name)->run(p, in, {}, {});
    EXPECT_TRUE(all_close("o", got.at("o"), want.o));
    EXPECT_TRUE(all_close("lse", got.at("lse"), want.lse));
    const Tensor& sel = got.at("selection");  // written as int64, read back as exact fp32
    const IndexTensor& ws = selection_of(want);
    ASSERT_EQ(sel.shape(), ws.shape());
    for (int64_t k = 0; k < sel.numel(); ++k) ASSERT_EQ(sel.data()[k], float(ws.data()[k])) << k;
  }
  // The file's q_idx has 2 index heads: a flag saying 3 contradicts it.
  const fs::path out = dsa_tmp() / ("contradicted_" + std::to_string(getpid()) + ".safetensors");
  fs::remove(out);
  const CliResult bad = run_cli("run --variant dsa --index-heads 3 --inputs " + in_file.string() +
                                " --out " + out.string());
  EXPECT_NE(bad.code, 0);
  EXPECT_LT(bad.code, 128) << "crashed";
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("--index-heads 3 contradicts"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(out));
}
