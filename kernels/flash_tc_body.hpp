// The thread-block body of the bf16/fp16 tensor-core attention forward (FlashAttention-2, Dao
// 2023), written once for two executors: the CUDA kernel in flash_attention_tc.cu (Ops = inline
// PTX) and a host emulation of one thread block (tests/kernels_host, Ops = 128 threads + the PTX
// fragment tables), so that every index, mask and softmax step of the kernel also runs on a CPU.
//
// Plain C++ (no CUDA headers): the element type is carried as raw 16-bit patterns, and everything
// that needs the hardware (barriers, shuffles, ldmatrix, mma.sync, cp.async, packing to bf16/fp16)
// goes through `Ops`. Ops must provide, per thread:
//   int thread()                           threadIdx.x in [0, kTcThreads)
//   void sync()                            __syncthreads()
//   float shfl_xor(float x, int mask)      __shfl_xor_sync over the full warp
//   void cp_async16(void* smem, const void* global, bool valid)
//                                          16-byte cp.async.cg; zero-fills when !valid
//   void cp_commit(); template <int N> void cp_wait()
//                                          cp.async.commit_group / wait_group N
//   void ldmatrix_x4(uint32_t (&r)[4], const uint16_t* row)        ldmatrix .x4
//   void ldmatrix_x4_trans(uint32_t (&r)[4], const uint16_t* row)  ldmatrix .x4.trans
//   void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
//                                          d += a b, mma.sync.m16n8k16.row.col f32 += 16-bit
//   uint32_t pack(float lo, float hi)      two floats to 16-bit values (RNE), lo in the low half
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ATTNSCOPE_TC_FN __device__ __forceinline__
#define ATTNSCOPE_TC_UNROLL _Pragma("unroll")
#else
#define ATTNSCOPE_TC_FN inline
#define ATTNSCOPE_TC_UNROLL
#endif

namespace attnscope::cuda::tc {

inline constexpr int kTcWarps = 4;
inline constexpr int kTcThreads = kTcWarps * 32;
inline constexpr int kTcRows = kTcWarps * 16;  // query rows per block: one m16 slab per warp
inline constexpr int kTcKeys = 64;             // keys per K/V tile
// Shared-memory rows are padded by 8 elements (16 bytes): the 8 row addresses of one ldmatrix
// phase then fall in 8 different 16-byte bank groups (row strides 144 or 272 bytes).
inline constexpr int kTcPad = 8;

// attnscope::KeyMask's rule in kernel-friendly form (the same fields as DeviceMask).
struct TcMask {
  int causal = 0;
  int64_t offset = 0;  // kv_len - q_len: query row i sits at key position i + offset
  int64_t window = 0;  // 0 = unlimited
  int64_t sinks = 0;
};

struct TcArgs {
  const uint16_t* q = nullptr;  // [B, H, Lq, D] bf16/fp16 bit patterns
  const uint16_t* k = nullptr;  // [B, Hkv, Lk, D]
  const uint16_t* v = nullptr;  // [B, Hkv, Lk, D]
  float* o = nullptr;           // [B, H, Lq, D] fp32
  float* lse = nullptr;         // [B, H, Lq] natural log, -inf for a row that sees no key
  int B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0;
  float scale_log2 = 0;  // softmax scale * log2(e): the kernel's exponentials are exp2
  TcMask mask;
};

// The softmax scale in log2 units, rounded once to fp32 (the kernel computes exp2(s·this − m)).
constexpr float tc_scale_log2(double scale) {
  return float(scale * 1.4426950408889634);
}

// Shared memory of one block: the Q tile and two stages of K and V tiles, 16-bit elements.
constexpr long tc_smem_bytes(int D) {
  return 2L * (D + kTcPad) * (kTcRows + 4L * kTcKeys);
}

template <class T>
ATTNSCOPE_TC_FN T tc_min(T a, T b) {
  return a < b ? a : b;
}
template <class T>
ATTNSCOPE_TC_FN T tc_max(T a, T b) {
  return a < b ? b : a;
}

// KeyMask::visible: causal hides j > p; a window keeps p - window < j; sinks keep j < sinks.
ATTNSCOPE_TC_FN bool tc_visible(const TcMask& m, int64_t i, int64_t j) {
  if (!m.causal) return true;
  const int64_t p = i + m.offset;
  if (j > p) return false;
  if (m.window <= 0) return true;
  return j > p - m.window || j < m.sinks;
}

// The key tiles a block of query rows [i0, i1) visits, in order: the tiles holding sink keys,
// then the tiles from the top row's window start to the last key the bottom row sees. Every tile
// outside these is hidden from every row (whole-tile skipping); when the two runs touch they are
// one run [0, end). count = 0: no row of the block sees any key.
struct TcTiles {
  int sink_tiles = 0;    // tiles [0, sink_tiles) first
  int first_window = 0;  // then tiles [first_window, end)
  int end = 0;
  int count = 0;
  ATTNSCOPE_TC_FN int tile(int idx) const {
    return idx < sink_tiles ? idx : first_window + (idx - sink_tiles);
  }
};

ATTNSCOPE_TC_FN TcTiles tc_tiles(const TcMask& m, int i0, int i1, int Lk) {
  int64_t end_key = Lk;  // one past the last key any row sees
  if (m.causal) end_key = tc_max<int64_t>(0, tc_min<int64_t>(Lk, int64_t(i1 - 1) + m.offset + 1));
  TcTiles t;
  t.end = int((end_key + kTcKeys - 1) / kTcKeys);
  t.count = t.end;
  if (!m.causal || m.window <= 0 || t.end == 0) return t;
  // The top row has the lowest position, so its window starts lowest.
  const int64_t lo = tc_max<int64_t>(0, int64_t(i0) + m.offset - m.window + 1);
  const int first_window = int(tc_min<int64_t>(lo / kTcKeys, t.end));
  const int64_t sink_keys = tc_min<int64_t>(tc_max<int64_t>(m.sinks, 0), end_key);
  const int sink_tiles = int((sink_keys + kTcKeys - 1) / kTcKeys);
  if (sink_tiles >= first_window) return t;  // the runs touch: [0, end)
  t.sink_tiles = sink_tiles;
  t.first_window = first_window;
  t.count = sink_tiles + (t.end - first_window);
  return t;
}

// Whether every real row [i0, i1) sees every key of the tile [j0, j0 + kTcKeys): then the tile
// needs no per-element mask. Edge tiles (the diagonal, window borders, partial sinks, the last
// tile past Lk) are masked element by element.
ATTNSCOPE_TC_FN bool tc_tile_full(const TcMask& m, int i0, int i1, int j0, int Lk) {
  const int64_t j1 = int64_t(j0) + kTcKeys;
  if (j1 > Lk) return false;
  if (!m.causal) return true;
  const int64_t pmin = int64_t(i0) + m.offset, pmax = int64_t(i1 - 1) + m.offset;
  if (j1 - 1 > pmin) return false;  // a key in the top row's future
  if (m.window <= 0) return true;
  return int64_t(j0) > pmax - m.window || j1 <= m.sinks;
}

// One block: query rows [q_tile * kTcRows, +kTcRows) of head h in batch b, all of them against the
// key tiles tc_tiles lists. Warp w owns rows w*16 .. w*16+15; in the mma fragments a thread holds
// rows g and g + 8 (g = lane / 4) and, per 8-column tile, columns 2 (lane % 4) and +1.
template <int D, class Ops>
ATTNSCOPE_TC_FN void flash_tc_block(const TcArgs& a, const Ops& ops, int q_tile, int h, int b,
                                    unsigned char* smem) {
  static_assert(D % 16 == 0, "head dim must be a multiple of the mma k (16)");
  constexpr int BM = kTcRows, BN = kTcKeys, S = D + kTcPad;  // S: smem row stride (elements)
  constexpr int kChunks = D / 8;                             // 16-byte chunks per row
  constexpr float kNegInf = -__builtin_inff();
  uint16_t* const qs = reinterpret_cast<uint16_t*>(smem);  // [BM][S]
  uint16_t* const ks = qs + BM * S;                        // [2][BN][S] key tiles
  uint16_t* const vs = ks + 2 * BN * S;                    // [2][BN][S] value tiles

  const int tid = ops.thread();
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t4 = lane % 4;   // mma fragment row group, thread in group
  const int lm = lane / 8, lr = lane % 8;  // ldmatrix: which 8x8 matrix, which row of it
  const int i0 = q_tile * BM;
  const int i1 = tc_min(a.Lq, i0 + BM);
  const int kvh = h / (a.H / a.Hkv);  // contiguous GQA groups, as repeat_interleave
  const uint16_t* const qg = a.q + (int64_t(b) * a.H + h) * a.Lq * D;
  const uint16_t* const kg = a.k + (int64_t(b) * a.Hkv + kvh) * a.Lk * D;
  const uint16_t* const vg = a.v + (int64_t(b) * a.Hkv + kvh) * a.Lk * D;
  const TcTiles tiles = tc_tiles(a.mask, i0, i1, a.Lk);

  // Online softmax state of the thread's two rows (in log2 units) and the unnormalized output:
  // acc[n][0..1] row g, acc[n][2..3] row g + 8, columns n*8 + 2*t4 + {0, 1}.
  float m_run[2] = {kNegInf, kNegInf};
  float l_run[2] = {0.0f, 0.0f};  // this thread's partial row sums; the quad is summed at the end
  float acc[D / 8][4];
  ATTNSCOPE_TC_UNROLL
  for (int n = 0; n < D / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  // Key/value rows j0 .. j0+BN-1 into stage `st`; rows past Lk are zero-filled, so that the
  // masked probabilities (exact zeros) never multiply stale shared memory that could hold NaN.
  auto load_kv = [&](int tile, int st) {
    const int j0 = tile * BN;
    uint16_t* const kd = ks + st * BN * S;
    uint16_t* const vd = vs + st * BN * S;
    for (int c = tid; c < BN * kChunks; c += kTcThreads) {
      const int r = c / kChunks, col = (c % kChunks) * 8;
      const bool valid = j0 + r < a.Lk;
      const int64_t src = int64_t(valid ? j0 + r : 0) * D + col;
      ops.cp_async16(kd + r * S + col, kg + src, valid);
      ops.cp_async16(vd + r * S + col, vg + src, valid);
    }
  };

  if (tiles.count > 0) {
    // The Q tile (rows past Lq zero-filled) travels in the same cp.async group as the first K/V.
    for (int c = tid; c < BM * kChunks; c += kTcThreads) {
      const int r = c / kChunks, col = (c % kChunks) * 8;
      const bool valid = i0 + r < a.Lq;
      ops.cp_async16(qs + r * S + col, qg + int64_t(valid ? i0 + r : 0) * D + col, valid);
    }
    load_kv(tiles.tile(0), 0);
    ops.cp_commit();

    uint32_t qf[D / 16][4];  // the warp's 16 query rows as mma A fragments, loaded once
    for (int it = 0; it < tiles.count; ++it) {
      const int st = it & 1;
      // Prefetch the next tile into the other stage (its last readers passed the barrier at the
      // end of the previous iteration), then wait for this tile's group only.
      if (it + 1 < tiles.count) {
        load_kv(tiles.tile(it + 1), st ^ 1);
        ops.cp_commit();
        ops.template cp_wait<1>();
      } else {
        ops.template cp_wait<0>();
      }
      ops.sync();  // every thread's copies of this stage have landed

      if (it == 0) {
        // A fragment rows: lanes 0-15 address rows 0-15 at column k, lanes 16-31 at column k + 8.
        ATTNSCOPE_TC_UNROLL
        for (int kk = 0; kk < D / 16; ++kk) {
          ops.ldmatrix_x4(qf[kk], qs + (warp * 16 + (lane % 16)) * S + kk * 16 + (lane / 16) * 8);
        }
      }

      // S = Q Kᵀ for the warp's 16 rows x BN keys. The B operand (k = head dim, n = key) is K
      // row-major, which is exactly ldmatrix's non-transposed layout; one x4 load covers two
      // 8-key n-tiles: matrices (keys +0, d +0), (keys +0, d +8), (keys +8, d +0), (keys +8, d +8).
      const int j0 = tiles.tile(it) * BN;
      const uint16_t* const kt = ks + st * BN * S;
      const uint16_t* const vt = vs + st * BN * S;
      float s[BN / 8][4];
      ATTNSCOPE_TC_UNROLL
      for (int n = 0; n < BN / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      ATTNSCOPE_TC_UNROLL
      for (int kk = 0; kk < D / 16; ++kk) {
        ATTNSCOPE_TC_UNROLL
        for (int np = 0; np < BN / 16; ++np) {
          uint32_t kb[4];
          ops.ldmatrix_x4(kb, kt + (np * 16 + lr + (lm / 2) * 8) * S + kk * 16 + (lm % 2) * 8);
          ops.mma(s[2 * np], qf[kk], kb[0], kb[1]);
          ops.mma(s[2 * np + 1], qf[kk], kb[2], kb[3]);
        }
      }

      // Scale into log2 units; the per-element mask only on edge tiles.
      const bool full = tc_tile_full(a.mask, i0, i1, j0, a.Lk);
      ATTNSCOPE_TC_UNROLL
      for (int n = 0; n < BN / 8; ++n) {
        ATTNSCOPE_TC_UNROLL
        for (int e = 0; e < 4; ++e) {
          float x = s[n][e] * a.scale_log2;
          if (!full) {
            const int i = i0 + warp * 16 + g + (e / 2) * 8;
            const int j = j0 + n * 8 + 2 * t4 + (e % 2);
            if (j >= a.Lk || !tc_visible(a.mask, i, j)) x = kNegInf;
          }
          s[n][e] = x;
        }
      }

      // Online softmax (Milakov & Gimelshein 2018): the quad of 4 threads sharing a row agrees
      // on its new maximum; a row that has seen nothing yet keeps m = -inf and uses 0 as the
      // reference, so exp2(-inf - 0) = 0 everywhere and no NaN can appear.
      ATTNSCOPE_TC_UNROLL
      for (int rr = 0; rr < 2; ++rr) {
        float mx = kNegInf;
        ATTNSCOPE_TC_UNROLL
        for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * rr], s[n][2 * rr + 1]));
        mx = fmaxf(mx, ops.shfl_xor(mx, 1));
        mx = fmaxf(mx, ops.shfl_xor(mx, 2));
        const float m_new = fmaxf(m_run[rr], mx);
        const float m_ref = m_new == kNegInf ? 0.0f : m_new;
        const float alpha = exp2f(m_run[rr] - m_ref);  // 0 while the row had seen nothing
        m_run[rr] = m_new;
        float sum = 0.0f;
        ATTNSCOPE_TC_UNROLL
        for (int n = 0; n < BN / 8; ++n) {
          s[n][2 * rr] = exp2f(s[n][2 * rr] - m_ref);
          s[n][2 * rr + 1] = exp2f(s[n][2 * rr + 1] - m_ref);
          sum += s[n][2 * rr] + s[n][2 * rr + 1];
        }
        l_run[rr] = l_run[rr] * alpha + sum;
        ATTNSCOPE_TC_UNROLL
        for (int n = 0; n < D / 8; ++n) {
          acc[n][2 * rr] *= alpha;
          acc[n][2 * rr + 1] *= alpha;
        }
      }

      // O += P V. P's accumulator layout is already the A fragment layout of the next mma
      // (FlashAttention-2's register reuse): keys 16kk .. 16kk+15 are n-tiles 2kk and 2kk+1.
      // The B operand (k = key, n = head dim) is V transposed, hence ldmatrix .trans; one x4 load
      // covers two 8-column n-tiles: matrices (keys +0, d +0), (keys +8, d +0), (keys +0, d +8),
      // (keys +8, d +8).
      ATTNSCOPE_TC_UNROLL
      for (int kk = 0; kk < BN / 16; ++kk) {
        const uint32_t pa[4] = {ops.pack(s[2 * kk][0], s[2 * kk][1]),
                                ops.pack(s[2 * kk][2], s[2 * kk][3]),
                                ops.pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                ops.pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
        ATTNSCOPE_TC_UNROLL
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vb[4];
          ops.ldmatrix_x4_trans(vb,
                                vt + (kk * 16 + lr + (lm % 2) * 8) * S + dp * 16 + (lm / 2) * 8);
          ops.mma(acc[2 * dp], pa, vb[0], vb[1]);
          ops.mma(acc[2 * dp + 1], pa, vb[2], vb[3]);
        }
      }
      ops.sync();  // every warp is done with this stage before it is refilled
    }
  }

  // Normalize and write fp32 o and the natural-log lse. A row that saw no key (l = 0) gets o = 0
  // and lse = -inf (docs/conventions.md).
  ATTNSCOPE_TC_UNROLL
  for (int rr = 0; rr < 2; ++rr) {
    float l = l_run[rr];
    l += ops.shfl_xor(l, 1);
    l += ops.shfl_xor(l, 2);
    const int i = i0 + warp * 16 + g + rr * 8;
    if (i >= a.Lq) continue;
    const int64_t row = (int64_t(b) * a.H + h) * a.Lq + i;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* const orow = a.o + row * D;
    ATTNSCOPE_TC_UNROLL
    for (int n = 0; n < D / 8; ++n) {
      orow[n * 8 + 2 * t4] = acc[n][2 * rr] * inv;
      orow[n * 8 + 2 * t4 + 1] = acc[n][2 * rr + 1] * inv;
    }
    if (t4 == 0) {
      constexpr float kLn2 = 0.693147180559945309f;
      a.lse[row] = l > 0.0f ? (m_run[rr] + log2f(l)) * kLn2 : kNegInf;
    }
  }
}

}  // namespace attnscope::cuda::tc
