// Multi-head latent attention (DeepSeek-V2/V3) on the GPU in both forms of docs/variants/mla.md:
// naive (expand K/V per head with cuBLAS, then the flash kernel) and absorbed (MQA over the latent
// cache).
//
// Versions (none has run on a GPU yet):
//   v1: every projection is a strided-batched cuBLAS SGEMM in pedantic fp32 (one call per batch
//       entry, batched over heads). Absorbed: q̃ = w_ukᵀ q_nope written next to q_rope into one
//       [Dc + Dr] query, the cache [c_kv | k_rope] as a single kv head, flash attention with
//       V = c_kv (Dc wide, computed in 256-column slices), then o = w_uv x. Naive: k_h = [c_kv
//       w_ukᵀ | k_rope], v_h = c_kv w_uvᵀ, then the same flash kernel as dense MHA.
//       Paged decode (mla_absorb_queries / mla_project_out, used by cuda_decode.cpp): the same two
//       projections as one strided-batched call each for a batch of decode rows, around the
//       paged attention kernel over the cache's latent pages.
#include <algorithm>

#include "common.cuh"
#include "cuda_check.hpp"
#include "mla.hpp"

namespace attnscope::cuda {
namespace {

// kh[b, h, t, Dn + r] = k_rope[b, t, r]: the shared rotary key appended to every head's key.
__global__ void broadcast_rope_kernel(const float* __restrict__ k_rope, float* __restrict__ kh,
                                      int B, int H, int Lk, int Dn, int Dr) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n = int64_t(B) * H * Lk * Dr;
  if (idx >= n) return;
  const int r = int(idx % Dr);
  const int t = int((idx / Dr) % Lk);
  const int64_t bh = idx / (int64_t(Dr) * Lk);
  const int b = int(bh / H);
  kh[(bh * Lk + t) * (Dn + Dr) + Dn + r] = k_rope[(int64_t(b) * Lk + t) * Dr + r];
}

// Row-major C = A · Bᵀ style products through column-major cuBLAS: see each call's comment for the
// shapes; strides are between heads (the batch of one call).
void sgemm_batched(cublasHandle_t blas, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                   int k, const float* A, int lda, long long sa, const float* Bm, int ldb,
                   long long sb, float* C, int ldc, long long sc, int batch) {
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasSgemmStridedBatched(blas, ta, tb, m, n, k, &one, A, lda, sa, Bm, ldb, sb,
                                         &zero, C, ldc, sc, batch),
               "cublasSgemmStridedBatched");
}

void copy_columns(float* dst, int dst_ld, const float* src, int src_ld, int cols, int64_t rows,
                  cudaStream_t stream) {
  if (cols == 0 || rows == 0) return;
  check_cuda(cudaMemcpy2DAsync(dst, size_t(dst_ld) * sizeof(float), src,
                               size_t(src_ld) * sizeof(float), size_t(cols) * sizeof(float),
                               size_t(rows), cudaMemcpyDeviceToDevice, stream),
             "cudaMemcpy2DAsync");
}

int splits_for(const MlaArgs& a, int Dv) {
  return a.kv_splits > 0 ? a.kv_splits : choose_kv_splits(a.B, a.H, a.Lq, a.Lk, Dv, a.sm_count);
}

void mla_absorbed(const MlaArgs& a, cublasHandle_t blas, cudaStream_t stream,
                  const CancelToken& cancel) {
  const int Dq = a.Dn + a.Dr, Dl = a.Dc + a.Dr;  // query width, latent cache width (576 for V3)
  StreamScratch<float> q_abs(int64_t(a.B) * a.H * a.Lq * Dl, stream);  // [B, H, Lq, Dc + Dr]
  StreamScratch<float> cache(int64_t(a.B) * a.Lk * Dl, stream);        // [B, Lk, Dc + Dr]
  StreamScratch<float> x(int64_t(a.B) * a.H * a.Lq * a.Dc, stream);    // [B, H, Lq, Dc]

  // q̃[b, h, i, :] = w_uk[h]ᵀ q_nope[b, h, i, :]. Column-major: q̃ᵀ (Dc x Lq) = W (Dc x Dn, the
  // row-major [Dn, Dc] buffer as is) · q_nopeᵀ (Dn x Lq, ld Dq); written with ld Dc + Dr.
  for (int b = 0; b < a.B; ++b) {
    sgemm_batched(blas, CUBLAS_OP_N, CUBLAS_OP_N, a.Dc, a.Lq, a.Dn, a.w_uk, a.Dc,
                  int64_t(a.Dn) * a.Dc, a.q + int64_t(b) * a.H * a.Lq * Dq, Dq, int64_t(a.Lq) * Dq,
                  q_abs.get() + int64_t(b) * a.H * a.Lq * Dl, Dl, int64_t(a.Lq) * Dl, a.H);
  }
  copy_columns(q_abs.get() + a.Dc, Dl, a.q + a.Dn, Dq, a.Dr, int64_t(a.B) * a.H * a.Lq, stream);
  copy_columns(cache.get(), Dl, a.c_kv, a.Dc, a.Dc, int64_t(a.B) * a.Lk, stream);
  copy_columns(cache.get() + a.Dc, Dl, a.k_rope, a.Dr, a.Dr, int64_t(a.B) * a.Lk, stream);
  cancel.throw_if_cancelled();

  // MQA over the latent: score = (q̃ · c_t + q_rope · k_rope_t) · scale, x = Σ_t p_t c_t.
  FlashArgs f;
  f.q = q_abs.get();
  f.k = cache.get();
  f.v = a.c_kv;
  f.o = x.get();
  f.lse = a.lse;
  f.B = a.B, f.H = a.H, f.Hkv = 1, f.Lq = a.Lq, f.Lk = a.Lk, f.Dk = Dl, f.Dv = a.Dc;
  f.scale = a.scale;
  f.mask = a.mask;
  attention_forward(f, splits_for(a, a.Dc), stream);
  cancel.throw_if_cancelled();

  // o[b, h, i, :] = w_uv[h] x[b, h, i, :]. Column-major: oᵀ (Dv x Lq) = op_T(W buffer, Dc x Dv)
  // · xᵀ (Dc x Lq).
  for (int b = 0; b < a.B; ++b) {
    sgemm_batched(blas, CUBLAS_OP_T, CUBLAS_OP_N, a.Dv, a.Lq, a.Dc, a.w_uv, a.Dc,
                  int64_t(a.Dv) * a.Dc, x.get() + int64_t(b) * a.H * a.Lq * a.Dc, a.Dc,
                  int64_t(a.Lq) * a.Dc, a.o + int64_t(b) * a.H * a.Lq * a.Dv, a.Dv,
                  int64_t(a.Lq) * a.Dv, a.H);
  }
}

void mla_naive(const MlaArgs& a, cublasHandle_t blas, cudaStream_t stream,
               const CancelToken& cancel) {
  const int Dq = a.Dn + a.Dr;
  StreamScratch<float> kh(int64_t(a.B) * a.H * a.Lk * Dq, stream);    // [B, H, Lk, Dn + Dr]
  StreamScratch<float> vh(int64_t(a.B) * a.H * a.Lk * a.Dv, stream);  // [B, H, Lk, Dv]
  for (int b = 0; b < a.B; ++b) {
    const float* cb = a.c_kv + int64_t(b) * a.Lk * a.Dc;
    // k_nope[b, h] = c_kv[b] w_uk[h]ᵀ. Column-major: k_nopeᵀ (Dn x Lk, ld Dn + Dr) =
    // op_T(W buffer, Dc x Dn) · c_kvᵀ (Dc x Lk); the latent is shared by all heads (stride 0).
    sgemm_batched(blas, CUBLAS_OP_T, CUBLAS_OP_N, a.Dn, a.Lk, a.Dc, a.w_uk, a.Dc,
                  int64_t(a.Dn) * a.Dc, cb, a.Dc, 0, kh.get() + int64_t(b) * a.H * a.Lk * Dq, Dq,
                  int64_t(a.Lk) * Dq, a.H);
    // v[b, h] = c_kv[b] w_uv[h]ᵀ, the same way with Dv rows.
    sgemm_batched(blas, CUBLAS_OP_T, CUBLAS_OP_N, a.Dv, a.Lk, a.Dc, a.w_uv, a.Dc,
                  int64_t(a.Dv) * a.Dc, cb, a.Dc, 0, vh.get() + int64_t(b) * a.H * a.Lk * a.Dv,
                  a.Dv, int64_t(a.Lk) * a.Dv, a.H);
  }
  const int64_t n = int64_t(a.B) * a.H * a.Lk * a.Dr;
  if (n > 0) {
    broadcast_rope_kernel<<<unsigned((n + 255) / 256), 256, 0, stream>>>(a.k_rope, kh.get(), a.B,
                                                                         a.H, a.Lk, a.Dn, a.Dr);
    check_launch("broadcast_rope_kernel");
  }
  cancel.throw_if_cancelled();

  FlashArgs f;
  f.q = a.q;
  f.k = kh.get();
  f.v = vh.get();
  f.o = a.o;
  f.lse = a.lse;
  f.B = a.B, f.H = a.H, f.Hkv = a.H, f.Lq = a.Lq, f.Lk = a.Lk, f.Dk = Dq, f.Dv = a.Dv;
  f.scale = a.scale;
  f.mask = a.mask;
  attention_forward(f, splits_for(a, a.Dv), stream);
}

// out[r, c] = Σ_n q[r, n] w_uk[n, c] for c < Dc, q[r, Dn + c - Dc] after: 16 rows per block so
// each w_uk element is read once per 16 rows.
constexpr int kAbsorbRows = 16;

__global__ void map_absorb_kernel(const float* __restrict__ q, const float* __restrict__ w_uk,
                                  float* __restrict__ out, int64_t rows, int Dn, int Dr, int Dc) {
  const int64_t r0 = int64_t(blockIdx.x) * kAbsorbRows;
  const int Dq = Dn + Dr, Dl = Dc + Dr;
  for (int c = threadIdx.x; c < Dl; c += blockDim.x) {
    float acc[kAbsorbRows] = {};
    if (c < Dc) {
      for (int n = 0; n < Dn; ++n) {
        const float w = w_uk[int64_t(n) * Dc + c];
#pragma unroll
        for (int r = 0; r < kAbsorbRows; ++r) {
          if (r0 + r < rows) acc[r] = fmaf(q[(r0 + r) * Dq + n], w, acc[r]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kAbsorbRows; ++r) {
      if (r0 + r >= rows) break;
      out[(r0 + r) * Dl + c] = c < Dc ? acc[r] : q[(r0 + r) * Dq + Dn + (c - Dc)];
    }
  }
}

}  // namespace

// Decode rows: R rows per head, row r of head h at (r * H + h) * width ([R, H, width] layout), so
// each product is one strided-batched call over the heads with ld = H * width between rows.
void mla_absorb_queries(const float* q, const float* w_uk, float* q_abs, int R, int H, int Dn,
                        int Dr, int Dc, cublasHandle_t blas, cudaStream_t stream) {
  if (int64_t(R) * H == 0) return;
  const int Dq = Dn + Dr, Dl = Dc + Dr;
  // Column-major per head h: q̃ᵀ (Dc x R) = W (Dc x Dn, the row-major [Dn, Dc] buffer as is)
  // · q_nopeᵀ (Dn x R, ld H * Dq); written with ld H * Dl.
  sgemm_batched(blas, CUBLAS_OP_N, CUBLAS_OP_N, Dc, R, Dn, w_uk, Dc, int64_t(Dn) * Dc, q, H * Dq,
                Dq, q_abs, H * Dl, Dl, H);
  copy_columns(q_abs + Dc, Dl, q + Dn, Dq, Dr, int64_t(R) * H, stream);
}

void mla_project_out(const float* x, const float* w_uv, float* o, int R, int H, int Dc, int Dv,
                     cublasHandle_t blas) {
  if (int64_t(R) * H == 0) return;
  // Column-major per head h: oᵀ (Dv x R, ld H * Dv) = op_T(W buffer, Dc x Dv) · xᵀ (Dc x R, ld
  // H * Dc).
  sgemm_batched(blas, CUBLAS_OP_T, CUBLAS_OP_N, Dv, R, Dc, w_uv, Dc, int64_t(Dv) * Dc, x, H * Dc,
                Dc, o, H * Dv, Dv, H);
}

void mla_forward(const MlaArgs& a, cublasHandle_t blas, cudaStream_t stream,
                 const CancelToken& cancel) {
  if (int64_t(a.B) * a.H * a.Lq == 0) return;
  if (a.absorbed) {
    mla_absorbed(a, blas, stream, cancel);
  } else {
    mla_naive(a, blas, stream, cancel);
  }
}

void launch_map_absorb_queries(const float* q, const float* w_uk, float* out, int64_t rows, int Dn,
                               int Dr, int Dc, cudaStream_t stream) {
  if (rows <= 0) return;
  const int64_t blocks = (rows + kAbsorbRows - 1) / kAbsorbRows;
  map_absorb_kernel<<<unsigned(blocks), 256, 0, stream>>>(q, w_uk, out, rows, Dn, Dr, Dc);
  check_launch("map_absorb_kernel");
}

}  // namespace attnscope::cuda
