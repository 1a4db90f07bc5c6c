// The "cuda" backend's paged-KV decode and device peak. Every variant decodes a DecodeSession
// (prefill, then token by token through the paged cache) on CUDA and on the reference backend;
// each step must equal the reference's decode step and the full-sequence reference computation
// at the same position (o, lse, MoBA's selection, Gated DeltaNet's state). Without a CUDA device
// every test skips and says why.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cuda/backend.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/decode_session.hpp"
#include "attnscope/error.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/registry.hpp"
#include "cuda_test_util.hpp"

using namespace attnscope;
using cuda_test::all_close;
using cuda_test::same;

namespace {

// x[b, :, t, :] of a [B, H, L, D] tensor (or [B, H, L]) as [H, D].
template <class T>
BasicTensor<T> at_position(const BasicTensor<T>& x, int64_t b, int64_t t) {
  const int64_t H = x.dim(1), L = x.dim(2), D = x.rank() == 4 ? x.dim(3) : 1;
  BasicTensor<T> out({H, D});
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t d = 0; d < D; ++d) {
      out.data()[h * D + d] = x.data()[((b * H + h) * L + t) * D + d];
    }
  }
  return out;
}

struct DecodeCase {
  std::string name;
  AttentionProblem problem;  // variant, heads, dims, params
  std::vector<int64_t> prompts;
  int64_t max_length = 0;
  int64_t page_size = 0;       // 0 = the variant's default
  int kv_splits = 0;           // 0 = chosen by shape
  int64_t release_after = -1;  // release session row 0 after this many steps (-1: never)
};

DecodeSessionConfig session_config(const DecodeCase& c, uint64_t seed) {
  DecodeSessionConfig cfg;
  cfg.problem = c.problem;
  cfg.prompt_lengths = c.prompts;
  cfg.max_length = c.max_length;
  cfg.page_size = c.page_size;
  cfg.seed = seed;
  return cfg;
}

// The whole sequence of a session row as one full-length problem (B = 1, L = max_length).
AttentionProblem full_problem(const DecodeSession& s) {
  AttentionProblem p = s.config().problem;
  p.shape.batch = 1;
  p.shape.q_len = p.shape.kv_len = s.config().max_length;
  p.causal = true;
  return p;
}

// A seed whose MoBA gates have no near-ties anywhere in the sessions' sequences (fp32 gates may
// rank blocks closer than that differently from the float64 reference, legitimately).
uint64_t seed_without_near_ties(const DecodeCase& c, uint64_t seed, Backend& any) {
  if (c.problem.variant != VariantId::moba) return seed;
  for (int attempt = 0; attempt < 50; ++attempt, seed += 101) {
    DecodeSession probe(session_config(c, seed), any);
    bool ok = true;
    for (size_t row = 0; row < c.prompts.size() && ok; ++row) {
      ok = cuda_test::min_gate_gap(full_problem(probe), probe.full_inputs(int64_t(row))) >= 1e-3;
    }
    if (ok) return seed;
  }
  ADD_FAILURE() << "no MoBA inputs without near-tied gates for " << c.name;
  return seed;
}

// Decodes the case on CUDA and on the reference, step by step, and compares every output.
void check_decode(const DecodeCase& c, uint64_t seed) {
  SCOPED_TRACE(c.name + ": " + c.problem.describe());
  auto cuda_backend = cuda::make_cuda_backend({c.kv_splits});
  auto reference = make_backend("reference");
  seed = seed_without_near_ties(c, seed, *reference);
  DecodeSession on_cuda(session_config(c, seed), *cuda_backend);
  DecodeSession on_ref(session_config(c, seed), *reference);
  on_cuda.prefill();
  on_ref.prefill();

  // What decode must reproduce: the full-sequence reference of every row.
  const AttentionProblem full = full_problem(on_cuda);
  std::vector<RunResult> want;
  for (size_t row = 0; row < c.prompts.size(); ++row) {
    want.push_back(reference->run(full, on_cuda.full_inputs(int64_t(row)), {}, {}));
  }

  const bool has_lse = c.problem.variant != VariantId::gated_delta;
  int64_t steps = 0;
  while (!on_cuda.finished()) {
    if (steps == c.release_after) {
      on_cuda.release(0);
      on_ref.release(0);
      if (on_cuda.finished()) break;
    }
    const RunResult got = on_cuda.step();
    const RunResult ref = on_ref.step();
    ++steps;
    SCOPED_TRACE("step " + std::to_string(steps));
    ASSERT_EQ(on_cuda.last_rows(), on_ref.last_rows());
    EXPECT_EQ(got.backend, "cuda");
    EXPECT_GT(got.counters.flops, 0);
    // Equal to the reference backend's decode step.
    ASSERT_TRUE(all_close("o vs reference decode", got.o, ref.o));
    if (has_lse) {
      ASSERT_TRUE(all_close("lse vs reference decode", got.lse, ref.lse));
    }
    ASSERT_EQ(got.selection.has_value(), ref.selection.has_value());
    if (ref.selection) {
      ASSERT_TRUE(same("selection vs reference decode", *got.selection, *ref.selection));
    }
    // Equal to the full-sequence reference at each row's position.
    for (size_t b = 0; b < on_cuda.last_rows().size(); ++b) {
      const int64_t row = on_cuda.last_rows()[b];
      const int64_t t = on_cuda.length(row) - 1;  // the token this step added
      SCOPED_TRACE("row " + std::to_string(row) + " position " + std::to_string(t));
      const RunResult& w = want[size_t(row)];
      ASSERT_TRUE(all_close("o vs full sequence", at_position(got.o, int64_t(b), 0),
                            at_position(w.o, 0, t)));
      if (has_lse) {
        ASSERT_TRUE(all_close("lse vs full sequence", at_position(got.lse, int64_t(b), 0),
                              at_position(w.lse, 0, t)));
      }
      if (w.selection) {
        ASSERT_TRUE(same("selection vs full sequence", at_position(*got.selection, int64_t(b), 0),
                         at_position(*w.selection, 0, t)));
      }
    }
  }
  EXPECT_GT(steps, 0);
  if (c.problem.variant == VariantId::gated_delta) {  // the state after the last token
    for (size_t row = 0; row < c.prompts.size(); ++row) {
      if (int64_t(row) == 0 && c.release_after >= 0) continue;
      Tensor state = on_cuda.cache().state(on_cuda.sequence_id(int64_t(row)));
      const ProblemShape& s = full.shape;
      state.reshape({1, s.heads, s.head_dim, s.v_head_dim});
      EXPECT_TRUE(all_close("final state", state, *want[row].final_state));
    }
  }
  EXPECT_EQ(on_cuda.cache().audit(), std::nullopt);
}

AttentionProblem model(VariantId id, int64_t heads, int64_t kv_heads, int64_t dk, int64_t dv) {
  AttentionProblem p = AttentionProblem::defaults(id);
  p.shape.heads = heads;
  p.shape.kv_heads = kv_heads;
  p.shape.head_dim = dk;
  p.shape.v_head_dim = dv;
  p.causal = true;
  return p;
}

// ---- dense MHA / GQA / MQA ----------------------------------------------------------------

TEST(CudaDecode, DenseGqaMqaMatchReference) {
  REQUIRE_CUDA_DEVICE();
  const std::vector<DecodeCase> cases = {
      {"MHA, default pages", model(VariantId::dense, 4, 4, 32, 32), {1, 17, 40}, 60},
      {"GQA groups of 4, odd page size", model(VariantId::dense, 8, 2, 64, 48), {33, 3}, 50, 7},
      {"MQA", model(VariantId::dense, 6, 1, 16, 24), {20, 9}, 45, 16},
      {"40 heads on one kv head (two head chunks)",
       model(VariantId::dense, 40, 1, 16, 16),
       {12},
       30,
       8},
      {"Dv above 256 (two column slices)", model(VariantId::dense, 2, 2, 96, 300), {25}, 40, 16},
      {"Dk above 512", model(VariantId::dense, 2, 1, 520, 64), {10}, 20, 4},
      {"long prompt, split keys", model(VariantId::dense, 4, 2, 64, 64), {300, 7}, 310, 16},
      {"forced 3 splits", model(VariantId::dense, 4, 2, 32, 32), {150, 60}, 160, 16, 3},
      {"page size 1", model(VariantId::dense, 2, 1, 8, 8), {5}, 15, 1},
  };
  uint64_t seed = 1000;
  for (const DecodeCase& c : cases) check_decode(c, ++seed);
}

// A sequence leaving the batch frees its pages; later appends reuse them, and the device mirror
// must pick up the rewritten pages.
TEST(CudaDecode, ReleasedSequencesPagesAreReused) {
  REQUIRE_CUDA_DEVICE();
  DecodeCase c{
      "release row 0 after 5 steps", model(VariantId::dense, 4, 2, 32, 32), {40, 10, 3}, 70, 4};
  c.release_after = 5;
  check_decode(c, 1100);
  c.problem = model(VariantId::swa, 4, 2, 32, 32);
  c.problem.swa = {9, 2};
  check_decode(c, 1101);
}

// One CUDA backend decoding two caches in turn re-mirrors each (the mirror follows one cache).
TEST(CudaDecode, AlternatingCachesOnOneBackend) {
  REQUIRE_CUDA_DEVICE();
  auto cuda_backend = cuda::make_cuda_backend();
  auto reference = make_backend("reference");
  DecodeCase c{"", model(VariantId::dense, 4, 2, 32, 32), {30, 12}, 45, 8};
  DecodeSession a(session_config(c, 1200), *cuda_backend),
      b(session_config(c, 1201), *cuda_backend);
  a.prefill();
  b.prefill();
  const AttentionProblem full = full_problem(a);
  std::vector<RunResult> want_a, want_b;
  for (int64_t row = 0; row < 2; ++row) {
    want_a.push_back(reference->run(full, a.full_inputs(row), {}, {}));
    want_b.push_back(reference->run(full, b.full_inputs(row), {}, {}));
  }
  while (!a.finished()) {
    for (auto [s, want] : {std::pair{&a, &want_a}, std::pair{&b, &want_b}}) {
      const RunResult got = s->step();
      for (size_t i = 0; i < s->last_rows().size(); ++i) {
        const int64_t row = s->last_rows()[i];
        const int64_t t = s->length(row) - 1;
        ASSERT_TRUE(all_close("o", at_position(got.o, int64_t(i), 0),
                              at_position((*want)[size_t(row)].o, 0, t)));
      }
    }
  }
}

// ---- sliding window (+ sinks): evicted pages ----------------------------------------------

TEST(CudaDecode, SwaWithEvictionMatchesReference) {
  REQUIRE_CUDA_DEVICE();
  struct Swa {
    int64_t window, sinks, page_size;
    std::vector<int64_t> prompts;
    int64_t max_length;
    int kv_splits;
  };
  const std::vector<Swa> cases = {
      {7, 3, 4, {30, 5}, 50, 0},    // pages leave the window, sink pages stay pinned
      {1, 0, 4, {12}, 25, 0},       // W = 1: only itself
      {20, 0, 16, {70, 3}, 90, 0},  // window across page boundaries
      {16, 4, 5, {40}, 60, 2},      // forced split over sinks + window
      {64, 4, 16, {300}, 320, 0},   // split keys with a window
      {200, 2, 16, {50}, 70, 0},    // window longer than the sequence: dense
  };
  uint64_t seed = 1300;
  for (const Swa& w : cases) {
    DecodeCase c{"SWA W=" + std::to_string(w.window) + " S=" + std::to_string(w.sinks),
                 model(VariantId::swa, 4, 2, 32, 32),
                 w.prompts,
                 w.max_length,
                 w.page_size,
                 w.kv_splits};
    c.problem.swa = {w.window, w.sinks};
    check_decode(c, ++seed);
  }
  // Eviction really happened in the first case (so the test covered -1 table entries).
  auto cuda_backend = cuda::make_cuda_backend();
  DecodeCase c{"", model(VariantId::swa, 4, 2, 32, 32), {30, 5}, 50, 4};
  c.problem.swa = {7, 3};
  DecodeSession s(session_config(c, 1300), *cuda_backend);
  s.prefill();
  while (!s.finished()) s.step();
  EXPECT_GT(s.cache().stats().pages_evicted, 0);
}

// ---- MoBA: selection over cached block means -------------------------------------------------

TEST(CudaDecode, MobaSelectionAndOutputsMatchReference) {
  REQUIRE_CUDA_DEVICE();
  struct Moba {
    int64_t block_size, top_k, page_size, heads, kv_heads;
    std::vector<int64_t> prompts;
    int64_t max_length;
  };
  const std::vector<Moba> cases = {
      {16, 3, 16, 4, 2, {40, 70}, 100},  // blocks aligned with pages
      {10, 2, 16, 4, 4, {33, 5}, 60},    // blocks straddle pages
      {8, 4, 5, 4, 1, {50}, 80},         // MQA, odd page size
      {16, 1, 16, 2, 2, {20}, 40},       // top_k = 1: own block only
      {4, 33, 8, 2, 1, {120}, 150},      // 32 ranked past blocks, the v1 maximum
      {32, 6, 16, 4, 2, {300}, 320},     // split keys over the selected blocks
  };
  uint64_t seed = 1400;
  for (const Moba& m : cases) {
    DecodeCase c{"MoBA block " + std::to_string(m.block_size) + " top_k " + std::to_string(m.top_k),
                 model(VariantId::moba, m.heads, m.kv_heads, 32, 24), m.prompts, m.max_length,
                 m.page_size};
    c.problem.moba = {m.block_size, m.top_k};
    check_decode(c, ++seed);
  }
}

// ---- MLA: absorbed form over the latent pages ------------------------------------------------

AttentionProblem mla_model(int64_t heads, MlaParams mla, int64_t dv) {
  AttentionProblem p = model(VariantId::mla, heads, 1, mla.nope_dim + mla.rope_dim, dv);
  p.mla = mla;
  return p;
}

TEST(CudaDecode, MlaMatchesReference) {
  REQUIRE_CUDA_DEVICE();
  const std::vector<DecodeCase> cases = {
      {"MLA small, default 64-token pages", mla_model(4, {48, 8, 24, false}, 24), {37, 3}, 80},
      {"MLA 40 heads, small pages", mla_model(40, {32, 8, 16, false}, 16), {20}, 35, 8},
      {"MLA long prompt, split keys", mla_model(2, {64, 16, 32, false}, 32), {260}, 270},
      {"MLA DeepSeek-V3 widths", mla_model(2, {512, 64, 128, false}, 128), {70}, 80},
  };
  uint64_t seed = 1500;
  for (const DecodeCase& c : cases) check_decode(c, ++seed);
}

// ---- Gated DeltaNet: the state step -----------------------------------------------------------

TEST(CudaDecode, GatedDeltaStateStepMatchesReference) {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 1600;
  for (bool l2norm : {false, true}) {
    for (int64_t dk : {32, 128}) {
      DecodeCase c{"GDN Dk=" + std::to_string(dk) + (l2norm ? " qk_l2norm" : ""),
                   model(VariantId::gated_delta, 3, 3, dk, 48),
                   {20, 1, 65},
                   90};
      c.problem.gated_delta.qk_l2norm = l2norm;
      check_decode(c, ++seed);
    }
  }
}

// ---- limits -------------------------------------------------------------------------------------

TEST(CudaDecode, SaysWhatItCannotDecode) {
  REQUIRE_CUDA_DEVICE();
  auto cuda_backend = cuda::make_cuda_backend();
  {  // a head wider than the paged kernel's K tile
    DecodeSessionConfig cfg;
    cfg.problem = model(VariantId::dense, 2, 1, 1100, 16);
    cfg.prompt_lengths = {4};
    cfg.max_length = 6;
    cfg.compute_prefill = false;
    DecodeSession s(cfg, *cuda_backend);
    s.prefill();
    try {
      s.step();
      ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("1024"), std::string::npos) << e.what();
    }
  }
  {  // MoBA ranking more past blocks than the selection kernel holds
    DecodeSessionConfig cfg;
    cfg.problem = model(VariantId::moba, 2, 1, 16, 16);
    cfg.problem.moba = {1, 40};
    cfg.prompt_lengths = {60};
    cfg.max_length = 62;
    cfg.compute_prefill = false;
    DecodeSession s(cfg, *cuda_backend);
    s.prefill();
    try {
      s.step();
      ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("32 past blocks"), std::string::npos) << e.what();
    }
  }
}

// ---- device peak ------------------------------------------------------------------------------

TEST(CudaPeak, MeasuresPositiveGemmAndCopyRates) {
  REQUIRE_CUDA_DEVICE();
  auto cuda_backend = cuda::make_cuda_backend();
  const DevicePeak peak = cuda_backend->measure_peak({});
  EXPECT_EQ(peak.backend, "cuda");
  EXPECT_EQ(peak.device, cuda_backend->device());
  EXPECT_GT(peak.gflops, 0);
  EXPECT_GT(peak.gbps, 0);
  EXPECT_GT(peak.seconds, 0);
  EXPECT_NE(peak.gemm.find("SGEMM"), std::string::npos) << peak.gemm;
  EXPECT_NE(peak.gemm.find("no TF32"), std::string::npos) << peak.gemm;
  EXPECT_FALSE(peak.copy.empty());
  ASSERT_EQ(peak.measured_at.size(), 20u) << peak.measured_at;  // 2026-01-01T00:00:00Z
  EXPECT_EQ(peak.measured_at.back(), 'Z');
  EXPECT_EQ(peak.measured_at[10], 'T');
  // A cancelled token stops the measurement.
  CancelToken cancel;
  cancel.cancel();
  EXPECT_THROW(cuda_backend->measure_peak(cancel), Cancelled);
}

}  // namespace
