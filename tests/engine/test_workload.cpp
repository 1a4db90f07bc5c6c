// Tests of the seeded workloads: exact tensor names and shapes per variant, determinism, gate
// ranges, and that each planted pattern is really there, checked from raw q·k with plain loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/workload.hpp"

namespace attnscope {
namespace {

const VariantId kAllVariants[] = {VariantId::dense, VariantId::swa,         VariantId::moba,
                                  VariantId::mla,   VariantId::gated_delta, VariantId::nsa,
                                  VariantId::dsa};

std::string variant_label(VariantId v) {
  switch (v) {
    case VariantId::dense:
      return "dense";
    case VariantId::swa:
      return "swa";
    case VariantId::moba:
      return "moba";
    case VariantId::mla:
      return "mla";
    case VariantId::gated_delta:
      return "gated_delta";
    case VariantId::nsa:
      return "nsa";
    case VariantId::dsa:
      return "dsa";
  }
  return "?";
}

// Odd sizes everywhere so that no shape mix-up can hide behind a square.
AttentionProblem problem_of(VariantId v, int64_t q_len = 37, int64_t kv_len = 53,
                            int64_t rope_dim = 8) {
  AttentionProblem p;
  p.variant = v;
  p.causal = true;
  p.shape.batch = 2;
  p.shape.heads = 4;
  p.shape.kv_heads = 2;
  p.shape.q_len = q_len;
  p.shape.kv_len = kv_len;
  p.shape.head_dim = 16;
  p.shape.v_head_dim = 24;
  if (v == VariantId::dsa) p.dsa = {7, 3, 8, false};
  if (v == VariantId::mla || v == VariantId::dsa) {
    p.mla.absorbed = v == VariantId::dsa;
    p.mla.kv_lora_rank = 32;
    p.mla.rope_dim = rope_dim;
    p.mla.nope_dim = 16;
    p.shape.kv_heads = 1;
    p.shape.head_dim = p.mla.nope_dim + p.mla.rope_dim;
    p.shape.v_head_dim = 16;
  }
  if (v == VariantId::gated_delta) {
    p.shape.kv_heads = p.shape.heads;
    p.shape.kv_len = p.shape.q_len = kv_len;
  }
  return p;
}

std::map<std::string, Shape> expected_shapes(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  const int64_t B = s.batch, H = s.heads, Lq = s.q_len, Lk = s.kv_len;
  switch (p.variant) {
    case VariantId::dense:
    case VariantId::swa:
    case VariantId::moba:
      return {{"q", {B, H, Lq, s.head_dim}},
              {"k", {B, s.kv_heads, Lk, s.head_dim}},
              {"v", {B, s.kv_heads, Lk, s.v_head_dim}}};
    case VariantId::mla: {
      const int64_t Dc = p.mla.kv_lora_rank, Dr = p.mla.rope_dim, Dn = p.mla.nope_dim;
      return {{"q", {B, H, Lq, Dn + Dr}},
              {"c_kv", {B, Lk, Dc}},
              {"k_rope", {B, Lk, Dr}},
              {"w_uk", {H, Dn, Dc}},
              {"w_uv", {H, s.v_head_dim, Dc}}};
    }
    case VariantId::gated_delta:
      return {{"q", {B, H, Lq, s.head_dim}},
              {"k", {B, H, Lq, s.head_dim}},
              {"v", {B, H, Lq, s.v_head_dim}},
              {"g", {B, H, Lq}},
              {"beta", {B, H, Lq}}};
    case VariantId::nsa:
      return {{"q", {B, H, Lq, s.head_dim}},
              {"k", {B, s.kv_heads, Lk, s.head_dim}},
              {"v", {B, s.kv_heads, Lk, s.v_head_dim}},
              {"g_cmp", {B, H, Lq}},
              {"g_slc", {B, H, Lq}},
              {"g_swa", {B, H, Lq}}};
    case VariantId::dsa: {
      const int64_t Dc = p.mla.kv_lora_rank, Dr = p.mla.rope_dim, Dn = p.mla.nope_dim;
      const int64_t Hi = p.dsa.index_heads, Di = p.dsa.index_head_dim;
      return {{"q", {B, H, Lq, Dn + Dr}},      {"c_kv", {B, Lk, Dc}},
              {"k_rope", {B, Lk, Dr}},         {"w_uk", {H, Dn, Dc}},
              {"w_uv", {H, s.v_head_dim, Dc}}, {"q_idx", {B, Hi, Lq, Di}},
              {"k_idx", {B, Lk, Di}},          {"w_idx", {B, Lq, Hi}}};
    }
  }
  return {};
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.bytes())) == 0;
}

// Unscaled q·k of query row i against every key, for the dense layout (GQA mapping h / G) and for
// MLA's effective keys [w_uk_h c_t ; k_rope_t] (the naive form's keys).
class Scores {
 public:
  Scores(const AttentionProblem& p, const Inputs& in) : p_(p), in_(in) {}

  int64_t kv_len() const { return p_.shape.kv_len; }
  int64_t position(int64_t i) const { return i + p_.shape.kv_len - p_.shape.q_len; }
  double scale() const {
    const double d = p_.variant == VariantId::mla
                         ? static_cast<double>(p_.mla.nope_dim + p_.mla.rope_dim)
                         : static_cast<double>(p_.shape.head_dim);
    return 1.0 / std::sqrt(d);
  }
  // Effective key j of head h, batch b (for MLA: expanded through w_uk), cached per (b, h).
  const std::vector<double>& key(int64_t b, int64_t h, int64_t j) const {
    auto& keys = cache_[{b, h}];
    if (keys.empty()) {
      for (int64_t t = 0; t < kv_len(); ++t) keys.push_back(expand_key(b, h, t));
    }
    return keys[static_cast<size_t>(j)];
  }
  std::vector<double> query(int64_t b, int64_t h, int64_t i) const {
    const Tensor& q = in_.at("q");
    std::vector<double> out;
    for (int64_t d = 0; d < q.dim(3); ++d) out.push_back(q.at({b, h, i, d}));
    return out;
  }
  std::vector<double> row(int64_t b, int64_t h, int64_t i) const {
    const std::vector<double> q = query(b, h, i);
    std::vector<double> out;
    for (int64_t j = 0; j < kv_len(); ++j) out.push_back(dot(q, key(b, h, j)));
    return out;
  }
  static double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  }

 private:
  std::vector<double> expand_key(int64_t b, int64_t h, int64_t j) const {
    const ProblemShape& s = p_.shape;
    std::vector<double> k;
    if (p_.variant == VariantId::mla) {
      const int64_t Dc = p_.mla.kv_lora_rank, Dr = p_.mla.rope_dim, Dn = p_.mla.nope_dim;
      const Tensor& c = in_.at("c_kv");
      const Tensor& w = in_.at("w_uk");
      for (int64_t d = 0; d < Dn; ++d) {
        double a = 0;
        for (int64_t x = 0; x < Dc; ++x) a += double(w.at({h, d, x})) * c.at({b, j, x});
        k.push_back(a);
      }
      for (int64_t r = 0; r < Dr; ++r) k.push_back(in_.at("k_rope").at({b, j, r}));
    } else {
      const Tensor& kt = in_.at("k");
      const int64_t g = h / (s.heads / kt.dim(1));
      for (int64_t d = 0; d < s.head_dim; ++d) k.push_back(kt.at({b, g, j, d}));
    }
    return k;
  }

  const AttentionProblem& p_;
  const Inputs& in_;
  mutable std::map<std::pair<int64_t, int64_t>, std::vector<std::vector<double>>> cache_;
};

int64_t argmax_upto(const std::vector<double>& row, int64_t p) {
  return std::max_element(row.begin(), row.begin() + p + 1) - row.begin();
}

TEST(Workload, PatternsInDisplayOrder) {
  const std::vector<std::string> names = {"random", "local", "periodic", "sinks", "needle"};
  ASSERT_EQ(patterns().size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(patterns()[i].name, names[i]);
    EXPECT_FALSE(patterns()[i].summary.empty());
  }
}

TEST(Workload, EveryVariantAndPatternGivesExactlyTheListedTensors) {
  for (VariantId v : kAllVariants) {
    const AttentionProblem p = problem_of(v);
    const auto want = expected_shapes(p);
    for (const PatternInfo& pat : patterns()) {
      SCOPED_TRACE(variant_label(v) + " / " + std::string(pat.name));
      const Inputs in = make_inputs(p, pat.name, 7);
      ASSERT_EQ(in.tensors.size(), want.size());
      for (const auto& [name, shape] : want) {
        ASSERT_TRUE(in.has(name)) << name;
        EXPECT_EQ(in.at(name).shape(), shape) << name << ": " << shape_str(in.at(name).shape());
        EXPECT_EQ(first_non_finite(in.at(name)), -1) << name;
      }
    }
  }
}

// Lq > Lk (non-causal cross-attention shapes) puts early query rows at negative positions.
TEST(Workload, MoreQueriesThanKeysStillWork) {
  AttentionProblem p = problem_of(VariantId::dense, 60, 20);
  p.causal = false;
  for (const PatternInfo& pat : patterns()) {
    SCOPED_TRACE(std::string(pat.name));
    const Inputs in = make_inputs(p, pat.name, 8);
    EXPECT_EQ(in.at("q").shape(), (Shape{2, 4, 60, 16}));
    for (const auto& [name, t] : in.tensors) EXPECT_EQ(first_non_finite(t), -1) << name;
  }
}

TEST(Workload, SameSeedSameBitsOtherSeedOtherBits) {
  for (VariantId v : kAllVariants) {
    const AttentionProblem p = problem_of(v);
    for (const PatternInfo& pat : patterns()) {
      SCOPED_TRACE(variant_label(v) + " / " + std::string(pat.name));
      const Inputs a = make_inputs(p, pat.name, 1234);
      const Inputs b = make_inputs(p, pat.name, 1234);
      const Inputs c = make_inputs(p, pat.name, 1235);
      for (const auto& [name, t] : a.tensors) {
        EXPECT_TRUE(same_bits(t, b.at(name))) << name;
        EXPECT_FALSE(same_bits(t, c.at(name))) << name;
      }
    }
  }
}

// Golden values, recorded once: the generator uses no libm and no unspecified standard
// distribution, so these bits must come out on every compiler, library and CPU (checked with GCC
// and Clang at -O0 to -O3 -march=native). A change here means every saved seed now means
// something else.
TEST(Workload, GoldenValuesAreTheSameEverywhere) {
  AttentionProblem p = problem_of(VariantId::dense);
  Inputs in = make_inputs(p, "random", 42);
  EXPECT_EQ(in.at("q").at({1, 3, 36, 15}), -0x1.0bd644p-2f);
  EXPECT_EQ(in.at("k").at({0, 1, 52, 0}), -0x1.0f090ap-1f);
  EXPECT_EQ(in.at("v").at({1, 0, 0, 23}), -0x1.30045ap-1f);
  in = make_inputs(p, "local", 42);
  EXPECT_EQ(in.at("q").at({0, 2, 10, 3}), 0x1.9157ep-7f);
  EXPECT_EQ(in.at("k").at({1, 1, 40, 7}), 0x1.6803bp+0f);
  p = problem_of(VariantId::mla);
  in = make_inputs(p, "needle", 42);
  EXPECT_EQ(in.at("q").at({1, 2, 36, 20}), 0x1.af77ap+1f);
  EXPECT_EQ(in.at("c_kv").at({0, 5, 3}), 4.0f);  // the needle's latent
  EXPECT_EQ(in.at("k_rope").at({1, 5, 2}), 0x1.436608p+2f);
  EXPECT_EQ(in.at("w_uv").at({3, 15, 31}), 0x1.0482ccp-4f);
  p = problem_of(VariantId::gated_delta);
  in = make_inputs(p, "periodic", 42);
  EXPECT_EQ(in.at("g").at({1, 3, 52}), -0x1.ecfa7ep-4f);
  EXPECT_EQ(in.at("beta").at({0, 1, 7}), 0x1.480416p-2f);
  EXPECT_EQ(in.at("k").at({1, 2, 30, 5}), 0x1.559d3cp-4f);
}

TEST(Workload, RandomEntriesAreStandardNormal) {
  const Inputs in = make_inputs(problem_of(VariantId::dense, 300, 300), "random", 42);
  double s = 0, s2 = 0, s4 = 0;
  const Tensor& q = in.at("q");
  for (float x : q.span()) {
    s += x;
    s2 += double(x) * x;
    s4 += double(x) * x * x * x;
  }
  const double n = static_cast<double>(q.numel());
  EXPECT_NEAR(s / n, 0.0, 0.02);
  EXPECT_NEAR(s2 / n, 1.0, 0.03);
  EXPECT_NEAR(s4 / n, 3.0, 0.15);  // normal, not uniform or clipped
}

TEST(Workload, BatchEntriesAndHeadsDrawDifferentNumbers) {
  const Inputs in = make_inputs(problem_of(VariantId::dense), "local", 3);
  const Tensor& q = in.at("q");
  const Tensor& k = in.at("k");
  EXPECT_NE(q.at({0, 0, 5, 0}), q.at({1, 0, 5, 0}));
  EXPECT_NE(q.at({0, 0, 5, 0}), q.at({0, 1, 5, 0}));
  EXPECT_NE(k.at({0, 0, 5, 0}), k.at({0, 1, 5, 0}));
  EXPECT_NE(k.at({0, 0, 5, 0}), k.at({1, 0, 5, 0}));
}

// Patterns are laid out in absolute positions, so one decode step sees the same cache and the same
// query as the last row of the prefill.
TEST(Workload, DecodeStepMatchesLastPrefillRow) {
  for (VariantId v : {VariantId::dense, VariantId::moba, VariantId::mla}) {
    for (const PatternInfo& pat : patterns()) {
      SCOPED_TRACE(variant_label(v) + " / " + std::string(pat.name));
      const Inputs prefill = make_inputs(problem_of(v, 53, 53), pat.name, 9);
      const Inputs decode = make_inputs(problem_of(v, 1, 53), pat.name, 9);
      for (const auto& [name, t] : prefill.tensors) {
        if (name == "q") continue;
        EXPECT_TRUE(same_bits(t, decode.at(name))) << name;
      }
      const Tensor& qp = prefill.at("q");
      const Tensor& qd = decode.at("q");
      for (int64_t b = 0; b < qp.dim(0); ++b)
        for (int64_t h = 0; h < qp.dim(1); ++h)
          for (int64_t d = 0; d < qp.dim(3); ++d)
            ASSERT_EQ(qp.at({b, h, 52, d}), qd.at({b, h, 0, d})) << b << " " << h << " " << d;
    }
  }
}

TEST(Workload, GatedDeltaGatesAreInRange) {
  AttentionProblem p = problem_of(VariantId::gated_delta, 300, 300);
  for (const PatternInfo& pat : patterns()) {
    const Inputs in = make_inputs(p, pat.name, 5);
    int64_t slow = 0;
    for (float g : in.at("g").span()) {
      ASSERT_LE(g, 0.0f);
      const double keep = std::exp(double(g));
      slow += keep >= 0.9 && keep <= 0.999;
    }
    EXPECT_GE(slow, in.at("g").numel() * 8 / 10);
    for (float b : in.at("beta").span()) {
      ASSERT_GT(b, 0.0f);
      ASSERT_LT(b, 1.0f);
    }
  }
}

// Random inputs give logits of unit spread: neither uniform nor one-hot softmax.
TEST(Workload, RandomLogitsHaveUnitSpread) {
  for (VariantId v : {VariantId::dense, VariantId::mla}) {
    SCOPED_TRACE(variant_label(v));
    const AttentionProblem p = problem_of(v, 37, 53, 16);
    const Inputs in = make_inputs(p, "random", 11);
    const Scores sc(p, in);
    double s2 = 0;
    int64_t n = 0;
    for (int64_t h = 0; h < p.shape.heads; ++h) {
      for (int64_t i = 0; i < p.shape.q_len; ++i) {
        for (double x : sc.row(0, h, i)) {
          s2 += x * x * sc.scale() * sc.scale();
          ++n;
        }
      }
    }
    const double std_logit = std::sqrt(s2 / static_cast<double>(n));
    EXPECT_GT(std_logit, 0.7);
    EXPECT_LT(std_logit, 1.5);
  }
}

// Structure checks run on the softmax layouts: dense (GQA), MLA's effective keys, and on raw q·k of
// Gated DeltaNet where the pattern survives the per-row normalization.
std::vector<AttentionProblem> structure_problems(int64_t q_len, int64_t kv_len) {
  return {problem_of(VariantId::dense, q_len, kv_len),
          problem_of(VariantId::mla, q_len, kv_len, 16),
          problem_of(VariantId::gated_delta, kv_len, kv_len)};
}

TEST(Workload, LocalPeaksNearTheDiagonal) {
  for (const AttentionProblem& p : structure_problems(37, 53)) {
    SCOPED_TRACE(variant_label(p.variant));
    const Inputs in = make_inputs(p, "local", 21);
    const Scores sc(p, in);
    int64_t rows = 0, near = 0;
    for (int64_t b = 0; b < p.shape.batch; ++b) {
      for (int64_t h = 0; h < p.shape.heads; ++h) {
        for (int64_t i = 0; i < p.shape.q_len; ++i) {
          const int64_t pos = sc.position(i);
          if (pos < 8) continue;
          ++rows;
          near += pos - argmax_upto(sc.row(b, h, i), pos) <= 4;
        }
      }
    }
    EXPECT_GE(near, rows * 85 / 100) << near << " of " << rows;
  }
}

TEST(Workload, PeriodicAttendsRightAfterEarlierCopiesOfTheToken) {
  for (const AttentionProblem& p : structure_problems(37, 53)) {
    SCOPED_TRACE(variant_label(p.variant));
    const Inputs in = make_inputs(p, "periodic", 22);
    const Scores sc(p, in);
    const int64_t period = std::clamp<int64_t>(p.shape.kv_len / 8, 8, 64);
    int64_t rows = 0, hits = 0;
    for (int64_t b = 0; b < p.shape.batch; ++b) {
      for (int64_t h = 0; h < p.shape.heads; ++h) {
        for (int64_t i = 0; i < p.shape.q_len; ++i) {
          const int64_t pos = sc.position(i);
          if (pos < 2 * period) continue;
          ++rows;
          const int64_t j = argmax_upto(sc.row(b, h, i), pos);
          hits += (pos - j + 1) % period == 0;
        }
      }
    }
    EXPECT_GE(hits, rows * 9 / 10) << hits << " of " << rows;
  }
}

TEST(Workload, SinksTakeMostOfTheMassInLateRows) {
  for (const AttentionProblem& p : structure_problems(37, 53)) {
    if (p.variant == VariantId::gated_delta) continue;  // no softmax there
    SCOPED_TRACE(variant_label(p.variant));
    const Inputs in = make_inputs(p, "sinks", 23);
    const Scores sc(p, in);
    double mass = 0;
    int64_t rows = 0;
    for (int64_t b = 0; b < p.shape.batch; ++b) {
      for (int64_t h = 0; h < p.shape.heads; ++h) {
        for (int64_t i = 0; i < p.shape.q_len; ++i) {
          const int64_t pos = sc.position(i);
          if (pos < p.shape.kv_len / 2) continue;
          const std::vector<double> r = sc.row(b, h, i);
          const double mx = *std::max_element(r.begin(), r.begin() + pos + 1);
          double total = 0, sink = 0;
          for (int64_t j = 0; j <= pos; ++j) {
            const double e = std::exp((r[size_t(j)] - mx) * sc.scale());
            total += e;
            if (j < 4) sink += e;
          }
          mass += sink / total;
          ++rows;
        }
      }
    }
    EXPECT_GT(mass / static_cast<double>(rows), 0.5);
  }
}

// The needle must be found token by token and, for MoBA's router, block by block: its 64-key block
// mean must outscore every other complete past block for every seeking query.
TEST(Workload, NeedleWinsTokenAndBlockScoresForLateQueries) {
  for (const AttentionProblem& p : structure_problems(300, 1000)) {
    SCOPED_TRACE(variant_label(p.variant));
    const Inputs in = make_inputs(p, "needle", 24);
    const Scores sc(p, in);
    const int64_t Lk = p.shape.kv_len, n = Lk / 10, late = Lk - Lk / 4, block = 64;
    int64_t seekers = 0, early = 0, early_hits = 0;
    for (int64_t b = 0; b < p.shape.batch; ++b) {
      for (int64_t h = 0; h < p.shape.heads; ++h) {
        // Block means of the effective keys, for complete blocks.
        std::vector<std::vector<double>> means;
        for (int64_t c = 0; (c + 1) * block <= Lk; ++c) {
          std::vector<double> m;
          for (int64_t j = c * block; j < (c + 1) * block; ++j) {
            const std::vector<double> k = sc.key(b, h, j);
            if (m.empty()) m.assign(k.size(), 0.0);
            for (size_t d = 0; d < k.size(); ++d) m[d] += k[d] / block;
          }
          means.push_back(m);
        }
        for (int64_t i = 0; i < p.shape.q_len; ++i) {
          const int64_t pos = sc.position(i);
          const std::vector<double> r = sc.row(b, h, i);
          if (pos < late) {
            if (pos >= n) {
              ++early;
              early_hits += argmax_upto(r, pos) == n;
            }
            continue;
          }
          ++seekers;
          EXPECT_EQ(argmax_upto(r, pos), n) << "row " << pos;
          if (p.variant == VariantId::gated_delta) continue;  // no router there
          const std::vector<double> q = sc.query(b, h, i);
          const double needle_gate = Scores::dot(q, means[size_t(n / block)]);
          for (int64_t c = 0; c < pos / block; ++c) {
            if (c == n / block) continue;
            EXPECT_LT(Scores::dot(q, means[size_t(c)]), needle_gate)
                << "row " << pos << " block " << c;
          }
        }
      }
    }
    EXPECT_GT(seekers, 0);
    // Everyone else sees noise: the needle is no more than an occasional chance winner.
    EXPECT_LE(early_hits, early / 10 + 1) << early_hits << " of " << early;
  }
}

TEST(Workload, NeedleValueStandsOut) {
  const AttentionProblem p = problem_of(VariantId::dense, 53, 200);
  const Inputs in = make_inputs(p, "needle", 25);
  const Tensor& v = in.at("v");
  for (int64_t d = 0; d < v.dim(3); ++d) EXPECT_EQ(v.at({1, 1, 20, d}), 4.0f);
}

TEST(Workload, RejectsUnknownPatternsAndBadShapes) {
  const AttentionProblem p = problem_of(VariantId::dense);
  try {
    make_inputs(p, "stripes", 1);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("stripes"), std::string::npos) << what;
    EXPECT_NE(what.find("random, local, periodic, sinks, needle"), std::string::npos) << what;
  }
  AttentionProblem bad = p;
  bad.shape.heads = 0;
  EXPECT_THROW(make_inputs(bad, "random", 1), Error);
  bad = p;
  bad.shape.kv_len = -3;
  EXPECT_THROW(make_inputs(bad, "random", 1), Error);
  bad = p;
  bad.shape.heads = 3;  // not a multiple of kv_heads = 2
  EXPECT_THROW(make_inputs(bad, "random", 1), Error);
  bad = problem_of(VariantId::mla);
  bad.mla.rope_dim = 0;
  EXPECT_THROW(make_inputs(bad, "local", 1), Error);
  bad = problem_of(VariantId::gated_delta);
  bad.shape.q_len = 10;  // kv_len stays 53
  EXPECT_THROW(make_inputs(bad, "random", 1), Error);
}

}  // namespace
}  // namespace attnscope

namespace attnscope {
namespace {

// first_non_finite works on the floats' bits (one unsigned max per block): every kind of
// non-finite value, at a block's edges too, and the exact max |x| of a finite tensor.
TEST(TensorChecks, FirstNonFiniteFindsEveryKindAnywhereAndMaxAbsIsExact) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float bad_values[] = {nan, -nan, inf, -inf, std::numeric_limits<float>::signaling_NaN()};
  for (const int64_t n :
       {int64_t(1), int64_t(4095), int64_t(4096), int64_t(4097), int64_t(10000)}) {
    Tensor t({n});
    for (int64_t i = 0; i < n; ++i) t.data()[i] = float(std::sin(double(i))) * 3.0f;
    t.data()[n / 3] = -7.25f;  // the largest magnitude, negative
    EXPECT_EQ(first_non_finite(t), -1) << n;
    EXPECT_EQ(max_abs(t), 7.25f) << n;
    for (const int64_t at : {int64_t(0), n / 2, std::max<int64_t>(0, n - 4097), n - 1}) {
      for (const float bad : bad_values) {
        Tensor u({n});
        std::copy(t.data(), t.data() + n, u.data());
        u.data()[at] = bad;
        EXPECT_EQ(first_non_finite(u), at) << n << " " << at << " " << bad;
        EXPECT_EQ(max_abs(u), inf);
      }
    }
  }
  Tensor z({5000}, -0.0f);
  z.data()[4999] = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(first_non_finite(z), -1);
  EXPECT_EQ(max_abs(z), std::numeric_limits<float>::denorm_min());
  Tensor big({3}, -std::numeric_limits<float>::max());
  EXPECT_EQ(first_non_finite(big), -1);
  EXPECT_EQ(max_abs(big), std::numeric_limits<float>::max());
}

}  // namespace
}  // namespace attnscope
