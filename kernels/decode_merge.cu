// Split-KV for decode-like shapes (few query rows, long cache) and the log-sum-exp merge of the
// partial results, so that a single query still spreads over every SM (Flash-Decoding's idea).
//
// Versions (none has run on a GPU yet):
//   v1: the flash kernel computes each key split into its own (o, lse) partial; one thread per
//       output element merges the splits by log-sum-exp, reading the per-row lse of every split.
//       Rows that no split saw stay o = 0, lse = -inf (no NaN from -inf - (-inf)).
#include <algorithm>

#include "common.cuh"
#include "cuda_check.hpp"

namespace attnscope::cuda {
namespace {

constexpr int kMergeThreads = 256;

// o[row, e] = Σ_s w_s o_s[row, e] with w_s = exp(lse_s - lse), lse = log Σ_s exp(lse_s).
__global__ void merge_partials_kernel(const float* __restrict__ o_part,
                                      const float* __restrict__ lse_part, int splits, int64_t rows,
                                      int Dv, float* __restrict__ o, float* __restrict__ lse) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * Dv) return;
  const int64_t row = idx / Dv;
  const int e = int(idx % Dv);
  float m = ATTNSCOPE_NEG_INF;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, lse_part[s * rows + row]);
  if (m == ATTNSCOPE_NEG_INF) {  // no split saw a key
    o[idx] = 0.0f;
    if (e == 0) lse[row] = ATTNSCOPE_NEG_INF;
    return;
  }
  float sum = 0.0f, acc = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float ls = lse_part[s * rows + row];
    if (ls == ATTNSCOPE_NEG_INF) continue;  // that split saw nothing; its o is 0
    const float w = expf(ls - m);
    sum += w;
    acc = fmaf(w, o_part[(s * rows + row) * Dv + e], acc);
  }
  o[idx] = acc / sum;
  if (e == 0) lse[row] = m + logf(sum);
}

}  // namespace

int choose_kv_splits(int B, int H, int Lq, int Lk, int Dv, int sm_count) {
  const int64_t q_tiles = (Lq + kFlashRows - 1) / kFlashRows;
  const int64_t dv_slices = (Dv + kFlashDvSlice - 1) / kFlashDvSlice;
  const int64_t blocks = q_tiles * dv_slices * H * B;
  if (blocks >= sm_count) return 1;
  // Aim for two blocks per SM, but give each split at least 4 key tiles of work.
  const int64_t want = (2 * int64_t(sm_count) + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, Lk / (4 * kFlashKeys));
  return int(std::clamp<int64_t>(std::min(want, most), 1, 64));
}

void launch_merge_partials(const float* o_part, const float* lse_part, int splits, int64_t rows,
                           int Dv, float* o, float* lse, cudaStream_t stream) {
  const int64_t n = rows * Dv;
  if (n == 0) return;
  const int64_t blocks = (n + kMergeThreads - 1) / kMergeThreads;
  merge_partials_kernel<<<unsigned(blocks), kMergeThreads, 0, stream>>>(o_part, lse_part, splits,
                                                                        rows, Dv, o, lse);
  check_launch("merge_partials_kernel");
}

void attention_forward(FlashArgs a, int splits, cudaStream_t stream) {
  const int64_t rows = int64_t(a.B) * a.H * a.Lq;
  if (splits <= 1 || a.Lk <= kFlashKeys) {
    a.splits = 1;
    a.split_len = std::max(a.Lk, 1);
    launch_flash_attention(a, stream);
    return;
  }
  splits = std::min(splits, 65535 / std::max(a.B, 1));  // grid.z = B * splits
  // Split lengths are whole key tiles, so no tile straddles two splits.
  const int per = (a.Lk + splits - 1) / splits;
  a.split_len = (per + kFlashKeys - 1) / kFlashKeys * kFlashKeys;
  a.splits = (a.Lk + a.split_len - 1) / a.split_len;
  StreamScratch<float> o_part(int64_t(a.splits) * rows * a.Dv, stream);  // [splits, rows, Dv]
  StreamScratch<float> lse_part(int64_t(a.splits) * rows, stream);       // [splits, rows]
  float* o = a.o;
  float* lse = a.lse;
  a.o = o_part.get();
  a.lse = lse_part.get();
  launch_flash_attention(a, stream);
  launch_merge_partials(o_part.get(), lse_part.get(), a.splits, rows, a.Dv, o, lse, stream);
}

}  // namespace attnscope::cuda
