// Tiled online-softmax attention forward (FlashAttention-style) for dense MHA/GQA/MQA and
// sliding-window attention with sinks, fp32 in and out; the core that MLA and split-KV reuse.
//
// Versions (speed-ups to be measured on a GPU; none of these has run on one yet):
//   v1: one block of 4 warps per (batch, query head, tile of 32 query rows, slice of <= 256 output
//       columns, key split). Key/value tiles of 32 keys go through shared memory; for scores each
//       lane owns one key (dot product over Dk against the query row, read by broadcast), for the
//       value product each lane owns output columns. Running max / sum per row in registers.
//       Tiles the mask hides completely are skipped, the per-element mask runs only on edge tiles.
//       Plain fp32 FMAs, no tensor cores: the correctness baseline for later tuned versions.
#include <algorithm>

#include "common.cuh"
#include "cuda_check.hpp"

namespace attnscope::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = kFlashRows / kWarps;  // 8
constexpr int kDvChunks = kFlashDvSlice / 32;      // output columns per lane: lane + 32 * t

static_assert(kFlashKeys == 32, "one key per lane in the score phase");

// Odd row stride for the K tile: lanes read K[lane][d] for the same d, and an odd stride puts the
// 32 rows in 32 different shared-memory banks.
__host__ __device__ inline int k_tile_stride(int Dk) {
  return (Dk % 2 == 0) ? Dk + 1 : Dk;
}

// How the mask treats a whole tile of keys [j0, j1) for query rows [i0, i1).
enum class TileMask { hidden, full, partial };

__device__ TileMask classify_tile(const DeviceMask& m, int i0, int i1, int j0, int j1) {
  if (!m.causal) return TileMask::full;
  const int64_t pmin = int64_t(i0) + m.offset, pmax = int64_t(i1 - 1) + m.offset;
  if (j0 > pmax) return TileMask::hidden;  // entirely in every row's future
  const bool windowed = m.window > 0;
  // Entirely before every row's window, and no sink key in the tile.
  if (windowed && int64_t(j1 - 1) <= pmin - m.window && j0 >= m.sinks) return TileMask::hidden;
  const bool past_all = int64_t(j1 - 1) <= pmin;  // no key in any row's future
  const bool inside_windows = !windowed || int64_t(j0) > pmax - m.window || int64_t(j1) <= m.sinks;
  return (past_all && inside_windows) ? TileMask::full : TileMask::partial;
}

__global__ void __launch_bounds__(kThreads)
    flash_attention_kernel(const FlashArgs a, int q_tiles, int dv_slices) {
  extern __shared__ float smem[];
  const int k_stride = k_tile_stride(a.Dk);
  float* ks = smem;                          // [kFlashKeys][k_stride] key tile
  float* vs = smem + kFlashKeys * k_stride;  // [kFlashKeys][dv_w] value tile (column slice)

  const int q_tile = blockIdx.x / dv_slices;
  const int dv_slice = blockIdx.x % dv_slices;
  const int h = blockIdx.y;
  const int b = blockIdx.z % a.B;
  const int split = blockIdx.z / a.B;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  const int i0 = q_tile * kFlashRows, i1 = min(a.Lq, i0 + kFlashRows);
  const int e0 = dv_slice * kFlashDvSlice, dv_w = min(kFlashDvSlice, a.Dv - e0);
  const int kvh = h / (a.H / a.Hkv);  // contiguous GQA groups, as repeat_interleave

  // Key range of this block: its split, cut at the last key any of its rows can see.
  const int kb = split * a.split_len;
  int ke = min(a.Lk, kb + a.split_len);
  if (a.mask.causal) {
    // One past the last key the tile's bottom row (i1 - 1, the one that sees most) can see.
    const int64_t seen_end = int64_t(i1 - 1) + a.mask.offset + 1;
    if (seen_end < int64_t(ke)) ke = int(seen_end < int64_t(kb) ? kb : seen_end);
  }

  const float* qbh = a.q + (int64_t(b) * a.H + h) * a.Lq * a.Dk;
  const float* kbh = a.k + (int64_t(b) * a.Hkv + kvh) * a.Lk * a.Dk;
  const float* vbh = a.v + (int64_t(b) * a.Hkv + kvh) * a.Lk * a.Dv;

  // Per-row online-softmax state: running max m, running sum l, unnormalized output acc.
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDvChunks];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = ATTNSCOPE_NEG_INF;
    l[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < kDvChunks; ++t) acc[r][t] = 0.0f;
  }

  for (int j0 = kb; j0 < ke; j0 += kFlashKeys) {
    const int j1 = min(ke, j0 + kFlashKeys);
    const TileMask tm = classify_tile(a.mask, i0, i1, j0, j1);  // uniform over the block
    if (tm == TileMask::hidden) continue;

    __syncthreads();  // every warp is done with the previous tile
    for (int idx = threadIdx.x; idx < kFlashKeys * a.Dk; idx += kThreads) {
      const int r = idx / a.Dk, d = idx % a.Dk;
      ks[r * k_stride + d] = (j0 + r < j1) ? kbh[int64_t(j0 + r) * a.Dk + d] : 0.0f;
    }
    for (int idx = threadIdx.x; idx < kFlashKeys * dv_w; idx += kThreads) {
      const int r = idx / dv_w, e = idx % dv_w;
      vs[r * dv_w + e] = (j0 + r < j1) ? vbh[int64_t(j0 + r) * a.Dv + e0 + e] : 0.0f;
    }
    __syncthreads();

#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = i0 + warp * kRowsPerWarp + r;
      if (i >= i1) continue;  // warp-uniform
      // Score of this lane's key j.
      const int j = j0 + lane;
      float s = ATTNSCOPE_NEG_INF;
      if (j < j1 && (tm == TileMask::full || key_visible(a.mask, i, j))) {
        const float* qi = qbh + int64_t(i) * a.Dk;  // same address in every lane: a broadcast
        const float* kj = ks + lane * k_stride;
        float dot = 0.0f;
        for (int d = 0; d < a.Dk; ++d) dot = fmaf(qi[d], kj[d], dot);
        s = dot * a.scale;
      }
      // Online softmax update of row i with this tile.
      const float m_new = fmaxf(m[r], warp_max(s));
      if (m_new == ATTNSCOPE_NEG_INF) continue;  // row has seen no visible key yet
      const float p = (s == ATTNSCOPE_NEG_INF) ? 0.0f : expf(s - m_new);
      const float alpha = rescale(m[r], m_new);
      l[r] = l[r] * alpha + warp_sum(p);
      m[r] = m_new;
#pragma unroll
      for (int t = 0; t < kDvChunks; ++t) acc[r][t] *= alpha;
      // acc += P V: key jj's probability is broadcast from lane jj.
      for (int jj = 0; jj < kFlashKeys; ++jj) {
        const float pj = __shfl_sync(kFullMask, p, jj);
        const float* vrow = vs + jj * dv_w;
#pragma unroll
        for (int t = 0; t < kDvChunks; ++t) {
          const int e = lane + 32 * t;
          if (e < dv_w) acc[r][t] = fmaf(pj, vrow[e], acc[r][t]);
        }
      }
    }
  }

  // Normalize and write. A row that saw no key (l = 0): o = 0, lse = -inf (docs/conventions.md).
  const int64_t rows_total = int64_t(a.B) * a.H * a.Lq;
  float* o_split = a.o + int64_t(split) * rows_total * a.Dv;
  float* lse_split = a.lse + int64_t(split) * rows_total;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int i = i0 + warp * kRowsPerWarp + r;
    if (i >= i1) continue;
    const int64_t row = (int64_t(b) * a.H + h) * a.Lq + i;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
    for (int t = 0; t < kDvChunks; ++t) {
      const int e = lane + 32 * t;
      if (e < dv_w) o_split[row * a.Dv + e0 + e] = acc[r][t] * inv;
    }
    if (dv_slice == 0 && lane == 0) {
      lse_split[row] = l[r] > 0.0f ? m[r] + logf(l[r]) : ATTNSCOPE_NEG_INF;
    }
  }
}

}  // namespace

size_t flash_smem_bytes(int Dk) {
  return sizeof(float) * size_t(kFlashKeys) * size_t(k_tile_stride(Dk) + kFlashDvSlice);
}

void launch_flash_attention(const FlashArgs& a, cudaStream_t stream) {
  if (a.B == 0 || a.H == 0 || a.Lq == 0 || a.Dv == 0) return;
  if (a.Dk < 1 || a.Dk > kFlashMaxHeadDim) throw Error("flash_attention: head_dim out of range");
  if (a.H % a.Hkv != 0) throw Error("flash_attention: heads must be a multiple of kv_heads");
  if (a.splits < 1 || a.split_len < 1 || int64_t(a.splits) * a.split_len < a.Lk) {
    throw Error("flash_attention: key splits do not cover kv_len");
  }
  const int q_tiles = (a.Lq + kFlashRows - 1) / kFlashRows;
  const int dv_slices = (a.Dv + kFlashDvSlice - 1) / kFlashDvSlice;
  const size_t smem = flash_smem_bytes(a.Dk);
  // Beyond 48 KiB a kernel must opt in to its dynamic shared memory (every sm_80+ GPU allows it).
  check_cuda(cudaFuncSetAttribute(flash_attention_kernel,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "cudaFuncSetAttribute(flash_attention_kernel)");
  const dim3 grid(unsigned(q_tiles) * unsigned(dv_slices), unsigned(a.H),
                  unsigned(a.B) * unsigned(a.splits));
  flash_attention_kernel<<<grid, kThreads, smem, stream>>>(a, q_tiles, dv_slices);
  check_launch("flash_attention_kernel");
}

size_t max_shared_memory_per_block() {
  int device = 0, bytes = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  return size_t(bytes);
}

}  // namespace attnscope::cuda
