// The fast CPU backend beyond the oracle sweep (test_variants.cpp covers it there): both MLA forms
// forced, results independent of the thread count, long-context memory bounds, and cancellation.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <thread>

#include "attnscope/cpu_backend.hpp"
#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "oracle.hpp"

using namespace attnscope;

namespace {

void expect_close(const Tensor& got, const Tensor& want, const char* what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float g = got.data()[i], w = want.data()[i];
    if (std::isinf(w)) {
      ASSERT_EQ(g, w) << what << " at " << i;
      continue;
    }
    ASSERT_LE(std::fabs(g - w), 1e-5 * (1 + std::fabs(w)))
        << what << " at " << i << ": " << g << " vs " << w;
  }
}

void expect_identical(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  for (int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_TRUE(a.data()[i] == b.data()[i] || (std::isnan(a.data()[i]) && std::isnan(b.data()[i])))
        << what << " differs at " << i;
  }
}

AttentionProblem small(VariantId id) {
  AttentionProblem p = AttentionProblem::defaults(id);
  p.shape = {2, 8, 2, 300, 300, 32, 24};
  switch (id) {
    case VariantId::mla:
      p.shape.kv_heads = 1;
      p.mla = {48, 8, 24, false};
      p.shape.head_dim = 32;
      p.causal = true;
      break;
    case VariantId::swa:
      p.swa = {37, 3};
      break;
    case VariantId::moba:
      p.moba = {16, 3};
      break;
    case VariantId::gated_delta:
      p.shape.kv_heads = 8;
      p.gated_delta.qk_l2norm = true;
      break;
    case VariantId::dense:
      p.causal = true;
      break;
    case VariantId::nsa:
      p.nsa = {16, 4, 37};
      break;
    case VariantId::dsa:
      p.shape.kv_heads = 1;
      p.mla = {48, 8, 24, true};
      p.shape.head_dim = 32;
      p.dsa = {50, 4, 16, false};
      break;
  }
  return p;
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

}  // namespace

TEST(CpuBackend, BothFormsMatchTheReference) {
  for (bool decode : {false, true}) {
    AttentionProblem p = small(VariantId::mla);
    if (decode) p.shape.q_len = 2;
    const Inputs in = make_inputs(p, "local", 4);
    const RunResult want = make_backend("reference")->run(p, in, {}, {});
    for (auto form :
         {CpuOptions::Form::naive, CpuOptions::Form::absorbed, CpuOptions::Form::automatic}) {
      CpuOptions o;
      o.form = form;
      const RunResult got = make_cpu_backend(o)->run(p, in, {}, {});
      SCOPED_TRACE(int(form));
      expect_close(got.o, want.o, "o");
      expect_close(got.lse, want.lse, "lse");
    }
  }
}

TEST(CpuBackend, ResultsDoNotDependOnTheThreadCount) {
  // Every task writes its own slice and key splits depend on the shape only, so 1, 2 and 3
  // threads give bit-identical outputs.
  for (const VariantInfo& v : variants()) {
    SCOPED_TRACE(std::string(v.name));
    for (int64_t q_len : {int64_t{300}, int64_t{1}}) {
      AttentionProblem p = small(v.id);
      if (v.id != VariantId::gated_delta) p.shape.q_len = q_len;
      if (v.id == VariantId::gated_delta && q_len == 1) continue;
      p.shape.kv_len = v.id == VariantId::gated_delta ? p.shape.q_len : 4000;
      const Inputs in = make_inputs(p, "needle", 9);
      CpuOptions one;
      one.threads = 1;
      const RunResult base = make_cpu_backend(one)->run(p, in, {}, {});
      for (int threads : {2, 3}) {
        CpuOptions o;
        o.threads = threads;
        const RunResult r = make_cpu_backend(o)->run(p, in, {}, {});
        expect_identical(r.o, base.o, "o");
        expect_identical(r.lse, base.lse, "lse");
        if (base.selection) {
          ASSERT_TRUE(r.selection);
          for (int64_t i = 0; i < base.selection->numel(); ++i) {
            ASSERT_EQ(r.selection->data()[i], base.selection->data()[i]);
          }
        }
        if (base.final_state) expect_identical(*r.final_state, *base.final_state, "final_state");
        ASSERT_EQ(r.extra.size(), base.extra.size());
        for (const auto& [name, t] : base.extra)
          expect_identical(r.extra.at(name), t, name.c_str());
        ASSERT_EQ(r.extra_index.size(), base.extra_index.size());
        for (const auto& [name, t] : base.extra_index) {
          const IndexTensor& got = r.extra_index.at(name);
          ASSERT_EQ(got.shape(), t.shape()) << name;
          for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(got.data()[i], t.data()[i]) << name;
        }
      }
    }
  }
}

TEST(CpuBackend, LongContextsStayWithinTheirMemoryBound) {
  // 128K tokens of sliding-window attention (the same tiled kernel as causal dense, which would
  // take minutes here), and a 32K causal dense prefill: the L x L matrix (64 GiB and 4 GiB) is
  // never held. Extra memory beyond inputs and outputs must stay a few hundred MiB at most.
  struct Case {
    VariantId id;
    int64_t L, H, D;
  };
  for (const Case c :
       {Case{VariantId::swa, 131072, 8, 128}, Case{VariantId::dense, 32768, 1, 64}}) {
    AttentionProblem p = AttentionProblem::defaults(c.id);
    p.causal = true;
    p.shape = {1, c.H, c.H, c.L, c.L, c.D, c.D};
    p.swa = {256, 4};
    const Inputs in = make_inputs(p, "random", 1);
    const long before = peak_rss_mb();
    const RunResult r = make_backend("cpu")->run(p, in, {}, {});
    const long tensors_mb = (r.o.bytes() + r.lse.bytes()) >> 20;
    const long extra = peak_rss_mb() - before - tensors_mb;
    EXPECT_LT(extra, 400) << p.describe() << ": " << extra << " MiB beyond inputs and outputs";
    for (int64_t i = 0; i < r.lse.numel(); i += 997) EXPECT_TRUE(std::isfinite(r.lse.data()[i]));
  }
}

TEST(CpuBackend, LongRunsCanBeCancelled) {
  AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
  p.causal = false;
  p.shape = {1, 8, 8, 8192, 8192, 128, 128};  // several seconds of work
  const Inputs in = make_inputs(p, "random", 2);
  CancelToken cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.cancel();
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(make_backend("cpu")->run(p, in, {}, cancel), Cancelled);
  stopper.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 5.0) << "cancellation took too long";
}

TEST(CpuBackend, MobaBlockLargerThanTheSequenceIsCausalDense) {
  // One block that holds every key: each query attends to its own block causally, i.e. causal
  // dense attention. Buffers must be sized by the block's real length, not block_size.
  AttentionProblem moba = AttentionProblem::defaults(VariantId::moba);
  moba.shape = {1, 4, 2, 77, 77, 16, 16};
  moba.moba = {int64_t{1} << 40, 3};
  AttentionProblem dense = moba;
  dense.variant = VariantId::dense;
  dense.causal = true;
  const Inputs in = make_inputs(moba, "random", 12);
  const RunResult want = make_backend("reference")->run(dense, in, {}, {});
  for (const char* name : {"reference", "cpu"}) {
    SCOPED_TRACE(name);
    const RunResult got = make_backend(name)->run(moba, in, {}, {});
    expect_close(got.o, want.o, "o");
    expect_close(got.lse, want.lse, "lse");
  }
}

// Decode's few-rows kernels have a separate path per value width (whole 16-float vectors or a
// masked last one, up to 128 columns at a time) and per group size (rows in fours, then 3, 2, 1):
// every combination against the reference, past one key tile so the online softmax rescales.
TEST(CpuBackend, DecodeMatchesTheReferenceForEveryValueWidthAndGroup) {
  for (const int64_t dv : {8, 16, 40, 128, 136, 200}) {
    for (const int64_t group : {1, 2, 3, 4, 6, 7}) {
      AttentionProblem p = AttentionProblem::defaults(VariantId::dense);
      p.shape = {2, 2 * group, 2, 1, 700, 24, dv};
      p.causal = true;
      const Inputs in = make_inputs(p, "random", 7 + dv + group);
      const RunResult want = make_backend("reference")->run(p, in, {}, {});
      const RunResult got = make_cpu_backend({})->run(p, in, {}, {});
      SCOPED_TRACE(p.describe());
      expect_close(got.o, want.o, "o");
    }
  }
}

// Gated DeltaNet's recurrent form runs S in 32-column panels with a deferred decay: every panel
// path (several panels, a masked last one of 8 or 24 columns, Dk not a multiple of 4), an initial
// state, and both ways the decay is applied (into the running factor, or into the values once the
// factor would drop below 1e-10: strong decays, and decays of exactly 0) against the reference.
TEST(CpuBackend, GatedDeltaRecurrentPanelsMatchTheReference) {
  for (const auto& [dk, dv] : {std::pair<int64_t, int64_t>{13, 72}, {128, 40}, {32, 56}}) {
    for (const double g_scale : {1.0, 30.0, 200.0}) {
      AttentionProblem p = AttentionProblem::defaults(VariantId::gated_delta);
      p.shape = {1, 2, 2, 300, 300, dk, dv};
      p.gated_delta.recurrent = true;
      p.gated_delta.qk_l2norm = true;
      Inputs in = attnscope_tests::random_inputs(p, 11 + dk, /*initial_state=*/true);
      Tensor g = in.at("g");  // log decays; scaled up, the running product underflows fast
      for (int64_t i = 0; i < g.numel(); ++i) {
        g.data()[i] = i % 97 == 50 ? -150.0f : float(g.data()[i] * g_scale);  // e^-150 = 0 in fp32
      }
      in.set("g", g);
      const RunResult want = make_backend("reference")->run(p, in, {}, {});
      const RunResult got = make_cpu_backend({})->run(p, in, {}, {});
      SCOPED_TRACE(p.describe() + " g x" + std::to_string(g_scale));
      expect_close(got.o, want.o, "o");
      ASSERT_TRUE(got.final_state && want.final_state);
      expect_close(*got.final_state, *want.final_state, "final_state");
    }
  }
}
