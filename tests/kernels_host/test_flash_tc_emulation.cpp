// The bf16/fp16 tensor-core kernel's block code (kernels/flash_tc_body.hpp) run on CPU threads that
// play a thread block: one std::thread per CUDA thread, warp-collective operations (shuffles,
// ldmatrix, mma.sync) exchanged through per-warp barriers and evaluated by the PTX ISA's fragment
// tables, cp.async as copies deferred until the issuing thread's wait_group. What this verifies
// without a GPU: every index, tile enumeration, mask, online-softmax step and fragment hand-over of
// the kernel, bounds of every global and shared access, and that no thread reads a shared-memory
// chunk whose asynchronous copy is still pending. What it cannot: the PTX itself, the hardware's
// own accumulation order and timing, and races the OS scheduler happens not to expose.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attnscope/lowp.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "flash_tc_body.hpp"
#include "lowp_check.hpp"

using namespace attnscope;
using lowp_test::Case;
using lowp_test::problem_of;
namespace tc = attnscope::cuda::tc;

namespace {

// ---- the emulated block ----------------------------------------------------------------------

struct Range {
  const unsigned char* lo;
  const unsigned char* hi;
};

// Violations are collected (any thread may find one) and reported by the test afterwards.
struct Faults {
  std::mutex mu;
  std::vector<std::string> list;
  void add(const std::string& what) {
    std::lock_guard lock(mu);
    if (list.size() < 10) list.push_back(what);
  }
};

struct WarpExchange {
  std::barrier<> bar{32};
  const uint16_t* addr[32] = {};
  uint32_t a[32][4] = {};
  uint32_t b[32][2] = {};
  float c[32][4] = {};
  float f[32] = {};
};

struct EmuBlock {
  explicit EmuBlock(size_t smem_bytes)
      : smem(smem_bytes + 16), pending((smem_bytes + 15) / 16), bytes(smem_bytes) {}
  std::vector<unsigned char> smem;        // over-allocated by 16 for 16-byte alignment
  std::vector<std::atomic<int>> pending;  // per 16-byte chunk: copies issued, not yet landed
  size_t bytes;
  std::barrier<> block{tc::kTcThreads};
  WarpExchange warps[tc::kTcWarps];
  std::vector<Range> globals;  // readable global ranges (q, k, v)
  Faults faults;
  unsigned char* base() {
    auto p = reinterpret_cast<uintptr_t>(smem.data());
    return reinterpret_cast<unsigned char*>((p + 15) & ~uintptr_t(15));
  }
};

struct Copy {
  unsigned char* dst;
  const unsigned char* src;
  bool valid;
};

// Per-thread cp.async state: the open group and the committed ones, oldest first.
struct AsyncState {
  std::vector<Copy> open;
  std::deque<std::vector<Copy>> groups;
};

// Fragment tables of mma.sync.m16n8k16 with 16-bit A/B and fp32 C/D (PTX ISA, "Matrix Fragments
// for mma.m16n8k16"): g = lane / 4, t = lane % 4.
//   A (16x16, row): register r holds row g + 8 (r % 2), columns 2t + 8 (r / 2) + {0, 1}.
//   B (16x8, col):  register r holds rows (k) 2t + 8 r + {0, 1}, column (n) g.
//   C/D (16x8):     element e holds row g + 8 (e / 2), column 2t + (e % 2).
template <Precision P>
struct EmuOps {
  EmuBlock* blk;
  int tid;
  AsyncState* async;

  static float to_float(uint16_t bits) {
    return P == Precision::bf16 ? bf16_bits_to_float(bits) : fp16_bits_to_float(bits);
  }
  static uint16_t to_bits(float x) {
    return P == Precision::bf16 ? float_to_bf16_bits(x) : float_to_fp16_bits(x);
  }
  int lane() const { return tid % 32; }
  WarpExchange& warp() const { return blk->warps[tid / 32]; }

  size_t smem_offset(const void* p, size_t len, const char* what) const {
    const auto* c = static_cast<const unsigned char*>(p);
    const unsigned char* base = blk->base();
    if (c < base || c + len > base + blk->bytes) {
      blk->faults.add(std::string(what) + ": shared address out of bounds");
      return 0;
    }
    const size_t off = size_t(c - base);
    if (off % 16 != 0) blk->faults.add(std::string(what) + ": shared address not 16-byte aligned");
    return off;
  }
  void check_landed(const void* p, const char* what) const {
    const size_t off = smem_offset(p, 16, what);
    if (blk->pending[off / 16].load() != 0) {
      blk->faults.add(std::string(what) + ": reads a chunk whose cp.async has not landed");
    }
  }

  int thread() const { return tid; }
  void sync() const { blk->block.arrive_and_wait(); }
  float shfl_xor(float x, int mask) const {
    WarpExchange& w = warp();
    w.f[lane()] = x;
    w.bar.arrive_and_wait();
    const float y = w.f[lane() ^ mask];
    w.bar.arrive_and_wait();
    return y;
  }
  void cp_async16(void* smem, const void* global, bool valid) const {
    const auto* dst = static_cast<const unsigned char*>(smem);
    if (dst < blk->base() || dst + 16 > blk->base() + blk->bytes) {
      blk->faults.add("cp.async: shared address out of bounds");
      return;  // a fault is reported; the copy must not corrupt the emulator itself
    }
    const size_t off = smem_offset(smem, 16, "cp.async");
    const auto* src = static_cast<const unsigned char*>(global);
    if (reinterpret_cast<uintptr_t>(src) % 16 != 0) {
      blk->faults.add("cp.async: global address not 16-byte aligned");
    }
    bool inside = false;
    for (const Range& r : blk->globals) inside = inside || (src >= r.lo && src + 16 <= r.hi);
    if (!inside) {
      blk->faults.add("cp.async: global address outside q, k and v");
      valid = false;
    }
    blk->pending[off / 16].fetch_add(1);
    async->open.push_back({static_cast<unsigned char*>(smem), src, valid});
  }
  void cp_commit() const {
    async->groups.push_back(std::move(async->open));
    async->open.clear();
  }
  template <int N>
  void cp_wait() const {
    // The latest moment the hardware may complete a group: copies land only here, so a read that
    // is not behind the right wait_group and barrier sees stale data or trips check_landed.
    while (int(async->groups.size()) > N) {
      for (const Copy& c : async->groups.front()) {
        if (c.valid) {
          std::memcpy(c.dst, c.src, 16);
        } else {
          std::memset(c.dst, 0, 16);
        }
        blk->pending[size_t(c.dst - blk->base()) / 16].fetch_sub(1);
      }
      async->groups.pop_front();
    }
  }
  // ldmatrix .x4: lanes 8m .. 8m+7 give the row addresses of matrix m; lane l receives, of each
  // matrix, row l / 4, elements 2 (l % 4) and +1 (trans: of the transposed matrix).
  void ldmatrix(uint32_t (&r)[4], const uint16_t* row, bool trans) const {
    WarpExchange& w = warp();
    const auto* c = reinterpret_cast<const unsigned char*>(row);
    if (c < blk->base() || c + 16 > blk->base() + blk->bytes) {
      blk->faults.add("ldmatrix: shared address out of bounds");
      row = reinterpret_cast<const uint16_t*>(blk->base());
    }
    check_landed(row, "ldmatrix");
    w.addr[lane()] = row;
    w.bar.arrive_and_wait();
    const int l = lane();
    for (int m = 0; m < 4; ++m) {
      uint16_t lo, hi;
      if (!trans) {
        const uint16_t* src = w.addr[8 * m + l / 4];
        lo = src[2 * (l % 4)];
        hi = src[2 * (l % 4) + 1];
      } else {
        lo = w.addr[8 * m + 2 * (l % 4)][l / 4];
        hi = w.addr[8 * m + 2 * (l % 4) + 1][l / 4];
      }
      r[m] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
    w.bar.arrive_and_wait();
  }
  void ldmatrix_x4(uint32_t (&r)[4], const uint16_t* row) const { ldmatrix(r, row, false); }
  void ldmatrix_x4_trans(uint32_t (&r)[4], const uint16_t* row) const { ldmatrix(r, row, true); }

  void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) const {
    WarpExchange& w = warp();
    const int l = lane();
    for (int i = 0; i < 4; ++i) w.a[l][i] = a[i], w.c[l][i] = d[i];
    w.b[l][0] = b0, w.b[l][1] = b1;
    w.bar.arrive_and_wait();
    // Rebuild the operands from all lanes' fragments, then compute this lane's four outputs.
    float A[16][16], B[16][8];
    for (int src = 0; src < 32; ++src) {
      const int g = src / 4, t = src % 4;
      for (int r = 0; r < 4; ++r) {
        for (int half = 0; half < 2; ++half) {
          A[g + 8 * (r % 2)][2 * t + 8 * (r / 2) + half] =
              to_float(uint16_t(w.a[src][r] >> (16 * half)));
        }
      }
      for (int r = 0; r < 2; ++r) {
        for (int half = 0; half < 2; ++half) {
          B[2 * t + 8 * r + half][g] = to_float(uint16_t(w.b[src][r] >> (16 * half)));
        }
      }
    }
    const int g = l / 4, t = l % 4;
    float out[4];
    for (int e = 0; e < 4; ++e) {
      const int row = g + 8 * (e / 2), col = 2 * t + (e % 2);
      double sum = w.c[l][e];  // products of 16-bit values are exact; the sum is rounded once
      for (int k = 0; k < 16; ++k) sum += double(A[row][k]) * double(B[k][col]);
      out[e] = float(sum);
    }
    w.bar.arrive_and_wait();
    for (int e = 0; e < 4; ++e) d[e] = out[e];
  }
  uint32_t pack(float lo, float hi) const {
    return uint32_t(to_bits(lo)) | (uint32_t(to_bits(hi)) << 16);
  }
};

struct EmulatedRun {
  RunResult result;
  std::vector<std::string> faults;
};

// Runs every block of the grid through flash_tc_block with 128 emulated threads.
template <int D, Precision P>
EmulatedRun emulate(const AttentionProblem& p, const Inputs& in) {
  const ProblemShape& s = p.shape;
  auto bits_of = [](const Tensor& t) {
    std::vector<uint16_t> out(size_t(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) out[size_t(i)] = EmuOps<P>::to_bits(t.data()[i]);
    return out;
  };
  const std::vector<uint16_t> q = bits_of(in.at("q")), k = bits_of(in.at("k")),
                              v = bits_of(in.at("v"));
  EmulatedRun run;
  RunResult& r = run.result;
  // Garbage in the outputs, so a row the kernel forgets to write cannot pass.
  r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim}, NAN);
  r.lse = Tensor({s.batch, s.heads, s.q_len}, NAN);

  tc::TcArgs a;
  a.q = q.data(), a.k = k.data(), a.v = v.data(), a.o = r.o.data(), a.lse = r.lse.data();
  a.B = int(s.batch), a.H = int(s.heads), a.Hkv = int(s.kv_heads);
  a.Lq = int(s.q_len), a.Lk = int(s.kv_len);
  a.scale_log2 = tc::tc_scale_log2(p.effective_scale());
  const KeyMask m = KeyMask::of(p);
  a.mask = {m.causal ? 1 : 0, m.offset, m.window, m.sinks};

  EmuBlock blk(size_t(tc::tc_smem_bytes(D)));
  auto range = [](const std::vector<uint16_t>& x) {
    const auto* lo = reinterpret_cast<const unsigned char*>(x.data());
    return Range{lo, lo + x.size() * sizeof(uint16_t)};
  };
  blk.globals = {range(q), range(k), range(v)};
  const int q_tiles = (a.Lq + tc::kTcRows - 1) / tc::kTcRows;

  std::vector<std::thread> threads;
  for (int tid = 0; tid < tc::kTcThreads; ++tid) {
    threads.emplace_back([&, tid] {
      AsyncState async;
      const EmuOps<P> ops{&blk, tid, &async};
      for (int b = 0; b < a.B; ++b) {
        for (int h = 0; h < a.H; ++h) {
          for (int qt = 0; qt < q_tiles; ++qt) {
            // Uninitialized shared memory on a GPU is garbage: NaN bit patterns here.
            if (tid == 0) std::memset(blk.base(), 0xff, blk.bytes);
            blk.block.arrive_and_wait();
            tc::flash_tc_block<D>(a, ops, qt, h, b, blk.base());
            if (!async.open.empty() || !async.groups.empty()) {
              blk.faults.add("cp.async copies still pending at the end of the block");
            }
            blk.block.arrive_and_wait();
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  run.faults = blk.faults.list;
  return run;
}

template <Precision P>
EmulatedRun emulate_any(const AttentionProblem& p, const Inputs& in) {
  switch (p.shape.head_dim) {
    case 64:
      return emulate<64, P>(p, in);
    case 128:
      return emulate<128, P>(p, in);
  }
  ADD_FAILURE() << "head_dim " << p.shape.head_dim << " is not instantiated";
  return {};
}

// ---- tests -------------------------------------------------------------------------------------

void check_case(const Case& c, Precision precision, uint64_t seed) {
  const AttentionProblem p = problem_of(c, precision);
  SCOPED_TRACE(p.describe() + " seed " + std::to_string(seed));
  ASSERT_FALSE(p.validate()) << *p.validate();
  const Inputs in = make_inputs(p, "random", seed);
  const Inputs rounded = round_inputs(in, precision);
  const EmulatedRun got = precision == Precision::bf16 ? emulate_any<Precision::bf16>(p, in)
                                                       : emulate_any<Precision::fp16>(p, in);
  for (const std::string& f : got.faults) ADD_FAILURE() << f;
  const RunResult ref = lowp_test::reference_on(p, rounded);
  const RunResult naive = naive_lowp_reference(p, in);
  EXPECT_TRUE(lowp_test::output_within_twice_naive(got.result.o, ref.o, naive.o));
  std::printf("  %s: o error %.3g, naive %.3g\n", p.describe().c_str(),
              lowp_test::max_abs_diff(got.result.o, ref.o),
              lowp_test::max_abs_diff(naive.o, ref.o));
  EXPECT_TRUE(lowp_test::lse_within_fp32_accumulation(got.result.lse, ref.lse, p, rounded));
}

// The shapes exercise every path of the block code: two query tiles with a ragged last one, a
// ragged last key tile, GQA/MQA head mapping, the causal diagonal, Lq != Lk both ways (rows that
// see nothing), windows with skipped middle tiles and sink tiles, and both head dims.
TEST(FlashTcEmulation, Bf16MatchesTheReferenceWithinTwiceNaive) {
  const std::vector<Case> cases = {
      {{1, 2, 1, 70, 90, 64, 64}, false},          // MQA, ragged tiles, non-causal
      {{1, 4, 2, 70, 150, 64, 64}, true},          // GQA 2, Lq < Lk: the diagonal crosses tiles
      {{1, 2, 2, 150, 40, 64, 64}, true},          // Lq > Lk: 110 rows, a whole block, blind
      {{1, 2, 2, 150, 150, 64, 64}, true, 20, 3},  // window + sinks: middle tiles skipped
      {{1, 1, 1, 33, 70, 128, 128}, true},         // D = 128
  };
  uint64_t seed = 900;
  for (const Case& c : cases) check_case(c, Precision::bf16, ++seed);
}

TEST(FlashTcEmulation, Fp16MatchesTheReferenceWithinTwiceNaive) {
  const std::vector<Case> cases = {
      {{2, 2, 1, 65, 65, 64, 64}, true},          // batch 2, one row past a full tile
      {{1, 4, 4, 40, 200, 64, 64}, true, 64, 4},  // sinks tile + window tiles, Lq < Lk
      {{1, 1, 1, 20, 20, 128, 128}, true, 1, 0},  // W = 1: only itself (naive is exact there)
  };
  uint64_t seed = 950;
  for (const Case& c : cases) check_case(c, Precision::fp16, ++seed);
}

// The tile plan against KeyMask itself, exhaustively over small configurations: a skipped tile
// holds no visible (row, key) pair, and a tile called full has every pair visible.
TEST(FlashTcEmulation, TilePlanMatchesKeyMask) {
  std::mt19937 rng(7);
  int checked = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    AttentionProblem p = AttentionProblem::defaults(VariantId::swa);
    p.shape.q_len = 1 + int64_t(rng() % 300);
    p.shape.kv_len = 1 + int64_t(rng() % 300);
    const int kind = int(rng() % 3);  // 0 non-causal dense, 1 causal dense, 2 swa
    p.variant = kind == 2 ? VariantId::swa : VariantId::dense;
    p.causal = kind != 0;
    p.swa.window = 1 + int64_t(rng() % 200);
    p.swa.sinks = rng() % 2 ? 0 : int64_t(rng() % 100);
    const KeyMask m = KeyMask::of(p);
    const tc::TcMask tm{m.causal ? 1 : 0, m.offset, m.window, m.sinks};
    const int Lq = int(p.shape.q_len), Lk = int(p.shape.kv_len);
    for (int i0 = 0; i0 < Lq; i0 += tc::kTcRows) {
      const int i1 = std::min(Lq, i0 + tc::kTcRows);
      const tc::TcTiles plan = tc::tc_tiles(tm, i0, i1, Lk);
      std::vector<bool> listed((Lk + tc::kTcKeys - 1) / tc::kTcKeys, false);
      int last = -1;
      for (int idx = 0; idx < plan.count; ++idx) {
        const int t = plan.tile(idx);
        ASSERT_GT(t, last) << "tiles in increasing order";
        ASSERT_LT(t, int(listed.size()));
        listed[size_t(t)] = true;
        last = t;
      }
      for (int t = 0; t < int(listed.size()); ++t) {
        const int j0 = t * tc::kTcKeys, j1 = std::min(Lk, j0 + tc::kTcKeys);
        bool any = false, all = j1 - j0 == tc::kTcKeys;
        for (int i = i0; i < i1; ++i) {
          for (int j = j0; j < j1; ++j) {
            const bool vis = m.visible(i, j);
            ASSERT_EQ(vis, tc::tc_visible(tm, i, j));
            any = any || vis;
            all = all && vis;
          }
        }
        if (any) {
          ASSERT_TRUE(listed[size_t(t)]) << "tile " << t << " skipped but visible";
        }
        if (tc::tc_tile_full(tm, i0, i1, j0, Lk)) {
          ASSERT_TRUE(all) << "tile " << t << " not full";
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

}  // namespace
