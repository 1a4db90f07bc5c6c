// The CUDA map probe (cuda_map.cpp, map_probe.cu) against the host attention_map: on the device
// for every softmax variant, both pools and uneven regions (skipped without a device), and, on any
// machine, a CPU replay of the kernel's decomposition (map_probe_plan.hpp) that checks the bins,
// bands, tile skipping and masks the device relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cuda/backend.hpp"
#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "cuda_test_util.hpp"
#include "map_probe_plan.hpp"

using namespace attnscope;

namespace {

using cuda_test::all_close;

struct MapCase {
  std::string what;
  AttentionProblem problem;
};

AttentionProblem make(VariantId id, ProblemShape shape, bool causal) {
  AttentionProblem p = AttentionProblem::defaults(id);
  p.shape = shape;
  p.causal = causal;
  return p;
}

AttentionProblem mla(ProblemShape shape, MlaParams m, bool causal) {
  AttentionProblem p = make(VariantId::mla, shape, causal);
  p.shape.kv_heads = 1;
  p.shape.head_dim = m.nope_dim + m.rope_dim;
  p.mla = m;
  return p;
}

// Every softmax variant, with shapes whose regions straddle tiles, masks and blocks.
std::vector<MapCase> map_cases() {
  std::vector<MapCase> c;
  c.push_back({"dense MHA non-causal", make(VariantId::dense, {1, 2, 2, 45, 53, 16, 16}, false)});
  c.push_back(
      {"dense GQA causal, Lq < Lk", make(VariantId::dense, {2, 4, 2, 70, 90, 32, 24}, true)});
  c.push_back({"MQA causal, Lq > Lk", make(VariantId::dense, {1, 4, 1, 80, 50, 16, 16}, true)});
  AttentionProblem swa = make(VariantId::swa, {1, 2, 1, 130, 130, 16, 16}, true);
  swa.swa = {7, 3};
  c.push_back({"SWA window 7 + 3 sinks", swa});
  swa = make(VariantId::swa, {1, 2, 2, 60, 150, 24, 24}, true);
  swa.swa = {20, 0};
  c.push_back({"SWA window 20, Lq < Lk", swa});
  swa = make(VariantId::swa, {1, 1, 1, 600, 640, 16, 16}, true);
  swa.swa = {50, 2};
  c.push_back({"SWA window 50 + 2 sinks, tiles skipped at every alignment", swa});
  AttentionProblem moba = make(VariantId::moba, {1, 4, 2, 200, 200, 16, 16}, true);
  moba.moba = {16, 3};
  c.push_back({"MoBA block 16 top-3, short last block", moba});
  moba = make(VariantId::moba, {1, 2, 1, 90, 130, 16, 16}, true);
  moba.moba = {5, 4};
  c.push_back({"MoBA block 5 (13 blocks a tile), Lq < Lk", moba});
  AttentionProblem m = mla({1, 3, 1, 60, 90, 0, 16}, {32, 8, 16, false}, true);
  c.push_back({"MLA naive", m});
  m.mla.absorbed = true;
  c.push_back({"MLA absorbed", m});
  c.push_back({"MLA DeepSeek-V3 widths (576-wide scores)",
               mla({1, 2, 1, 20, 70, 0, 128}, {512, 64, 128, true}, false)});
  c.push_back({"dense causal, cells spanning tiles",
               make(VariantId::dense, {1, 1, 1, 1000, 1100, 16, 16}, true)});
  return c;
}

// Regions and output sizes: full resolution, uneven bins, offsets, one cell, near-full size.
std::vector<MapRequest> map_requests(const AttentionProblem& p, int64_t head) {
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len;
  std::vector<MapRequest> out;
  auto add = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t orows, int64_t ocols) {
    MapRequest q;
    q.batch = p.shape.batch - 1;
    q.head = head;
    q.row0 = r0, q.row1 = r1, q.col0 = c0, q.col1 = c1;
    q.out_rows = orows, q.out_cols = ocols;
    out.push_back(q);
  };
  add(0, 0, 0, 0, 256, 256);                    // whole map at full resolution (clamped)
  add(3, lq - 2, 1, lk - 1, 7, 5);              // bins that do not divide
  add(lq / 3, lq, 0, lk / 2 + 1, 17, 11);       // an offset region
  add(0, 0, 0, 0, 1, 1);                        // one cell
  add(1, lq, 2, lk, lq - 2, lk - 3);            // cells of one or two entries
  add(0, 0, 0, 0, (lq + 1) / 2, (lk + 2) / 3);  // 2 x 3 cells
  return out;
}

RunResult reference_run(const AttentionProblem& p, const Inputs& in) {
  return make_backend("reference")->run(p, in, {}, {});
}

// ---- CPU replay of the device decomposition ------------------------------------------------

struct ReplayStats {
  int64_t tiles = 0, skipped = 0, bands = 0;
};

// cuda_map.cpp and map_probe.cu replayed on the CPU with the same plan functions: bands of row
// groups, a block per group of cells, 64 x 64 tiles, the same skip tests (checked sound: a skipped
// tile holds no entry that the map would count), the same masks and bins, fp32 scores. Returns
// the pooled map; EXPECTs on every invariant the kernel assumes.
Tensor replay_device_map(const AttentionProblem& p, const Inputs& in, const RunResult& r,
                         const MapRequest& req, ReplayStats& stats) {
  using namespace attnscope::cuda;
  const MapRegion region = resolve_map_region(p, r, req);
  const ProblemShape& s = p.shape;
  const bool is_mla = p.variant == VariantId::mla, moba = p.variant == VariantId::moba;
  const int64_t Dn = p.mla.nope_dim, Dr = p.mla.rope_dim, Dc = p.mla.kv_lora_rank;
  const int64_t Dq = is_mla ? Dn + Dr : s.head_dim, D = is_mla ? Dc + Dr : s.head_dim;
  const int64_t top_k = p.moba.top_k, bs = p.moba.block_size;
  const int64_t b = req.batch, h = req.head, bh = b * s.heads + h;
  const DeviceMask mask = device_mask(KeyMask::of(p));
  const float scale = float(p.effective_scale());
  const MapPlan plan =
      make_map_plan(region.rows(), region.cols(), region.out_rows, region.out_cols);
  const int64_t per_band = map_groups_per_band(plan);

  // The region's keys as uploaded: [cols, D].
  std::vector<float> keys(static_cast<size_t>(region.cols() * D));
  for (int64_t j = 0; j < region.cols(); ++j) {
    const int64_t col = region.col0 + j;
    if (is_mla) {
      for (int64_t c = 0; c < Dc; ++c)
        keys[j * D + c] = in.at("c_kv").data()[(b * s.kv_len + col) * Dc + c];
      for (int64_t c = 0; c < Dr; ++c)
        keys[j * D + Dc + c] = in.at("k_rope").data()[(b * s.kv_len + col) * Dr + c];
    } else {
      const int64_t kvh = h / (s.heads / s.kv_heads);
      for (int64_t c = 0; c < D; ++c)
        keys[j * D + c] = in.at("k").data()[((b * s.kv_heads + kvh) * s.kv_len + col) * D + c];
    }
  }

  Tensor out({region.out_rows, region.out_cols}, -1.0f);
  for (int64_t g0 = 0; g0 < plan.row_groups; g0 += per_band) {
    ++stats.bands;
    const MapBand band = map_band(plan, g0, per_band);
    EXPECT_LE(band.group1 - band.group0, 65535);
    const int64_t n = band.q_end - band.q_first, row = region.row0 + band.q_first;
    EXPECT_LE(n, std::min(region.rows(), per_band * plan.group_input_rows));
    // The band's queries as the device holds them ([n, D]; MLA absorbed as map_absorb_kernel).
    std::vector<float> q(static_cast<size_t>(n * D)), lse(static_cast<size_t>(n));
    std::vector<int32_t> sel(static_cast<size_t>(moba ? n * top_k : 0));
    const float* q_head = in.at("q").data() + bh * s.q_len * Dq;
    for (int64_t i = 0; i < n; ++i) {
      const float* qi = q_head + (row + i) * Dq;
      if (is_mla) {
        const float* w = in.at("w_uk").data() + h * Dn * Dc;
        for (int64_t c = 0; c < Dc; ++c) {
          float acc = 0;
          for (int64_t e = 0; e < Dn; ++e) acc = std::fma(qi[e], w[e * Dc + c], acc);
          q[i * D + c] = acc;
        }
        for (int64_t c = 0; c < Dr; ++c) q[i * D + Dc + c] = qi[Dn + c];
      } else {
        for (int64_t c = 0; c < D; ++c) q[i * D + c] = qi[c];
      }
      lse[i] = r.lse.data()[bh * s.q_len + row + i];
      for (int64_t t = 0; t < (moba ? top_k : 0); ++t)
        sel[i * top_k + t] = r.selection->data()[(bh * s.q_len + row + i) * top_k + t];
    }
    for (int64_t rg = band.group0; rg < band.group1; ++rg) {
      for (int64_t cg = 0; cg < plan.col_groups; ++cg) {
        const MapGroup g = map_group(plan, rg, cg);
        const int64_t ncols = g.ocol1 - g.ocol0, ncells = (g.orow1 - g.orow0) * ncols;
        EXPECT_GE(ncells, 1);
        EXPECT_LE(ncells, kMapMaxCells);
        EXPECT_TRUE(g.orow1 - g.orow0 == 1 || g.r1 - g.r0 <= kMapTile);
        EXPECT_TRUE(g.ocol1 - g.ocol0 == 1 || g.c1 - g.c0 <= kMapTile);
        EXPECT_TRUE(band.q_first <= g.r0 && g.r1 <= band.q_end);
        std::vector<double> cells(static_cast<size_t>(ncells), 0.0);
        for (int64_t i0 = g.r0; i0 < g.r1; i0 += kMapTile) {
          const int64_t i1 = std::min(g.r1, i0 + kMapTile);
          for (int64_t j0 = g.c0; j0 < g.c1; j0 += kMapTile) {
            const int64_t j1 = std::min(g.c1, j0 + kMapTile);
            ++stats.tiles;
            const bool hidden = map_tile_hidden(mask, moba, region.row0 + i0, region.row0 + i1,
                                                region.col0 + j0, region.col0 + j1);
            const int64_t kb0 = moba ? (region.col0 + j0) / bs : 0;
            std::vector<uint64_t> bits(static_cast<size_t>(i1 - i0), 0);
            bool any_bits = false;
            for (int64_t i = i0; moba && i < i1; ++i) {
              bits[i - i0] = map_selection_row_bits(&sel[(i - band.q_first) * top_k], int(top_k),
                                                    kb0, (region.col0 + j1 - 1) / bs);
              any_bits |= bits[i - i0] != 0;
            }
            const bool skipped = hidden || (moba && !any_bits);
            stats.skipped += skipped;
            for (int64_t i = i0; i < i1; ++i) {
              const float l = lse[i - band.q_first];
              for (int64_t j = j0; j < j1; ++j) {
                const int shift = moba ? int((region.col0 + j) / bs - kb0) : 0;
                const bool on =
                    std::isfinite(l) && map_entry_visible(mask, moba, region.row0 + i,
                                                          region.col0 + j, bits[i - i0], shift);
                if (skipped) {
                  EXPECT_FALSE(on)
                      << "skipped tile holds entry " << region.row0 + i << "," << region.col0 + j;
                }
                if (!on || skipped) continue;
                float dot = 0;
                for (int64_t d = 0; d < D; ++d)
                  dot = std::fma(q[(i - band.q_first) * D + d], keys[j * D + d], dot);
                const float pij = std::exp(dot * scale - l);
                const int64_t cell = (map_bin_of(i, plan.rows, plan.out_rows) - g.orow0) * ncols +
                                     map_bin_of(j, plan.cols, plan.out_cols) - g.ocol0;
                EXPECT_TRUE(cell >= 0 && cell < ncells);
                if (req.pool == Pool::mean) {
                  cells[cell] += pij;
                } else {
                  cells[cell] = std::max(cells[cell], double(pij));
                }
              }
            }
          }
        }
        for (int64_t c = 0; c < ncells; ++c) {
          const int64_t orow = g.orow0 + c / ncols, ocol = g.ocol0 + c % ncols;
          const double area = double(map_bin_begin(orow + 1, plan.rows, plan.out_rows) -
                                     map_bin_begin(orow, plan.rows, plan.out_rows)) *
                              double(map_bin_begin(ocol + 1, plan.cols, plan.out_cols) -
                                     map_bin_begin(ocol, plan.cols, plan.out_cols));
          float& o = out.data()[orow * region.out_cols + ocol];
          EXPECT_EQ(o, -1.0f) << "cell " << orow << "," << ocol << " written twice";
          o = float(req.pool == Pool::mean ? cells[c] / area : cells[c]);
        }
      }
    }
  }
  return out;
}

// Every cell written exactly once and equal to the host's within the device tolerance.
void expect_replay_matches(const AttentionProblem& p, const Inputs& in, const RunResult& r,
                           const MapRequest& req, ReplayStats& stats) {
  const Tensor want = attention_map(p, in, r, req);
  const Tensor got = replay_device_map(p, in, r, req, stats);
  EXPECT_TRUE(all_close("replayed map", got, want));
}

TEST(CudaMapPlan, BinsAreTheHostBins) {
  using namespace attnscope::cuda;
  for (int64_t n : {1, 2, 7, 64, 65, 1000, 16385}) {
    for (int64_t m : {int64_t(1), int64_t(2), int64_t(3), n / 3 + 1, n - 1, n}) {
      if (m < 1 || m > n) continue;
      for (int64_t x = 0; x < n; ++x) {
        const int64_t o = map_bin_of(x, n, m);
        ASSERT_TRUE(map_bin_begin(o, n, m) <= x && x < map_bin_begin(o + 1, n, m))
            << n << " into " << m << ": " << x;
      }
      EXPECT_EQ(map_bin_begin(m, n, m), n);
    }
  }
}

TEST(CudaMapPlan, ReplayMatchesHostForEveryVariantPoolAndRegion) {
  for (const MapCase& c : map_cases()) {
    SCOPED_TRACE(c.what + ": " + c.problem.describe());
    const Inputs in = make_inputs(c.problem, "random", 41);
    const RunResult r = reference_run(c.problem, in);
    ReplayStats stats;
    for (const MapRequest& base : map_requests(c.problem, c.problem.shape.heads - 1)) {
      for (Pool pool : {Pool::max, Pool::mean}) {
        MapRequest req = base;
        req.pool = pool;
        SCOPED_TRACE("rows [" + std::to_string(req.row0) + ", " + std::to_string(req.row1) +
                     ") cols [" + std::to_string(req.col0) + ", " + std::to_string(req.col1) +
                     ") -> " + std::to_string(req.out_rows) + " x " + std::to_string(req.out_cols) +
                     (pool == Pool::max ? " max" : " mean"));
        expect_replay_matches(c.problem, in, r, req, stats);
      }
    }
    if (c.problem.causal && c.problem.shape.q_len >= 1000) {
      EXPECT_GT(stats.skipped, 0);
    }
  }
}

// A skipped tile must hold no visible entry (the kernel never looks inside it): brute force over
// random masks and tiles, including ones that end exactly at a window's edge or a sink.
TEST(CudaMapPlan, SkippedTilesHoldNoVisibleEntry) {
  using namespace attnscope::cuda;
  std::mt19937_64 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t hidden = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    DeviceMask m;
    m.causal = pick(0, 5) != 0;
    m.offset = pick(-80, 80);
    m.window = pick(0, 3) == 0 ? 0 : pick(1, 150);
    m.sinks = pick(0, 2) == 0 ? 0 : pick(1, 20);
    const bool moba = pick(0, 3) == 0;
    if (moba) m.causal = 1, m.window = 0, m.sinks = 0;
    const int64_t i0 = pick(0, 300), j0 = pick(0, 300);
    const int64_t i1 = i0 + pick(1, kMapTile), j1 = j0 + pick(1, kMapTile);
    if (!map_tile_hidden(m, moba, i0, i1, j0, j1)) continue;
    ++hidden;
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = j0; j < j1; ++j) {
        const bool visible = moba ? j <= i + m.offset : map_key_visible(m, i, j);
        ASSERT_FALSE(visible) << "tile [" << i0 << ", " << i1 << ") x [" << j0 << ", " << j1
                              << ") offset " << m.offset << " window " << m.window << " sinks "
                              << m.sinks << (moba ? " moba" : "") << ": entry " << i << "," << j;
      }
    }
  }
  EXPECT_GT(hidden, 1000);  // the random tiles do exercise skipping
}

// Tall regions take several launches (bands); rows that see no key (Lq > Lk) have lse = -inf.
TEST(CudaMapPlan, ReplayCoversSeveralBands) {
  const AttentionProblem p = make(VariantId::dense, {1, 1, 1, 20000, 40, 8, 8}, true);
  const Inputs in = make_inputs(p, "random", 43);
  const RunResult r = reference_run(p, in);
  for (int64_t out_rows : {int64_t(20000), int64_t(300)}) {
    MapRequest req;
    req.out_rows = out_rows;
    req.out_cols = 40;
    req.pool = Pool::mean;
    ReplayStats stats;
    expect_replay_matches(p, in, r, req, stats);
    EXPECT_GE(stats.bands, 2) << out_rows << " output rows";
    EXPECT_GT(stats.skipped, 0);
  }
}

// ---- on the device ------------------------------------------------------------------------

Tensor device_map(Backend& cuda, const AttentionProblem& p, const Inputs& in, const RunResult& r,
                  const MapRequest& req) {
  return cuda.attention_map(p, in, r, req, {});
}

TEST(CudaMap, MatchesHostForEveryVariantPoolAndRegion) {
  REQUIRE_CUDA_DEVICE();
  auto cuda = cuda::make_cuda_backend();
  for (const MapCase& c : map_cases()) {
    SCOPED_TRACE(c.what + ": " + c.problem.describe());
    const Inputs in = make_inputs(c.problem, "random", 47);
    const RunResult r = reference_run(c.problem, in);
    for (int64_t head : {int64_t(0), c.problem.shape.heads - 1}) {
      for (const MapRequest& base : map_requests(c.problem, head)) {
        for (Pool pool : {Pool::max, Pool::mean}) {
          MapRequest req = base;
          req.pool = pool;
          SCOPED_TRACE("head " + std::to_string(head) + " rows [" + std::to_string(req.row0) +
                       ", " + std::to_string(req.row1) + ") cols [" + std::to_string(req.col0) +
                       ", " + std::to_string(req.col1) + ") -> " + std::to_string(req.out_rows) +
                       " x " + std::to_string(req.out_cols) +
                       (pool == Pool::max ? " max" : " mean"));
          EXPECT_TRUE(all_close("map", device_map(*cuda, c.problem, in, r, req),
                                attention_map(c.problem, in, r, req)));
        }
      }
    }
  }
}

// The map of a CUDA run (its own lse and MoBA selection) equals the host map of the same result.
TEST(CudaMap, MapsOfCudaRunsMatchHost) {
  REQUIRE_CUDA_DEVICE();
  auto cuda = cuda::make_cuda_backend();
  for (const MapCase& c : map_cases()) {
    SCOPED_TRACE(c.what + ": " + c.problem.describe());
    const Inputs in = make_inputs(c.problem, "random", 53);
    const RunResult r = cuda->run(c.problem, in, {}, {});
    for (Pool pool : {Pool::max, Pool::mean}) {
      MapRequest req;
      req.head = 1 % c.problem.shape.heads;
      req.out_rows = 33;
      req.out_cols = 29;
      req.pool = pool;
      EXPECT_TRUE(all_close("map", device_map(*cuda, c.problem, in, r, req),
                            attention_map(c.problem, in, r, req)));
    }
  }
}

TEST(CudaMap, SeveralBandsMatchHost) {
  REQUIRE_CUDA_DEVICE();
  auto cuda = cuda::make_cuda_backend();
  const AttentionProblem p = make(VariantId::dense, {1, 1, 1, 20000, 40, 8, 8}, true);
  const Inputs in = make_inputs(p, "random", 59);
  const RunResult r = reference_run(p, in);
  for (int64_t out_rows : {int64_t(20000), int64_t(300)}) {
    for (Pool pool : {Pool::max, Pool::mean}) {
      MapRequest req;
      req.out_rows = out_rows;
      req.out_cols = 40;
      req.pool = pool;
      EXPECT_TRUE(all_close("map", device_map(*cuda, p, in, r, req), attention_map(p, in, r, req)));
    }
  }
}

// Gated DeltaNet's implicit attention stays on the host: the CUDA backend returns exactly it.
TEST(CudaMap, GatedDeltaFallsBackToTheHost) {
  REQUIRE_CUDA_DEVICE();
  auto cuda = cuda::make_cuda_backend();
  AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
  p.shape = {1, 2, 2, 50, 50, 16, 16};
  p.gated_delta.qk_l2norm = true;
  const Inputs in = make_inputs(p, "random", 61);
  const RunResult r = reference_run(p, in);
  MapRequest req;
  req.head = 1;
  req.out_rows = 9;
  req.out_cols = 7;
  req.pool = Pool::mean;
  const Tensor got = device_map(*cuda, p, in, r, req), want = attention_map(p, in, r, req);
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) EXPECT_EQ(got.data()[i], want.data()[i]);
}

TEST(CudaMap, BadRequestsAreTheHostsErrors) {
  REQUIRE_CUDA_DEVICE();
  auto cuda = cuda::make_cuda_backend();
  AttentionProblem p = make(VariantId::moba, {1, 2, 2, 40, 40, 16, 16}, true);
  p.moba = {8, 2};
  const Inputs in = make_inputs(p, "random", 67);
  const RunResult r = reference_run(p, in);
  MapRequest req;
  req.head = 2;
  EXPECT_THROW(device_map(*cuda, p, in, r, req), Error);
  req.head = 0;
  req.col0 = 30;
  req.col1 = 20;
  EXPECT_THROW(device_map(*cuda, p, in, r, req), Error);
  RunResult no_selection = r;
  no_selection.selection.reset();
  EXPECT_THROW(device_map(*cuda, p, in, no_selection, MapRequest{}), Error);
  RunResult stale = r;
  stale.lse = Tensor({1, 1, 1});
  EXPECT_THROW(device_map(*cuda, p, in, stale, MapRequest{}), Error);
}

}  // namespace
