// The "cuda" backend against the reference oracle on fresh seeded random shapes, for every variant,
// plus the invariants (MLA naive == absorbed, GDN chunked == recurrent, split-KV == no split).
// Without a CUDA device every test skips and says why, so CPU-only CI stays green and honest.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cuda/backend.hpp"
#include "attnscope/cuda/device.hpp"
#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "cuda_test_util.hpp"
#include "cuda_variant.hpp"

using namespace attnscope;

namespace {

using cuda_test::all_close;
using cuda_test::min_gate_gap;
using cuda_test::same;

// Compares every output the variant has.
void expect_match(const RunResult& got, const RunResult& want, const AttentionProblem& p) {
  SCOPED_TRACE(p.describe());
  EXPECT_TRUE(all_close("o", got.o, want.o));
  EXPECT_TRUE(all_close("lse", got.lse, want.lse));
  ASSERT_EQ(got.selection.has_value(), want.selection.has_value());
  if (want.selection) {
    EXPECT_TRUE(same("selection", *got.selection, *want.selection));
  }
  ASSERT_EQ(got.final_state.has_value(), want.final_state.has_value());
  if (want.final_state) {
    EXPECT_TRUE(all_close("final_state", *got.final_state, *want.final_state));
  }
}

RunResult reference(const AttentionProblem& p, const Inputs& in) {
  return make_backend("reference")->run(p, in, {}, {});
}

RunResult cuda_run(const AttentionProblem& p, const Inputs& in, int kv_splits = 0) {
  auto backend = cuda::make_cuda_backend({kv_splits});
  const Support s = backend->supports(p);
  EXPECT_TRUE(s.ok) << s.why_not;
  return backend->run(p, in, {}, {});
}

AttentionProblem softmax_problem(VariantId id, ProblemShape shape, bool causal) {
  AttentionProblem p = AttentionProblem::defaults(id);
  p.shape = shape;
  p.causal = causal;
  return p;
}

void check_against_reference(const AttentionProblem& p, uint64_t seed, int kv_splits = 0) {
  const Inputs in = make_inputs(p, "random", seed);
  expect_match(cuda_run(p, in, kv_splits), reference(p, in), p);
}

// ---- dense MHA / GQA / MQA ---------------------------------------------------------------

TEST(CudaDense, MatchesReference) {
  REQUIRE_CUDA_DEVICE();
  struct Case {
    ProblemShape shape;  // B, H, Hkv, Lq, Lk, Dk, Dv
    bool causal;
  };
  const std::vector<Case> cases = {
      {{1, 4, 4, 37, 37, 32, 32}, true},    // MHA, odd length
      {{2, 8, 2, 65, 129, 64, 48}, true},   // GQA groups of 4, Lq < Lk
      {{1, 4, 1, 33, 70, 16, 24}, false},   // MQA, non-causal
      {{1, 2, 2, 70, 33, 40, 40}, true},    // Lq > Lk: the first rows see nothing
      {{1, 3, 3, 45, 45, 17, 9}, true},     // odd head dims
      {{1, 2, 1, 40, 61, 256, 256}, true},  // widest v1 value slice
      {{1, 2, 2, 20, 50, 96, 300}, false},  // Dv above 256: two column slices
      {{1, 2, 2, 5, 40, 520, 64}, true},    // Dk above 512 (the K tile's bound is 1024)
  };
  uint64_t seed = 100;
  for (const Case& c : cases)
    check_against_reference(softmax_problem(VariantId::dense, c.shape, c.causal), ++seed);
}

// Decode-like shapes (few query rows) split the keys across blocks; any split count must agree.
TEST(CudaDense, SplitKvMatchesReference) {
  REQUIRE_CUDA_DEVICE();
  const std::vector<ProblemShape> shapes = {
      {1, 4, 1, 1, 300, 64, 64},   // single query, MQA
      {2, 4, 2, 3, 517, 128, 96},  // a few queries, odd cache length
      {1, 2, 2, 40, 200, 32, 32},  // prefill rows with causal tiles skipped per split
      {1, 2, 2, 70, 33, 16, 16},   // fully masked rows in every split
  };
  uint64_t seed = 200;
  for (const ProblemShape& s : shapes) {
    for (int splits : {1, 2, 5, 0}) {
      SCOPED_TRACE("kv_splits=" + std::to_string(splits));
      check_against_reference(softmax_problem(VariantId::dense, s, true), ++seed, splits);
    }
  }
}

// ---- sliding window (+ sinks) -------------------------------------------------------------

TEST(CudaSwa, WindowsAndSinksMatchReference) {
  REQUIRE_CUDA_DEVICE();
  struct Case {
    ProblemShape shape;
    int64_t window, sinks;
  };
  const std::vector<Case> cases = {
      {{1, 4, 2, 77, 77, 32, 32}, 1, 0},  // W = 1: only itself
      {{1, 4, 2, 77, 77, 32, 32}, 7, 0},
      {{1, 4, 2, 77, 77, 32, 32}, 7, 3},    // sinks on top of the window
      {{1, 4, 4, 50, 50, 16, 16}, 200, 4},  // W >= Lk: equals causal dense
      {{2, 4, 1, 37, 150, 64, 64}, 33, 4},  // Lq < Lk, MQA
      {{1, 2, 2, 1, 400, 64, 64}, 64, 4},   // decode with a window (split-KV path)
      {{1, 2, 2, 60, 40, 24, 24}, 5, 2},    // Lq > Lk: fully masked rows
  };
  uint64_t seed = 300;
  for (const Case& c : cases) {
    AttentionProblem p = softmax_problem(VariantId::swa, c.shape, true);
    p.swa = {c.window, c.sinks};
    check_against_reference(p, ++seed);
    check_against_reference(p, ++seed, 3);  // forced split
  }
}

// ---- MoBA -----------------------------------------------------------------------------------

TEST(CudaMoba, MatchesReferenceIncludingSelection) {
  REQUIRE_CUDA_DEVICE();
  struct Case {
    ProblemShape shape;
    int64_t block_size, top_k;
  };
  const std::vector<Case> cases = {
      {{1, 4, 2, 200, 200, 32, 32}, 16, 3},  // short last block (200 = 12 x 16 + 8)
      {{2, 4, 4, 150, 150, 16, 24}, 64, 5},  // top_k >= number of blocks: all past selected
      {{1, 4, 1, 3, 300, 32, 32}, 32, 4},    // decode-like, MQA
      {{1, 2, 2, 40, 30, 16, 16}, 8, 2},     // Lq > Lk: rows that see nothing
      {{1, 2, 2, 90, 90, 16, 16}, 10, 1},    // top_k = 1: own block only
      {{1, 2, 1, 4, 1100, 16, 16}, 16, 33},  // 32 ranked past blocks, the v1 maximum
      {{1, 2, 2, 64, 300, 64, 256}, 16, 6},  // widest value head
  };
  uint64_t seed = 400;
  for (const Case& c : cases) {
    AttentionProblem p = softmax_problem(VariantId::moba, c.shape, true);
    p.moba = {c.block_size, c.top_k};
    Inputs in;
    for (int attempt = 0;; ++attempt) {  // regenerate inputs with near-tied gates
      in = make_inputs(p, "random", ++seed);
      if (min_gate_gap(p, in) >= 1e-3) break;
      ASSERT_LT(attempt, 50) << "no inputs without near-ties for " << p.describe();
    }
    expect_match(cuda_run(p, in), reference(p, in), p);
  }
}

// ---- MLA --------------------------------------------------------------------------------------

AttentionProblem mla_problem(ProblemShape shape, MlaParams mla, bool causal) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::mla);
  p.shape = shape;
  p.shape.kv_heads = 1;
  p.shape.head_dim = mla.nope_dim + mla.rope_dim;
  p.mla = mla;
  p.causal = causal;
  return p;
}

TEST(CudaMla, BothFormsMatchReferenceAndEachOther) {
  REQUIRE_CUDA_DEVICE();
  struct Case {
    ProblemShape shape;  // head_dim is set from the MLA dims
    MlaParams mla;       // kv_lora_rank, rope_dim, nope_dim
    bool causal;
  };
  const std::vector<Case> cases = {
      {{1, 4, 1, 37, 37, 0, 24}, {48, 8, 24, false}, true},
      {{2, 3, 1, 1, 130, 0, 32}, {64, 16, 32, false}, true},  // decode: split-KV on the latent
      {{1, 2, 1, 50, 20, 0, 16}, {32, 8, 16, false}, true},   // Lq > Lk: fully masked rows
      {{1, 4, 1, 20, 45, 0, 40}, {40, 8, 24, false}, false},
      {{1, 2, 1, 3, 70, 0, 128}, {512, 64, 128, false}, true},  // DeepSeek-V3 widths (576 keys)
  };
  uint64_t seed = 500;
  for (const Case& c : cases) {
    AttentionProblem p = mla_problem(c.shape, c.mla, c.causal);
    const Inputs in = make_inputs(p, "random", ++seed);
    p.mla.absorbed = false;
    const RunResult naive = cuda_run(p, in);
    expect_match(naive, reference(p, in), p);
    p.mla.absorbed = true;
    const RunResult absorbed = cuda_run(p, in);
    expect_match(absorbed, reference(p, in), p);
    SCOPED_TRACE("naive vs absorbed on CUDA");
    EXPECT_TRUE(all_close("o", absorbed.o, naive.o));
    EXPECT_TRUE(all_close("lse", absorbed.lse, naive.lse));
  }
}

// ---- Gated DeltaNet -----------------------------------------------------------------------------

Inputs gated_delta_inputs(const AttentionProblem& p, uint64_t seed, bool initial_state) {
  Inputs in = make_inputs(p, "random", seed);
  if (initial_state) {
    const ProblemShape& s = p.shape;
    Tensor init({s.batch, s.heads, s.head_dim, s.v_head_dim});
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> normal(0.0f, 0.1f);
    for (float& x : init.span()) x = normal(gen);
    in.set("initial_state", std::move(init));
  }
  return in;
}

TEST(CudaGatedDelta, BothFormsMatchReferenceAndEachOther) {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 600;
  for (int64_t L : {1, 63, 64, 65, 150}) {
    for (bool init : {false, true}) {
      for (bool l2norm : {false, true}) {
        AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
        p.shape = {2, 3, 3, L, L, 32, 48};
        p.gated_delta.qk_l2norm = l2norm;
        const Inputs in = gated_delta_inputs(p, ++seed, init);
        SCOPED_TRACE("L=" + std::to_string(L) + (init ? " initial_state" : "") +
                     (l2norm ? " qk_l2norm" : ""));
        p.gated_delta.recurrent = true;
        const RunResult recurrent = cuda_run(p, in);
        expect_match(recurrent, reference(p, in), p);
        p.gated_delta.recurrent = false;
        const RunResult chunked = cuda_run(p, in);
        expect_match(chunked, reference(p, in), p);
        SCOPED_TRACE("chunked vs recurrent on CUDA");
        EXPECT_TRUE(all_close("o", chunked.o, recurrent.o));
        EXPECT_TRUE(all_close("final_state", *chunked.final_state, *recurrent.final_state));
      }
    }
  }
}

TEST(CudaGatedDelta, WideHeadsAndSmallChunks) {
  REQUIRE_CUDA_DEVICE();
  struct Case {
    ProblemShape shape;
    int64_t chunk;
  };
  const std::vector<Case> cases = {
      {{1, 2, 2, 130, 130, 128, 96}, 64},  // Dk = 128, three full 32-column slices
      {{1, 2, 2, 77, 77, 256, 70}, 64},    // widest key head, ragged column slice
      {{1, 2, 2, 100, 100, 48, 40}, 16},   // chunk smaller than 64
      {{1, 1, 1, 9, 9, 20, 12}, 1},        // chunk of one token equals the recurrence
  };
  uint64_t seed = 700;
  for (const Case& c : cases) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
    p.shape = c.shape;
    p.gated_delta.chunk_size = c.chunk;
    p.gated_delta.qk_l2norm = true;
    const Inputs in = gated_delta_inputs(p, ++seed, true);
    for (bool recurrent : {false, true}) {
      p.gated_delta.recurrent = recurrent;
      expect_match(cuda_run(p, in), reference(p, in), p);
    }
  }
}

// ---- the backend's contract -----------------------------------------------------------------

// The backend's one table of variants covers the registry, and each variant has the hooks its
// capabilities need (no device needed).
TEST(CudaVariants, TableCoversEveryVariantWithTheHooksItsCapabilitiesNeed) {
  EXPECT_EQ(cuda::cuda_variants().size(), variants().size());
  for (const VariantInfo& v : variants()) {
    const cuda::CudaVariant* cv = cuda::find_cuda_variant(v.id);
    if (!cuda::cuda_refusal(v.id).empty()) {
      // No kernels: the backend must refuse it, with the entry's reason.
      EXPECT_EQ(cv, nullptr) << v.name;
      EXPECT_NE(cuda::cuda_refusal(v.id).find("no CUDA kernels"), std::string_view::npos);
      continue;
    }
    ASSERT_NE(cv, nullptr) << v.name;
    EXPECT_EQ(cv->id, v.id) << v.name;
    const bool qkv = v.input_family == InputFamily::qkv;
    const AttentionProblem p = AttentionProblem::defaults(v.id);
    EXPECT_TRUE(!v.has_selection() || cv->decode_select) << v.name;
    EXPECT_TRUE(qkv || cv->launch) << v.name;
    EXPECT_TRUE(v.cache(p).layout != CacheLayout::latent || cv->paged_step) << v.name;
    EXPECT_TRUE(v.map_kind != MapKind::softmax || qkv || cv->map_scores) << v.name;
  }
}

TEST(CudaBackend, IsRegisteredAndSaysWhatItCannotDo) {
  REQUIRE_CUDA_DEVICE();
  ASSERT_NE(find_backend("cuda"), nullptr);
  EXPECT_TRUE(find_backend("cuda")->available().ok);
  auto backend = make_backend("cuda");
  AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
  p.shape.head_dim = 512;
  const Support s = backend->supports(p);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.why_not.find("256"), std::string::npos) << s.why_not;
  AttentionProblem moba = AttentionProblem::defaults(VariantId::moba);
  moba.shape.kv_len = moba.shape.q_len = 4096;
  moba.moba = {16, 40};
  EXPECT_FALSE(backend->supports(moba).ok);
}

TEST(CudaBackend, RejectsBadInputsAndHonoursCancel) {
  REQUIRE_CUDA_DEVICE();
  auto backend = make_backend("cuda");
  AttentionProblem p = softmax_problem(VariantId::dense, {1, 2, 2, 16, 16, 16, 16}, true);
  Inputs in = make_inputs(p, "random", 1);
  Inputs missing = in;
  missing.tensors.erase("v");
  EXPECT_THROW(backend->run(p, missing, {}, {}), Error);
  CancelToken cancel;
  cancel.cancel();
  EXPECT_THROW(backend->run(p, in, {}, cancel), Cancelled);
  // Still usable after a cancelled run.
  expect_match(backend->run(p, in, {}, {}), reference(p, in), p);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  attnscope::cuda::register_cuda_backend();
  return RUN_ALL_TESTS();
}
