// The attention-map probe against the full matrix built in the test itself, on small shapes:
// exact tiles, max/mean pooling, regions, and Gated DeltaNet's implicit attention (A·V == o).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

using namespace attnscope;

namespace {

Tensor randn(Shape shape, std::mt19937_64& rng, float scale = 1.0f) {
  Tensor t(std::move(shape));
  std::normal_distribution<float> n(0.0f, scale);
  for (float& x : t.span()) x = n(rng);
  return t;
}

Inputs random_inputs(const AttentionProblem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Inputs in;
  for (const TensorSpec& s : variant_info(p.variant).inputs(p)) {
    if (s.optional) continue;
    if (s.name == "g") {
      Tensor g = randn(s.shape, rng, 0.1f);
      for (float& x : g.span()) x = -std::fabs(x);
      in.set(s.name, std::move(g));
    } else if (s.name == "beta") {
      Tensor b = randn(s.shape, rng);
      for (float& x : b.span()) x = 1.0f / (1.0f + std::exp(-x));
      in.set(s.name, std::move(b));
    } else {
      in.set(s.name, randn(s.shape, rng, s.name.rfind("w_", 0) == 0 ? 0.2f : 1.0f));
    }
  }
  return in;
}

// The full map, one exact tile at a time (row by row, so every tile boundary is exercised).
Tensor full_map(const AttentionProblem& p, const Inputs& in, const RunResult& r, int64_t h) {
  Tensor full({p.shape.q_len, p.shape.kv_len});
  for (int64_t i = 0; i < p.shape.q_len; ++i) {
    attention_tile(p, in, r, 0, h, i, i + 1, 0, p.shape.kv_len, full.data() + i * p.shape.kv_len);
  }
  return full;
}

std::vector<AttentionProblem> cases() {
  std::vector<AttentionProblem> out;
  AttentionProblem d = AttentionProblem::defaults(VariantId::dense);
  d.shape = {1, 4, 2, 19, 23, 8, 6};
  out.push_back(d);
  d.causal = true;
  out.push_back(d);
  AttentionProblem s = AttentionProblem::defaults(VariantId::swa);
  s.shape = {1, 2, 1, 21, 21, 8, 8};
  s.swa = {5, 2};
  out.push_back(s);
  AttentionProblem m = AttentionProblem::defaults(VariantId::mla);
  m.shape = {1, 2, 1, 9, 17, 12, 6};
  m.mla = {16, 4, 8, false};
  m.causal = true;
  out.push_back(m);
  AttentionProblem b = AttentionProblem::defaults(VariantId::moba);
  b.shape = {1, 2, 2, 30, 30, 8, 8};
  b.moba = {4, 3};
  out.push_back(b);
  return out;
}

}  // namespace

TEST(Probes, SoftmaxMapRowsAreTheRowsOfP) {
  // Each row of P sums to 1 (or 0 when masked), and P·V reproduces o exactly.
  auto be = make_backend("reference");
  for (const AttentionProblem& p : cases()) {
    SCOPED_TRACE(p.describe());
    const Inputs in = random_inputs(p, 7);
    const RunResult r = be->run(p, in, {}, {});
    const int64_t Dv = p.shape.v_head_dim, Lk = p.shape.kv_len;
    for (int64_t h = 0; h < p.shape.heads; ++h) {
      const Tensor P = full_map(p, in, r, h);
      std::vector<double> pv(static_cast<size_t>(Dv));
      for (int64_t i = 0; i < p.shape.q_len; ++i) {
        double sum = 0;
        std::fill(pv.begin(), pv.end(), 0.0);
        for (int64_t j = 0; j < Lk; ++j) {
          const double w = P.data()[i * Lk + j];
          sum += w;
          if (p.variant == VariantId::mla) continue;
          const int64_t kvh = h / (p.shape.heads / p.shape.kv_heads);
          for (int64_t e = 0; e < Dv; ++e) pv[e] += w * in.at("v").data()[(kvh * Lk + j) * Dv + e];
        }
        EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << i;
        if (p.variant == VariantId::mla) continue;
        for (int64_t e = 0; e < Dv; ++e) {
          const double o = r.o.data()[(h * p.shape.q_len + i) * Dv + e];
          EXPECT_NEAR(pv[e], o, 1e-5 * (1 + std::fabs(o))) << "row " << i << " dim " << e;
        }
      }
    }
  }
}

TEST(Probes, PoolingMatchesTheFullMatrix) {
  auto be = make_backend("reference");
  for (const AttentionProblem& p : cases()) {
    SCOPED_TRACE(p.describe());
    const Inputs in = random_inputs(p, 11);
    const RunResult r = be->run(p, in, {}, {});
    const Tensor P = full_map(p, in, r, 1);
    const int64_t Lq = p.shape.q_len, Lk = p.shape.kv_len;
    for (Pool pool : {Pool::max, Pool::mean}) {
      MapRequest req;
      req.head = 1;
      req.row0 = 2, req.row1 = Lq - 1, req.col0 = 1, req.col1 = Lk;
      req.out_rows = 5, req.out_cols = 4;
      req.pool = pool;
      const Tensor M = attention_map(p, in, r, req);
      ASSERT_EQ(M.shape(), (Shape{5, 4}));
      const int64_t rows = req.row1 - req.row0, cols = req.col1 - req.col0;
      for (int64_t a = 0; a < 5; ++a) {
        for (int64_t c = 0; c < 4; ++c) {
          double best = -INFINITY, sum = 0;
          int64_t n = 0;
          for (int64_t i = req.row0; i < req.row1; ++i) {
            for (int64_t j = req.col0; j < req.col1; ++j) {
              if ((i - req.row0) * 5 / rows != a || (j - req.col0) * 4 / cols != c) continue;
              best = std::max<double>(best, P.data()[i * Lk + j]);
              sum += P.data()[i * Lk + j];
              ++n;
            }
          }
          const double want = pool == Pool::max ? best : sum / double(n);
          EXPECT_NEAR(M.at({a, c}), want, 1e-6) << "bin " << a << "," << c;
        }
      }
    }
  }
}

TEST(Probes, FullResolutionIsNeverUpsampled) {
  AttentionProblem p = cases()[0];
  const Inputs in = random_inputs(p, 3);
  const RunResult r = make_backend("reference")->run(p, in, {}, {});
  MapRequest req;
  req.out_rows = 1000;
  req.out_cols = 1000;
  const Tensor M = attention_map(p, in, r, req);
  EXPECT_EQ(M.shape(), (Shape{p.shape.q_len, p.shape.kv_len}));
  const Tensor P = full_map(p, in, r, 0);
  // Same entries; only fp32 rounding may differ (a 64-row tile's GEMM sums in another order).
  for (int64_t i = 0; i < M.numel(); ++i) EXPECT_NEAR(M.data()[i], P.data()[i], 1e-6);
}

TEST(Probes, MobaMapIsZeroOutsideTheSelectedBlocks) {
  AttentionProblem p = cases()[4];
  const Inputs in = random_inputs(p, 5);
  const RunResult r = make_backend("reference")->run(p, in, {}, {});
  const Tensor P = full_map(p, in, r, 0);
  const int64_t top_k = p.moba.top_k, B = p.moba.block_size;
  for (int64_t i = 0; i < p.shape.q_len; ++i) {
    const int32_t* sel = r.selection->data() + i * top_k;
    for (int64_t j = 0; j < p.shape.kv_len; ++j) {
      const bool chosen = std::find(sel, sel + top_k, int32_t(j / B)) != sel + top_k;
      if (!chosen || j > i) {
        EXPECT_EQ(P.data()[i * p.shape.kv_len + j], 0.0f) << i << "," << j;
      }
    }
  }
}

TEST(Probes, GatedDeltaImplicitAttentionReproducesTheOutput) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
  p.shape = {1, 2, 2, 37, 37, 8, 5};
  p.gated_delta.qk_l2norm = true;
  p.gated_delta.chunk_size = 16;
  const Inputs in = random_inputs(p, 13);
  const RunResult r = make_backend("reference")->run(p, in, {}, {});
  const int64_t L = p.shape.q_len, Dv = p.shape.v_head_dim;
  for (int64_t h = 0; h < 2; ++h) {
    const Tensor A = full_map(p, in, r, h);
    for (int64_t i = 0; i < L; ++i) {
      for (int64_t j = i + 1; j < L; ++j) EXPECT_EQ(A.data()[i * L + j], 0.0f);  // causal
      for (int64_t e = 0; e < Dv; ++e) {
        double acc = 0;
        for (int64_t j = 0; j <= i; ++j) {
          acc += double(A.data()[i * L + j]) * in.at("v").data()[(h * L + j) * Dv + e];
        }
        const double o = r.o.data()[(h * L + i) * Dv + e];
        EXPECT_NEAR(acc, o, 1e-5 * (1 + std::fabs(o))) << "row " << i << " dim " << e;
      }
    }
  }
}

TEST(Probes, BadRequestsAreErrors) {
  AttentionProblem p = cases()[0];
  const Inputs in = random_inputs(p, 3);
  const RunResult r = make_backend("reference")->run(p, in, {}, {});
  MapRequest req;
  req.head = 99;
  EXPECT_THROW(attention_map(p, in, r, req), Error);
  req.head = 0;
  req.row0 = 5;
  req.row1 = 3;
  EXPECT_THROW(attention_map(p, in, r, req), Error);
  RunResult stale = r;
  stale.lse = Tensor({1, 1, 1});
  EXPECT_THROW(attention_map(p, in, stale, MapRequest{}), Error);
}

// The Backend seam's map is the host probe for backends that do not override it (cpu, reference):
// the same values bit for bit, the same region resolution and the same Errors. CUDA's override is
// held to the host values in tests/cuda/test_cuda_map.cpp.
TEST(Probes, BackendAttentionMapIsTheHostProbe) {
  std::vector<AttentionProblem> problems = cases();
  AttentionProblem g = AttentionProblem::defaults(VariantId::gated_delta);
  g.shape = {1, 2, 2, 21, 21, 8, 5};
  g.gated_delta.chunk_size = 8;
  problems.push_back(g);
  for (const char* name : {"cpu", "reference"}) {
    auto be = make_backend(name);
    for (const AttentionProblem& p : problems) {
      SCOPED_TRACE(std::string(name) + ": " + p.describe());
      const Inputs in = random_inputs(p, 17);
      const RunResult r = be->run(p, in, {}, {});
      for (Pool pool : {Pool::max, Pool::mean}) {
        MapRequest req;
        req.head = 1;
        req.row0 = 1, req.row1 = p.shape.q_len - 2, req.col0 = 2;
        req.out_rows = 4, req.out_cols = 3;  // bins that do not divide the region
        req.pool = pool;
        const Tensor want = attention_map(p, in, r, req);
        const Tensor got = be->attention_map(p, in, r, req, {});
        ASSERT_EQ(got.shape(), want.shape());
        for (int64_t i = 0; i < got.numel(); ++i) EXPECT_EQ(got.data()[i], want.data()[i]) << i;
      }
      MapRequest bad;
      bad.head = p.shape.heads;
      EXPECT_THROW(be->attention_map(p, in, r, bad, {}), Error);
    }
  }
}

TEST(Probes, ResolveMapRegionFillsTheEndsAndClamps) {
  const AttentionProblem p = cases()[0];  // 19 x 23
  const Inputs in = random_inputs(p, 19);
  const RunResult r = make_backend("reference")->run(p, in, {}, {});
  MapRequest req;
  req.row0 = 4;
  req.col0 = 3, req.col1 = 10;
  req.out_rows = 100, req.out_cols = 5;
  const MapRegion g = resolve_map_region(p, r, req);
  EXPECT_EQ(g.row0, 4);
  EXPECT_EQ(g.row1, 19);
  EXPECT_EQ(g.col0, 3);
  EXPECT_EQ(g.col1, 10);
  EXPECT_EQ(g.out_rows, 15);  // never upsampled
  EXPECT_EQ(g.out_cols, 5);
  EXPECT_EQ(attention_map(p, in, r, req).shape(), (Shape{15, 5}));
  req.out_cols = 0;
  EXPECT_THROW(resolve_map_region(p, r, req), Error);
}
