// Launchers of MLA's kernels (mla.cu): the naive and absorbed forward passes, the decode
// projections around the paged attention over latent pages, and the map probe's query absorption.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attnscope/cancel.hpp"
#include "launchers.hpp"

namespace attnscope::cuda {

struct MlaArgs {
  const float* q = nullptr;       // [B, H, Lq, Dn + Dr]
  const float* c_kv = nullptr;    // [B, Lk, Dc]
  const float* k_rope = nullptr;  // [B, Lk, Dr]
  const float* w_uk = nullptr;    // [H, Dn, Dc]
  const float* w_uv = nullptr;    // [H, Dv, Dc]
  float* o = nullptr;             // [B, H, Lq, Dv]
  float* lse = nullptr;           // [B, H, Lq]
  int B = 0, H = 0, Lq = 0, Lk = 0, Dn = 0, Dr = 0, Dc = 0, Dv = 0;
  float scale = 1.0f;
  DeviceMask mask;
  bool absorbed = false;
  int sm_count = 1;   // for the split-KV choice of the attention core
  int kv_splits = 0;  // > 0 forces that many key splits (tests); 0 chooses by shape
};
void mla_forward(const MlaArgs& a, cublasHandle_t blas, cudaStream_t stream,
                 const CancelToken& cancel);

// Decode projections over R = B query rows per head, rows of head h at stride H:
//   q_abs [R, H, Dc + Dr] = (w_uk[h]ᵀ q_nope | q_rope) from q [R, H, Dn + Dr];
//   o [R, H, Dv] = w_uv[h] x from x [R, H, Dc].
void mla_absorb_queries(const float* q, const float* w_uk, float* q_abs, int R, int H, int Dn,
                        int Dr, int Dc, cublasHandle_t blas, cudaStream_t stream);
void mla_project_out(const float* x, const float* w_uv, float* o, int R, int H, int Dc, int Dv,
                     cublasHandle_t blas);

// The map's queries, the absorbed form the host map tile uses: out [rows, Dc + Dr] =
// (q_nope w_uk | q_rope) from q [rows, Dn + Dr] and one head's w_uk [Dn, Dc].
void launch_map_absorb_queries(const float* q, const float* w_uk, float* out, int64_t rows, int Dn,
                               int Dr, int Dc, cudaStream_t stream);

}  // namespace attnscope::cuda
