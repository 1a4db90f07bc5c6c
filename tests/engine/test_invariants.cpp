// Invariants on every backend: equivalent forms agree, special cases reduce to dense, split-KV
// merges exactly, masked rows are 0 / -inf without NaN, and bad input is rejected with an Error.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/error.hpp"
#include "attnscope/merge.hpp"
#include "attnscope/registry.hpp"
#include "oracle.hpp"

namespace attnscope_tests {
namespace {

using attnscope::CancelToken;
using attnscope::Probes;
using attnscope::RunResult;

constexpr float kFloatNegInf = -std::numeric_limits<float>::infinity();

std::vector<std::string> available_backends() {
  std::vector<std::string> names;
  for (const auto& info : attnscope::backends())
    if (info.available().ok) names.emplace_back(info.name);
  return names;
}

AttentionProblem make_problem(VariantId v, int64_t heads, int64_t kv_heads, int64_t q_len,
                              int64_t kv_len, int64_t dk, int64_t dv, bool causal) {
  AttentionProblem p = AttentionProblem::defaults(v);
  p.shape = {1, heads, kv_heads, q_len, kv_len, dk, dv};
  p.causal = causal;
  return p;
}

AttentionProblem swa(int64_t heads, int64_t kv_heads, int64_t q_len, int64_t kv_len, int64_t window,
                     int64_t sinks) {
  auto p = make_problem(VariantId::swa, heads, kv_heads, q_len, kv_len, 16, 12, true);
  p.swa.window = window;
  p.swa.sinks = sinks;
  return p;
}

AttentionProblem mla(int64_t heads, int64_t q_len, int64_t kv_len, bool causal, bool absorbed) {
  // Small dims with DeepSeek's structure: Dc = 24, Dn = 16, Dr = 8, Dv = 12.
  auto p = make_problem(VariantId::mla, heads, 1, q_len, kv_len, 16 + 8, 12, causal);
  p.mla.kv_lora_rank = 24;
  p.mla.nope_dim = 16;
  p.mla.rope_dim = 8;
  p.mla.absorbed = absorbed;
  return p;
}

AttentionProblem moba(int64_t heads, int64_t kv_heads, int64_t q_len, int64_t kv_len, int64_t block,
                      int64_t top_k) {
  auto p = make_problem(VariantId::moba, heads, kv_heads, q_len, kv_len, 16, 12, true);
  p.moba.block_size = block;
  p.moba.top_k = top_k;
  return p;
}

AttentionProblem gdn(int64_t heads, int64_t len, bool recurrent, int64_t chunk, bool l2norm) {
  auto p = make_problem(VariantId::gated_delta, heads, heads, len, len, 16, 24, true);
  p.gated_delta.recurrent = recurrent;
  p.gated_delta.chunk_size = chunk;
  p.gated_delta.qk_l2norm = l2norm;
  return p;
}

// The same problem as a dense causal one on the same q/k/v.
AttentionProblem as_causal_dense(const AttentionProblem& p) {
  AttentionProblem d = AttentionProblem::defaults(VariantId::dense);
  d.shape = p.shape;
  d.causal = true;
  d.scale = p.scale;
  return d;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class InvariantsBackend : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<attnscope::Backend> be_ = attnscope::make_backend(GetParam());

  // Empty when the backend supports every problem, else its reason (the test then skips).
  std::string unsupported(std::initializer_list<const AttentionProblem*> problems) const {
    for (const AttentionProblem* p : problems) {
      const auto s = be_->supports(*p);
      if (!s.ok) return describe_case(*p) + ": " + s.why_not;
    }
    return {};
  }
  RunResult run(const AttentionProblem& p, const Inputs& in) {
    return be_->run(p, in, Probes{}, CancelToken{});
  }
  // Any Error's message from run(), or "" when it did not throw one (the caller fails then).
  std::string run_error(const AttentionProblem& p, const Inputs& in) {
    try {
      run(p, in);
    } catch (const attnscope::Error& e) {
      return e.what()[0] ? e.what() : "(empty message)";
    }
    return {};
  }
};

#define SKIP_UNLESS_SUPPORTED(...) \
  if (const std::string why = unsupported({__VA_ARGS__}); !why.empty()) GTEST_SKIP() << why

// --- Equivalent forms ---------------------------------------------------------------------------

TEST_P(InvariantsBackend, MlaNaiveEqualsAbsorbed) {
  const std::pair<std::pair<int64_t, int64_t>, std::pair<int64_t, bool>> shapes[] = {
      {{8, 37}, {37, true}}, {{4, 1}, {129, true}}, {{4, 37}, {129, true}},
      {{2, 7}, {7, false}},  {{2, 20}, {9, true}},  {{1, 1}, {1, true}},
  };
  uint64_t seed = 100;
  for (const auto& [hq, lc] : shapes) {
    const auto naive = mla(hq.first, hq.second, lc.first, lc.second, false);
    const auto absorbed = mla(hq.first, hq.second, lc.first, lc.second, true);
    SKIP_UNLESS_SUPPORTED(&naive, &absorbed);
    SCOPED_TRACE(describe_case(absorbed) + " seed=" + std::to_string(seed));
    const Inputs in = random_inputs(naive, seed++);
    const RunResult a = run(naive, in), b = run(absorbed, in);
    EXPECT_TRUE(all_close("o absorbed vs naive", b.o, a.o));
    EXPECT_TRUE(all_close("lse absorbed vs naive", b.lse, a.lse));
  }
}

TEST_P(InvariantsBackend, GatedDeltaChunkedEqualsRecurrent) {
  uint64_t seed = 200;
  for (int64_t len : {1, 63, 64, 65, 150}) {
    for (bool l2 : {false, true}) {
      for (bool init : {false, true}) {
        const auto rec = gdn(2, len, true, 64, l2);
        const auto c64 = gdn(2, len, false, 64, l2);
        const auto c16 = gdn(2, len, false, 16, l2);
        SKIP_UNLESS_SUPPORTED(&rec, &c64, &c16);
        SCOPED_TRACE(describe_case(c64) + (init ? " initial_state" : "") +
                     " seed=" + std::to_string(seed));
        const Inputs in = random_inputs(rec, seed++, init);
        const RunResult r = run(rec, in), a = run(c64, in), b = run(c16, in);
        ASSERT_TRUE(r.final_state && a.final_state && b.final_state);
        EXPECT_TRUE(all_close("o chunk64 vs recurrent", a.o, r.o));
        EXPECT_TRUE(all_close("final_state chunk64 vs recurrent", *a.final_state, *r.final_state));
        EXPECT_TRUE(all_close("o chunk16 vs chunk64", b.o, a.o));
        EXPECT_TRUE(all_close("final_state chunk16 vs chunk64", *b.final_state, *a.final_state));
      }
    }
  }
}

// --- Special cases that reduce to causal dense ---------------------------------------------------

TEST_P(InvariantsBackend, MobaAllBlocksEqualsCausalDense) {
  struct C {
    int64_t hq, hkv, lq, lk, block, top_k;
  };
  const C cases[] = {{8, 2, 37, 37, 4, 10},
                     {8, 2, 37, 129, 16, 9},
                     {6, 3, 1, 129, 8, 20},
                     {8, 8, 64, 64, 16, 4},
                     {8, 1, 7, 7, 4, 2}};
  uint64_t seed = 300;
  for (const C& c : cases) {
    const auto pm = moba(c.hq, c.hkv, c.lq, c.lk, c.block, c.top_k);
    const auto pd = as_causal_dense(pm);
    SKIP_UNLESS_SUPPORTED(&pm, &pd);
    SCOPED_TRACE(describe_case(pm) + " seed=" + std::to_string(seed));
    const Inputs in = random_inputs(pm, seed++);
    const RunResult m = run(pm, in), d = run(pd, in);
    EXPECT_TRUE(all_close("o moba vs dense", m.o, d.o));
    EXPECT_TRUE(all_close("lse moba vs dense", m.lse, d.lse));
    // Every block up to the own one, ascending, then -1.
    ASSERT_TRUE(m.selection.has_value());
    IndexTensor expect({1, c.hq, c.lq, c.top_k}, -1);
    for (int64_t h = 0; h < c.hq; ++h)
      for (int64_t i = 0; i < c.lq; ++i)
        for (int64_t blk = 0; blk <= (i + c.lk - c.lq) / c.block; ++blk)
          expect.at({0, h, i, blk}) = static_cast<int32_t>(blk);
    EXPECT_TRUE(same_indices("selection", *m.selection, expect));
  }
}

TEST_P(InvariantsBackend, SwaWideWindowEqualsCausalDense) {
  struct C {
    int64_t lq, lk, window, sinks;
  };
  // Sinks inside a window that already covers everything change nothing either.
  const C cases[] = {{37, 37, 37, 0},  {37, 37, 1000, 0}, {7, 129, 129, 0},
                     {1, 129, 130, 0}, {129, 37, 37, 0},  {37, 37, 40, 4}};
  uint64_t seed = 400;
  for (const C& c : cases) {
    const auto ps = swa(8, 2, c.lq, c.lk, c.window, c.sinks);
    const auto pd = as_causal_dense(ps);
    SKIP_UNLESS_SUPPORTED(&ps, &pd);
    SCOPED_TRACE(describe_case(ps) + " seed=" + std::to_string(seed));
    const Inputs in = random_inputs(ps, seed++);
    const RunResult s = run(ps, in), d = run(pd, in);
    EXPECT_TRUE(all_close("o swa vs dense", s.o, d.o));
    EXPECT_TRUE(all_close("lse swa vs dense", s.lse, d.lse));
  }
}

TEST_P(InvariantsBackend, GqaEqualsMhaOnRepeatedKv) {
  std::vector<AttentionProblem> problems;
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{8, 4}, {8, 2}, {8, 1}, {6, 3}}) {
    problems.push_back(make_problem(VariantId::dense, hq, hkv, 23, 41, 16, 12, false));
    problems.push_back(make_problem(VariantId::dense, hq, hkv, 23, 41, 16, 12, true));
    problems.push_back(swa(hq, hkv, 41, 41, 5, 2));
    problems.push_back(moba(hq, hkv, 41, 41, 8, 3));
  }
  uint64_t seed = 500;
  for (const AttentionProblem& gqa : problems) {
    AttentionProblem mha = gqa;
    mha.shape.kv_heads = gqa.shape.heads;
    SKIP_UNLESS_SUPPORTED(&gqa, &mha);
    SCOPED_TRACE(describe_case(gqa) + " seed=" + std::to_string(seed));
    const Inputs in = random_inputs(gqa, seed++);
    const int64_t group = gqa.shape.heads / gqa.shape.kv_heads;
    Inputs rep;
    rep.set("q", in.at("q"));
    rep.set("k", repeat_interleave(in.at("k"), 1, group));
    rep.set("v", repeat_interleave(in.at("v"), 1, group));
    const RunResult a = run(gqa, in), b = run(mha, rep);
    EXPECT_TRUE(all_close("o gqa vs mha", a.o, b.o));
    EXPECT_TRUE(all_close("lse gqa vs mha", a.lse, b.lse));
    if (gqa.variant == VariantId::moba) {
      ASSERT_TRUE(a.selection && b.selection);
      EXPECT_TRUE(same_indices("selection gqa vs mha", *a.selection, *b.selection));
    }
  }
}

// --- Split-KV: attention over contiguous key chunks merged by log-sum-exp is the whole ---------

TEST_P(InvariantsBackend, SplitKvMergeEqualsUnsplit) {
  const std::vector<std::vector<int64_t>> splits = {{0, 50, 100}, {0, 17, 60, 100}, {0, 1, 100}};
  uint64_t seed = 600;
  for (int64_t lq : {13, 1}) {
    for (const auto& cuts : splits) {
      const auto whole = make_problem(VariantId::dense, 8, 2, lq, 100, 16, 12, false);
      SKIP_UNLESS_SUPPORTED(&whole);
      SCOPED_TRACE(describe_case(whole) + " chunks=" + std::to_string(cuts.size() - 1) +
                   " seed=" + std::to_string(seed));
      const Inputs in = random_inputs(whole, seed++);
      const RunResult full = run(whole, in);
      Tensor o_acc, lse_acc;
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        AttentionProblem part = whole;
        part.shape.kv_len = cuts[c + 1] - cuts[c];
        Inputs pin;
        pin.set("q", in.at("q"));
        pin.set("k", slice_dim(in.at("k"), 2, cuts[c], cuts[c + 1]));
        pin.set("v", slice_dim(in.at("v"), 2, cuts[c], cuts[c + 1]));
        RunResult r = run(part, pin);
        if (c == 0) {
          o_acc = std::move(r.o);
          lse_acc = std::move(r.lse);
        } else {
          attnscope::merge_partials(o_acc, lse_acc, r.o, r.lse);
        }
      }
      EXPECT_TRUE(all_close("o merged vs unsplit", o_acc, full.o));
      EXPECT_TRUE(all_close("lse merged vs unsplit", lse_acc, full.lse));
    }
  }
}

// --- Fully masked rows --------------------------------------------------------------------------

TEST_P(InvariantsBackend, FullyMaskedRowsAreZeroAndNegInf) {
  std::vector<AttentionProblem> problems = {
      make_problem(VariantId::dense, 8, 2, 9, 5, 16, 12, true),
      make_problem(VariantId::dense, 4, 4, 40, 1, 16, 12, true),
      swa(8, 4, 12, 5, 2, 1),
      swa(8, 8, 12, 5, 1, 0),
      mla(4, 9, 4, true, false),
      mla(4, 9, 4, true, true),
  };
  // MoBA with Lq > Lk (docs/variants/moba.md: accepted, rows with p < 0 select nothing), where the
  // problem validates.
  if (auto pm = moba(4, 2, 10, 6, 4, 2); !pm.validate()) problems.push_back(pm);
  uint64_t seed = 700;
  for (const AttentionProblem& p : problems) {
    SKIP_UNLESS_SUPPORTED(&p);
    SCOPED_TRACE(describe_case(p) + " seed=" + std::to_string(seed));
    const Inputs in = random_inputs(p, seed++);
    const RunResult r = run(p, in);
    EXPECT_TRUE(no_nan("o", r.o, false));
    EXPECT_TRUE(no_nan("lse", r.lse, true));
    const auto& s = p.shape;
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.q_len; ++i) {
        const bool masked = i + s.kv_len - s.q_len < 0;  // sits before the first key
        const float lse = r.lse.at({0, h, i});
        if (masked) {
          EXPECT_EQ(lse, kFloatNegInf) << "row " << i << " head " << h;
          for (int64_t e = 0; e < s.v_head_dim; ++e)
            EXPECT_EQ(r.o.at({0, h, i, e}), 0.0f) << "row " << i << " head " << h << " col " << e;
        } else {
          EXPECT_TRUE(std::isfinite(lse)) << "row " << i << " head " << h << " lse " << lse;
        }
      }
    }
    if (p.variant == VariantId::moba) {
      ASSERT_TRUE(r.selection.has_value());
      for (int64_t i = 0; i < s.q_len - s.kv_len; ++i)
        for (int64_t t = 0; t < p.moba.top_k; ++t)
          EXPECT_EQ(r.selection->at({0, 0, i, t}), -1) << "masked row " << i;
    }
  }
}

// --- Decode: one query against the whole cache is the prefill's last row -------------------------

TEST_P(InvariantsBackend, DecodeEqualsLastRowOfPrefill) {
  const std::vector<AttentionProblem> problems = {
      make_problem(VariantId::dense, 8, 2, 37, 37, 16, 12, true),
      make_problem(VariantId::dense, 6, 3, 129, 129, 16, 16, true),
      swa(8, 2, 37, 37, 5, 2),
      mla(4, 37, 37, true, false),
      mla(4, 37, 37, true, true),
      moba(8, 2, 37, 37, 4, 3),
  };
  uint64_t seed = 800;
  for (const AttentionProblem& prefill : problems) {
    AttentionProblem decode = prefill;
    decode.shape.q_len = 1;
    SKIP_UNLESS_SUPPORTED(&prefill, &decode);
    SCOPED_TRACE(describe_case(prefill) + " seed=" + std::to_string(seed));
    const Inputs in = random_inputs(prefill, seed++);
    Inputs din = in;
    const int64_t l = prefill.shape.q_len;
    din.set("q", slice_dim(in.at("q"), 2, l - 1, l));
    const RunResult full = run(prefill, in), one = run(decode, din);
    EXPECT_TRUE(all_close("o decode vs last prefill row", one.o, slice_dim(full.o, 2, l - 1, l)));
    EXPECT_TRUE(
        all_close("lse decode vs last prefill row", one.lse, slice_dim(full.lse, 2, l - 1, l)));
    if (prefill.variant == VariantId::moba) {
      ASSERT_TRUE(full.selection && one.selection);
      // Last row of the prefill selection, [B, H, 1, top_k].
      const auto& fs = *full.selection;
      IndexTensor last({1, prefill.shape.heads, 1, prefill.moba.top_k});
      for (int64_t h = 0; h < prefill.shape.heads; ++h)
        for (int64_t t = 0; t < prefill.moba.top_k; ++t)
          last.at({0, h, 0, t}) = fs.at({0, h, l - 1, t});
      EXPECT_TRUE(same_indices("selection decode vs prefill", *one.selection, last));
    }
  }
}

// --- Input validation through the backend --------------------------------------------------------

TEST_P(InvariantsBackend, RejectsNaNInQ) {
  const auto p = make_problem(VariantId::dense, 4, 2, 7, 9, 8, 8, true);
  Inputs in = random_inputs(p, 900);
  Tensor q = in.at("q");
  q.data()[q.numel() / 2] = std::numeric_limits<float>::quiet_NaN();
  in.set("q", q);
  const std::string msg = run_error(p, in);
  ASSERT_FALSE(msg.empty()) << "a NaN in q must make run() throw attnscope::Error";
  const std::string m = lower(msg);
  EXPECT_TRUE(m.find("nan") != std::string::npos || m.find("finite") != std::string::npos) << msg;
}

TEST_P(InvariantsBackend, RejectsWrongKShape) {
  const auto p = make_problem(VariantId::dense, 4, 2, 7, 9, 8, 8, true);
  Inputs in = random_inputs(p, 901);
  Rng rng(901);
  in.set("k", random_normal({1, 2, 10, 8}, rng));  // Lk 10 instead of 9
  const std::string msg = run_error(p, in);
  ASSERT_FALSE(msg.empty()) << "a k of the wrong shape must make run() throw attnscope::Error";
  EXPECT_TRUE(std::regex_search(msg, std::regex("(^|[^A-Za-z0-9_])k([^A-Za-z0-9_]|$)")))
      << "the message should name the tensor 'k': " << msg;
}

TEST_P(InvariantsBackend, RejectsInvalidProblems) {
  struct Bad {
    const char* what;
    AttentionProblem p;
  };
  std::vector<Bad> bad;
  {
    auto p = make_problem(VariantId::dense, 6, 4, 7, 7, 8, 8, true);
    bad.push_back({"heads not divisible by kv_heads", p});
  }
  {
    auto p = moba(4, 2, 16, 16, 4, 2);
    p.causal = false;
    bad.push_back({"MoBA non-causal", p});
  }
  {
    auto p = swa(4, 2, 16, 16, 0, 0);
    bad.push_back({"SWA window 0", p});
  }
  {
    auto p = moba(4, 2, 16, 16, 4, 0);
    bad.push_back({"MoBA top_k 0", p});
  }
  {
    auto p = moba(4, 2, 16, 16, 0, 2);
    bad.push_back({"MoBA block_size 0", p});
  }
  uint64_t seed = 910;
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    EXPECT_TRUE(b.p.validate().has_value()) << "validate() accepted it";
    // Inputs shaped like the problem says, so the only fault is the parameter itself. Shapes for
    // 6 heads over 4 kv heads are still well defined tensors.
    const Inputs in = random_inputs(b.p, seed++);
    EXPECT_FALSE(run_error(b.p, in).empty()) << "run() must throw attnscope::Error";
  }
}

INSTANTIATE_TEST_SUITE_P(Invariants, InvariantsBackend, ::testing::ValuesIn(available_backends()),
                         [](const auto& info) { return info.param; });

// --- Parameter checks without a backend ----------------------------------------------------------

TEST(InvariantsProblem, DefaultsAreValid) {
  for (VariantId v : {VariantId::dense, VariantId::swa, VariantId::mla, VariantId::moba,
                      VariantId::gated_delta}) {
    const auto p = AttentionProblem::defaults(v);
    EXPECT_FALSE(p.validate().has_value()) << describe_case(p) << ": " << *p.validate();
  }
}

TEST(InvariantsProblem, CheckThrowsError) {
  auto p = moba(4, 2, 16, 16, 4, 0);
  EXPECT_THROW(p.check(), attnscope::Error);
}

// --- merge_row / merge_partials on empty (-inf) parts
// ---------------------------------------------

TEST(InvariantsMerge, TwoEmptyPartsStayEmpty) {
  std::vector<float> acc(5, 0.0f);
  float lse = kFloatNegInf;
  const std::vector<float> part(5, 0.0f);
  attnscope::merge_row(acc, lse, part, kFloatNegInf);
  EXPECT_EQ(lse, kFloatNegInf);
  for (float x : acc) EXPECT_EQ(x, 0.0f);
}

TEST(InvariantsMerge, EmptyPartIsNeutral) {
  std::vector<float> acc = {1.0f, -2.0f, 3.5f};
  float lse = 0.75f;
  attnscope::merge_row(acc, lse, std::vector<float>(3, 0.0f), kFloatNegInf);
  EXPECT_EQ(lse, 0.75f);
  EXPECT_EQ(acc, (std::vector<float>{1.0f, -2.0f, 3.5f}));
}

TEST(InvariantsMerge, EmptyAccumulatorTakesThePart) {
  std::vector<float> acc(3, 0.0f);
  float lse = kFloatNegInf;
  const std::vector<float> part = {0.5f, 4.0f, -1.0f};
  attnscope::merge_row(acc, lse, part, 2.25f);
  EXPECT_EQ(lse, 2.25f);
  EXPECT_EQ(acc, part);
}

TEST(InvariantsMerge, TwoPartsMatchFloat64Formula) {
  std::vector<float> acc = {1.0f, -2.0f};
  float lse = 1.3f;
  const std::vector<float> part = {0.25f, 3.0f};
  const float lse_b = -0.4f;
  const double la = 1.3f, lb = -0.4f;
  const double l = std::log(std::exp(la) + std::exp(lb));
  const double want[2] = {std::exp(la - l) * 1.0 + std::exp(lb - l) * 0.25,
                          std::exp(la - l) * -2.0 + std::exp(lb - l) * 3.0};
  attnscope::merge_row(acc, lse, part, lse_b);
  EXPECT_NEAR(lse, l, kTol * (1 + std::abs(l)));
  for (int e = 0; e < 2; ++e) EXPECT_NEAR(acc[e], want[e], kTol * (1 + std::abs(want[e])));
}

TEST(InvariantsMerge, PartialsWithMaskedRowsHaveNoNaN) {
  // Row 0 empty on both sides, row 1 only in a, row 2 only in b, row 3 in both.
  Tensor o_a({1, 4, 2}, 0.0f), lse_a({1, 4}, kFloatNegInf);
  Tensor o_b({1, 4, 2}, 0.0f), lse_b({1, 4}, kFloatNegInf);
  lse_a.at({0, 1}) = 0.5f;
  o_a.at({0, 1, 0}) = 2.0f;
  lse_b.at({0, 2}) = -1.0f;
  o_b.at({0, 2, 1}) = 3.0f;
  lse_a.at({0, 3}) = 0.0f;
  lse_b.at({0, 3}) = 0.0f;
  o_a.at({0, 3, 0}) = 1.0f;
  o_b.at({0, 3, 0}) = 3.0f;
  attnscope::merge_partials(o_a, lse_a, o_b, lse_b);
  EXPECT_TRUE(no_nan("o", o_a, false));
  EXPECT_EQ(lse_a.at({0, 0}), kFloatNegInf);
  EXPECT_EQ(o_a.at({0, 0, 0}), 0.0f);
  EXPECT_EQ(o_a.at({0, 0, 1}), 0.0f);
  EXPECT_EQ(lse_a.at({0, 1}), 0.5f);
  EXPECT_EQ(o_a.at({0, 1, 0}), 2.0f);
  EXPECT_EQ(lse_a.at({0, 2}), -1.0f);
  EXPECT_EQ(o_a.at({0, 2, 1}), 3.0f);
  EXPECT_NEAR(lse_a.at({0, 3}), std::log(2.0), 1e-6);
  EXPECT_NEAR(o_a.at({0, 3, 0}), 2.0, 1e-6);
}

}  // namespace
}  // namespace attnscope_tests
