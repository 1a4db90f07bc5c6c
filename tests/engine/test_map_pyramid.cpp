// The map pyramid the CPU flash tiles pool during a run: every cell's max and sum against the full
// P the reference backend's probe gives, the run's answer unchanged by it, maps served from it
// equal pooling P over the edges they report, and the plans that cannot make one make none.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attnscope/cpu_backend.hpp"
#include "attnscope/map_pyramid.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"

using namespace attnscope;

namespace {

struct Case {
  std::string name;
  AttentionProblem problem;
  int64_t cells;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  AttentionProblem d = AttentionProblem::defaults(VariantId::dense);
  d.shape = {2, 4, 2, 301, 301, 16, 16};  // GQA, rows not a multiple of anything
  d.causal = true;
  out.push_back({"causal_gqa", d, 40});
  d.causal = false;
  d.shape = {1, 2, 2, 150, 333, 8, 12};  // Lq != Lk, non-causal
  out.push_back({"noncausal_rect", d, 64});
  d.causal = true;
  d.shape = {1, 3, 1, 97, 250, 8, 8};             // MQA, bottom-right causal
  out.push_back({"causal_mqa_offset", d, 1000});  // more cells than keys: 1 x 1 cells
  d.shape = {1, 2, 2, 12, 300, 8, 8};  // 12 stacked rows: the few-rows tiles, not the micro-kernel
  out.push_back({"few_rows", d, 50});
  AttentionProblem s = AttentionProblem::defaults(VariantId::swa);
  s.shape = {1, 2, 1, 280, 280, 16, 16};
  s.swa.window = 37;
  s.swa.sinks = 5;
  out.push_back({"swa_sinks", s, 30});
  AttentionProblem m = AttentionProblem::defaults(VariantId::mla);
  m.shape.batch = 1, m.shape.heads = 3, m.shape.q_len = m.shape.kv_len = 200;
  m.mla.kv_lora_rank = 32, m.mla.nope_dim = 16, m.mla.rope_dim = 8;
  m.shape.v_head_dim = 16;
  out.push_back({"mla", m, 25});
  AttentionProblem b = AttentionProblem::defaults(VariantId::moba);
  b.shape = {2, 4, 2, 300, 300, 16, 16};
  b.moba.block_size = 24;
  b.moba.top_k = 3;
  out.push_back({"moba_cells_in_blocks", b, 40});  // 8-key cells: three per block
  b.shape = {1, 2, 1, 200, 260, 8, 8};
  b.moba.block_size = 16;
  out.push_back({"moba_blocks_in_cells", b, 7});  // 48-key cells: three blocks each
  return out;
}

// The full P of one (batch, head), from the reference backend's run and the probe.
std::vector<double> full_p(const AttentionProblem& p, const Inputs& in, const RunResult& ref,
                           int64_t b, int64_t h) {
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len;
  std::vector<float> row(static_cast<size_t>(lk));
  std::vector<double> out(static_cast<size_t>(lq * lk));
  for (int64_t i = 0; i < lq; ++i) {
    attention_tile(p, in, ref, b, h, i, i + 1, 0, lk, row.data());
    std::copy(row.begin(), row.end(), out.begin() + i * lk);
  }
  return out;
}

class MapPyramidTest : public ::testing::TestWithParam<Case> {};

TEST_P(MapPyramidTest, CellsPoolTheExactMap) {
  AttentionProblem p = GetParam().problem;
  if (auto normalize = variant_info(p.variant).normalize_shape) normalize(p);
  ASSERT_FALSE(p.validate()) << *p.validate();
  const Inputs in = make_inputs(p, "random", 17);
  auto cpu = make_cpu_backend();
  auto ref = find_backend("reference")->make();
  Probes probes;
  probes.pyramid.cells = GetParam().cells;
  const RunResult fast = cpu->run(p, in, probes, {});
  const RunResult plain = cpu->run(p, in, Probes{}, {});
  const RunResult oracle = ref->run(p, in, Probes{}, {});
  // Pooling on the side never changes the answer.
  ASSERT_EQ(fast.o.numel(), plain.o.numel());
  EXPECT_TRUE(std::equal(fast.o.span().begin(), fast.o.span().end(), plain.o.span().begin()));
  EXPECT_TRUE(std::equal(fast.lse.span().begin(), fast.lse.span().end(), plain.lse.span().begin()));
  EXPECT_FALSE(plain.pyramid);
  ASSERT_TRUE(fast.pyramid);
  const MapPyramid& pyr = *fast.pyramid;
  EXPECT_EQ(pyr.rows, (p.shape.q_len + pyr.cell_rows - 1) / pyr.cell_rows);
  EXPECT_EQ(pyr.cols, (p.shape.kv_len + pyr.cell_cols - 1) / pyr.cell_cols);
  EXPECT_LE(pyr.cols, std::max<int64_t>(GetParam().cells, 1));
  const int64_t lk = p.shape.kv_len;
  for (int64_t b = 0; b < p.shape.batch; ++b) {
    for (int64_t h = 0; h < p.shape.heads; ++h) {
      const std::vector<double> P = full_p(p, in, oracle, b, h);
      for (int64_t r = 0; r < pyr.rows; ++r) {
        for (int64_t c = 0; c < pyr.cols; ++c) {
          double mx = 0, sum = 0;
          for (int64_t i = pyr.row_begin(r); i < pyr.row_end(r); ++i) {
            for (int64_t j = pyr.col_begin(c); j < pyr.col_end(c); ++j) {
              mx = std::max(mx, P[i * lk + j]);
              sum += P[i * lk + j];
            }
          }
          const int64_t x = pyr.offset(b, h) + r * pyr.cols + c;
          ASSERT_NEAR(pyr.max[x], mx, 2e-5 * std::max(1.0, mx))
              << "max of cell " << r << "," << c << " head " << h << " batch " << b;
          ASSERT_NEAR(pyr.sum[x], sum, 2e-5 * std::max(1.0, sum))
              << "sum of cell " << r << "," << c << " head " << h << " batch " << b;
        }
      }
    }
  }
}

TEST_P(MapPyramidTest, ServedMapsPoolOverTheirEdges) {
  AttentionProblem p = GetParam().problem;
  if (auto normalize = variant_info(p.variant).normalize_shape) normalize(p);
  const Inputs in = make_inputs(p, "random", 5);
  auto cpu = make_cpu_backend();
  Probes probes;
  probes.pyramid.cells = GetParam().cells;
  const RunResult run = cpu->run(p, in, probes, {});
  ASSERT_TRUE(run.pyramid);
  const MapPyramid& pyr = *run.pyramid;
  const int64_t h = p.shape.heads - 1, lk = p.shape.kv_len;
  const std::vector<double> P = full_p(p, in, run, 0, h);
  for (Pool pool : {Pool::max, Pool::mean}) {
    for (int64_t out : {int64_t(7), pyr.rows, int64_t(5000)}) {
      MapRequest req;
      req.head = h;
      req.row0 = p.shape.q_len / 5;
      req.col0 = 3;
      req.col1 = lk - 1;
      req.out_rows = req.out_cols = out;
      req.pool = pool;
      const MapRegion g = resolve_map_request(p, req);
      const auto served = map_from_pyramid(pyr, req, g, false);
      const auto coarse = map_from_pyramid(pyr, req, g, true);
      ASSERT_TRUE(coarse);
      const int64_t cell_rows =
          (g.row1 + pyr.cell_rows - 1) / pyr.cell_rows - g.row0 / pyr.cell_rows;
      const int64_t cell_cols =
          (g.col1 + pyr.cell_cols - 1) / pyr.cell_cols - g.col0 / pyr.cell_cols;
      const bool fine = g.out_rows <= cell_rows && g.out_cols <= cell_cols;
      EXPECT_EQ(bool(served), coarse->as_fine_as_asked);
      EXPECT_EQ(coarse->as_fine_as_asked, fine);
      const PyramidMap& m = *coarse;
      // The snapped region covers the request, on cell edges.
      EXPECT_LE(m.region.row0, g.row0);
      EXPECT_GE(m.region.row1, g.row1);
      EXPECT_LE(m.region.col0, g.col0);
      EXPECT_GE(m.region.col1, g.col1);
      EXPECT_EQ(m.row_edges.front(), m.region.row0);
      EXPECT_EQ(m.row_edges.back(), m.region.row1);
      EXPECT_EQ(m.col_edges.back(), m.region.col1);
      for (int64_t o = 0; o < m.region.out_rows; ++o) {
        for (int64_t oc = 0; oc < m.region.out_cols; ++oc) {
          double mx = 0, sum = 0;
          for (int64_t i = m.row_edges[o]; i < m.row_edges[o + 1]; ++i) {
            for (int64_t j = m.col_edges[oc]; j < m.col_edges[oc + 1]; ++j) {
              mx = std::max(mx, P[i * lk + j]);
              sum += P[i * lk + j];
            }
          }
          const double area = double(m.row_edges[o + 1] - m.row_edges[o]) *
                              double(m.col_edges[oc + 1] - m.col_edges[oc]);
          const double want = pool == Pool::max ? mx : sum / area;
          ASSERT_NEAR(m.values.data()[o * m.region.out_cols + oc], want, 2e-5 * std::max(1.0, want))
              << (pool == Pool::max ? "max" : "mean") << " bin " << o << "," << oc;
        }
      }
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Shapes, MapPyramidTest, ::testing::ValuesIn(cases()), case_name);

TEST(MapPyramid, BudgetMakesCellsCoarserNeverLarger) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {1, 8, 8, 2048, 2048, 16, 16};  // 64 tasks: the plan splits no key range
  p.causal = true;
  const Inputs in = make_inputs(p, "random", 3);
  auto cpu = make_cpu_backend();
  Probes probes;
  probes.pyramid.cells = 512;
  probes.pyramid.max_bytes = 1 << 20;  // 8 heads of 512 x 512 cells x 8 bytes would be 16 MiB
  const RunResult r = cpu->run(p, in, probes, {});
  ASSERT_TRUE(r.pyramid);
  EXPECT_LE(r.pyramid->bytes(), probes.pyramid.max_bytes);
  EXPECT_GT(r.pyramid->cell_cols, 2);
  probes.pyramid.max_bytes = 8;  // not one cell per head fits
  EXPECT_FALSE(cpu->run(p, in, probes, {}).pyramid);
}

TEST(MapPyramid, MobaBudgetTooSmallForAnyCellsGivesNone) {
  // Fewer keys than one block: the cells' columns stop at a divisor of the block below Lk, so the
  // coarsening must still end (it once looped forever here) with no pyramid when nothing fits.
  AttentionProblem p = AttentionProblem::defaults(VariantId::moba);
  p.shape = {1, 4, 1, 100, 100, 8, 8};
  p.moba.block_size = 128;
  p.moba.top_k = 2;
  const Inputs in = make_inputs(p, "random", 3);
  Probes probes;
  probes.pyramid.cells = 64;
  probes.pyramid.max_bytes = 64;
  EXPECT_FALSE(make_cpu_backend()->run(p, in, probes, {}).pyramid);
  probes.pyramid.max_bytes = int64_t(1) << 20;
  EXPECT_TRUE(make_cpu_backend()->run(p, in, probes, {}).pyramid);
}

TEST(MapPyramid, NoneWhenTheKeysAreSplitAcrossTasks) {
  // One query block over many keys: the plan splits the key range (decode-like), so no task sees
  // a row's final lse and no pyramid is claimed.
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.shape = {1, 1, 1, 4, 8192, 16, 16};
  const Inputs in = make_inputs(p, "random", 3);
  Probes probes;
  probes.pyramid.cells = 64;
  EXPECT_FALSE(make_cpu_backend()->run(p, in, probes, {}).pyramid);
}

}  // namespace
