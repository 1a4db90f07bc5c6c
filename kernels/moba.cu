// Mixture of Block Attention (MoonshotAI MoBA) on the GPU: mean keys per block, a per-query gate
// with its own top-k that never materializes the [Lq, blocks] score matrix, then attention over the
// selected blocks as two parts (own block, past blocks) merged by log-sum-exp
// (docs/variants/moba.md).
//
// Versions (none has run on a GPU yet):
//   v1: block means: one block per (batch, kv head, key block), threads over Dk, fp32 sums.
//       Selection: one warp per query row (moba_select_row in moba_select.cuh, shared with paged
//       decode); each lane scores the past blocks c = lane, lane + 32, ... and keeps its own
//       sorted best-(top_k - 1) list; the warp then pops the global best top_k - 1 by shuffle
//       argmax (ties to the lower block index), sorts them ascending and appends the own block.
//       When every past block fits (top_k - 1 >= own), no scoring at all.
//       Attention: one warp per query row, lanes over keys for scores and over columns for values,
//       K/V read straight from global memory (no shared-memory reuse yet). A later version should
//       collect the rows that chose each block and run dense tiles (flash-moba's
//       collect-and-densify).
#include "common.cuh"
#include "cuda_check.hpp"
#include "moba.hpp"
#include "moba_select.cuh"

namespace attnscope::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kDvChunks = kMobaMaxDv / 32;

// k̄[b, kvh, c, :] = mean of the keys of block c over its real length (the last may be short).
__global__ void moba_block_means_kernel(const float* __restrict__ k, float* __restrict__ mean,
                                        int Hkv, int Lk, int Dk, int block_size, int blocks) {
  const int c = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int lo = c * block_size, hi = min(Lk, lo + block_size);
  const float* kb = k + (int64_t(b) * Hkv + kvh) * Lk * Dk;
  float* out = mean + ((int64_t(b) * Hkv + kvh) * blocks + c) * Dk;
  for (int d = threadIdx.x; d < Dk; d += blockDim.x) {
    float sum = 0.0f;
    for (int j = lo; j < hi; ++j) sum += kb[int64_t(j) * Dk + d];
    out[d] = sum / float(hi - lo);
  }
}

// Selection row [top_k] of one query: past blocks ascending, then the own block, then -1.
__global__ void __launch_bounds__(kThreads)
    moba_select_kernel(const MobaArgs a, const float* __restrict__ mean, int blocks) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + warp;
  if (row >= int64_t(a.B) * a.H * a.Lq) return;  // whole warp
  const int i = int(row % a.Lq);
  const int h = int((row / a.Lq) % a.H), b = int(row / (int64_t(a.Lq) * a.H));
  const int kvh = h / (a.H / a.Hkv);
  int32_t* out = a.selection + row * a.top_k;
  const int64_t pos = int64_t(i) + a.Lk - a.Lq;  // bottom-right causal position
  if (pos < 0) {                                 // sees no key: nothing selected
    for (int x = lane; x < a.top_k; x += 32) out[x] = -1;
    return;
  }
  const float* qi = a.q + row * a.Dk;  // broadcast reads
  const float* mb = mean + (int64_t(b) * a.Hkv + kvh) * blocks * a.Dk;
  auto gate_score = [&](int c) {  // q · k̄_c, no scale
    float s = 0.0f;
    for (int d = 0; d < a.Dk; ++d) s = fmaf(qi[d], mb[int64_t(c) * a.Dk + d], s);
    return s;
  };
  moba_select_row(int(pos / a.block_size), a.top_k, lane, gate_score, out);
}

// Online-softmax state of one query row held by one warp; lane owns columns lane + 32 * t.
struct RowState {
  float m = ATTNSCOPE_NEG_INF, l = 0.0f;
  float acc[kDvChunks] = {};
};

// Adds keys [j_begin, j_end) (all visible) of one kv head to the row's state.
__device__ void attend_keys(RowState& st, const float* qi, const float* kbh, const float* vbh,
                            int j_begin, int j_end, int Dk, int Dv, float scale, int lane) {
  for (int jb = j_begin; jb < j_end; jb += 32) {
    const int j = jb + lane;
    float s = ATTNSCOPE_NEG_INF;
    if (j < j_end) {
      const float* kj = kbh + int64_t(j) * Dk;
      float dot = 0.0f;
      for (int d = 0; d < Dk; ++d) dot = fmaf(qi[d], kj[d], dot);
      s = dot * scale;
    }
    const float m_new = fmaxf(st.m, warp_max(s));
    const float p = (s == ATTNSCOPE_NEG_INF) ? 0.0f : expf(s - m_new);
    const float alpha = rescale(st.m, m_new);
    st.l = st.l * alpha + warp_sum(p);
    st.m = m_new;
#pragma unroll
    for (int t = 0; t < kDvChunks; ++t) st.acc[t] *= alpha;
    const int n = min(32, j_end - jb);
    for (int jj = 0; jj < n; ++jj) {
      const float pj = __shfl_sync(kFullMask, p, jj);
      const float* vrow = vbh + int64_t(jb + jj) * Dv;
#pragma unroll
      for (int t = 0; t < kDvChunks; ++t) {
        const int e = lane + 32 * t;
        if (e < Dv) st.acc[t] = fmaf(pj, vrow[e], st.acc[t]);
      }
    }
  }
}

__device__ __forceinline__ float state_lse(const RowState& st) {
  return st.l > 0.0f ? st.m + logf(st.l) : ATTNSCOPE_NEG_INF;
}

// o, lse of one row: own block (keys j <= pos) and selected past blocks, merged by log-sum-exp.
__global__ void __launch_bounds__(kThreads) moba_attention_kernel(const MobaArgs a) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + warp;
  if (row >= int64_t(a.B) * a.H * a.Lq) return;
  const int i = int(row % a.Lq);
  const int h = int((row / a.Lq) % a.H), b = int(row / (int64_t(a.Lq) * a.H));
  const int kvh = h / (a.H / a.Hkv);
  float* o = a.o + row * a.Dv;
  const int64_t pos = int64_t(i) + a.Lk - a.Lq;
  if (pos < 0) {  // fully masked row
    for (int e = lane; e < a.Dv; e += 32) o[e] = 0.0f;
    if (lane == 0) a.lse[row] = ATTNSCOPE_NEG_INF;
    return;
  }
  const float* qi = a.q + row * a.Dk;
  const float* kbh = a.k + (int64_t(b) * a.Hkv + kvh) * a.Lk * a.Dk;
  const float* vbh = a.v + (int64_t(b) * a.Hkv + kvh) * a.Lk * a.Dv;
  const int own = int(pos / a.block_size);
  const int32_t* sel = a.selection + row * a.top_k;

  RowState past;  // the selected complete past blocks
  for (int x = 0; x < a.top_k; ++x) {
    const int c = sel[x];  // same value in every lane
    if (c < 0 || c == own) continue;
    attend_keys(past, qi, kbh, vbh, c * a.block_size, min(a.Lk, (c + 1) * a.block_size), a.Dk, a.Dv,
                a.scale, lane);
  }
  RowState mine;  // the own block up to and including the query's position
  attend_keys(mine, qi, kbh, vbh, own * a.block_size, int(pos) + 1, a.Dk, a.Dv, a.scale, lane);

  const float lse_past = state_lse(past), lse_own = state_lse(mine);
  const LseMerge w = lse_merge(lse_past, lse_own);
  const float wp = past.l > 0.0f ? w.wa / past.l : 0.0f;  // normalizes the part, then weighs it
  const float wo = mine.l > 0.0f ? w.wb / mine.l : 0.0f;
#pragma unroll
  for (int t = 0; t < kDvChunks; ++t) {
    const int e = lane + 32 * t;
    if (e < a.Dv) o[e] = wp * past.acc[t] + wo * mine.acc[t];
  }
  if (lane == 0) a.lse[row] = w.lse;
}

constexpr int kSelectWarps = 4;

// selection[b, h, :] for the query of sequence b at position lengths[b] - 1.
__global__ void __launch_bounds__(kSelectWarps * 32)
    paged_moba_select_kernel(const float* __restrict__ q, const float* const* __restrict__ means,
                             const int32_t* __restrict__ lengths, int B, int H, int Hkv, int Dk,
                             int block_size, int top_k, int32_t* __restrict__ selection) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kSelectWarps + warp;
  if (row >= int64_t(B) * H) return;  // whole warp
  const int b = int(row / H), h = int(row % H);
  const int kvh = h / (H / Hkv);
  int32_t* out = selection + row * top_k;
  const int len = lengths[b];
  if (len <= 0) {
    for (int x = lane; x < top_k; x += 32) out[x] = -1;
    return;
  }
  const float* qi = q + row * Dk;  // broadcast reads
  const float* mb = means[b];      // [blocks][Hkv][Dk]; null when no block is complete
  auto gate_score = [&](int c) {   // q · k̄_c, no scale
    const float* mc = mb + (int64_t(c) * Hkv + kvh) * Dk;
    float s = 0.0f;
    for (int d = 0; d < Dk; ++d) s = fmaf(qi[d], mc[d], s);
    return s;
  };
  moba_select_row((len - 1) / block_size, top_k, lane, gate_score, out);
}

}  // namespace

void moba_forward(const MobaArgs& a, cudaStream_t stream, const CancelToken& cancel) {
  const int64_t rows = int64_t(a.B) * a.H * a.Lq;
  if (rows == 0) return;
  if (a.Dv > kMobaMaxDv) throw Error("moba: v_head_dim above 256 is not supported on CUDA");
  const int blocks = (a.Lk + a.block_size - 1) / a.block_size;
  if (a.top_k - 1 > kMobaMaxRanked && a.top_k < blocks) {
    throw Error("moba: top_k above 33 (with fewer than top_k blocks) is not supported on CUDA");
  }
  StreamScratch<float> mean(int64_t(a.B) * a.Hkv * blocks * a.Dk, stream);  // [B, Hkv, blocks, Dk]
  if (blocks > 0) {
    moba_block_means_kernel<<<dim3(unsigned(blocks), unsigned(a.Hkv), unsigned(a.B)), 128, 0,
                              stream>>>(a.k, mean.get(), a.Hkv, a.Lk, a.Dk, a.block_size, blocks);
    check_launch("moba_block_means_kernel");
  }
  cancel.throw_if_cancelled();
  const unsigned grid = unsigned((rows + kWarps - 1) / kWarps);
  moba_select_kernel<<<grid, kThreads, 0, stream>>>(a, mean.get(), blocks);
  check_launch("moba_select_kernel");
  cancel.throw_if_cancelled();
  moba_attention_kernel<<<grid, kThreads, 0, stream>>>(a);
  check_launch("moba_attention_kernel");
}

void launch_paged_moba_select(const float* q, const float* const* means, const int32_t* lengths,
                              int B, int H, int Hkv, int Dk, int block_size, int top_k,
                              int32_t* selection, cudaStream_t stream) {
  const int64_t rows = int64_t(B) * H;
  if (rows == 0 || top_k < 1) return;
  if (Hkv < 1 || H % Hkv != 0 || block_size < 1) throw Error("paged_moba_select: bad shape");
  const unsigned grid = unsigned((rows + kSelectWarps - 1) / kSelectWarps);
  paged_moba_select_kernel<<<grid, kSelectWarps * 32, 0, stream>>>(q, means, lengths, B, H, Hkv, Dk,
                                                                   block_size, top_k, selection);
  check_launch("paged_moba_select_kernel");
}

}  // namespace attnscope::cuda
