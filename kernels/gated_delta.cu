// Gated DeltaNet (gated delta rule, Yang et al. 2024) on the GPU: the step-by-step recurrence and
// the chunked WY/UT form, fp32 state, optional per-token L2 norm of q and k
// (docs/variants/gated_delta.md).
//
// Versions (none has run on a GPU yet):
//   v1: a prepare kernel (one warp per token) L2-normalizes q and k when asked and folds the query
//       scale into q. The state's columns S[:, e] evolve independently (every update of column e
//       reads only column e and the shared k, q, v[e]), so both forms split the work by columns:
//       - recurrent: one warp per (batch, head, column e); lane holds S[c, e] for c = lane + 32 t
//         in registers; per step two warp reductions (Sᵀk and Sᵀq).
//       - chunked: one block per (batch, head, slice of 32 columns); per chunk the block builds
//         A = strictly_lower(diag(β) K Kᵀ ⊙ Γ) and P = (Q Kᵀ ⊙ Γ) on the lower triangle in shared
//         memory, then V' = T (β ⊙ (V − (K ⊙ e^γ) S)) by forward substitution with (I + A), which
//         equals the page's U − W S (T is linear, so T(βV) − T(βK⊙e^γ)S = T(β(V − (K⊙e^γ)S)))
//         without forming W; then O = (Q ⊙ e^γ) S + P V' and S ← e^{γ_n} S + (K ⊙ e^{γ_n − γ})ᵀ V'.
//       Scalar fp32 FMAs; the chunk products are the place for tensor cores later.
#include <algorithm>

#include "common.cuh"
#include "cuda_check.hpp"
#include "gated_delta.hpp"

namespace attnscope::cuda {
namespace {

constexpr int kSlice = 32;          // state columns per block of the chunked kernel
constexpr int kChunkThreads = 256;  // threads of the chunked kernel
constexpr int kStateChunks = kGatedDeltaMaxHeadDim / 32;  // state values per lane in the recurrence

// q' = scale · q / sqrt(Σq² + 1e-6) and k' = k / sqrt(Σk² + 1e-6) (fla's l2norm) when l2norm;
// otherwise q' = scale · q and k' = k. One warp per token row.
__global__ void gated_delta_prepare_qk_kernel(const float* __restrict__ q,
                                              const float* __restrict__ k,
                                              float* __restrict__ q_out, float* __restrict__ k_out,
                                              int64_t rows, int Dk, float scale, int l2norm) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* qr = q + row * Dk;
  const float* kr = k + row * Dk;
  float qf = 1.0f, kf = 1.0f;
  if (l2norm) {
    float qq = 0.0f, kk = 0.0f;
    for (int d = lane; d < Dk; d += 32) {
      qq = fmaf(qr[d], qr[d], qq);
      kk = fmaf(kr[d], kr[d], kk);
    }
    qf = 1.0f / sqrtf(warp_sum(qq) + 1e-6f);
    kf = 1.0f / sqrtf(warp_sum(kk) + 1e-6f);
  }
  for (int d = lane; d < Dk; d += 32) {
    q_out[row * Dk + d] = qr[d] * qf * scale;
    k_out[row * Dk + d] = kr[d] * kf;
  }
}

// The recurrence of docs/variants/gated_delta.md for one state column e per warp:
//   S = e^{g_t} S;  u_t = β_t (v_t[e] − S[:, e] · k_t);  S[:, e] += k_t u_t;  o_t[e] = S[:, e] ·
//   q_t.
__global__ void __launch_bounds__(128)
    gated_delta_recurrent_kernel(const GatedDeltaArgs a, const float* qp, const float* kp) {
  const int e = blockIdx.x * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (e >= a.Dv) return;  // whole warp; no block-level synchronization below
  const int64_t bh = int64_t(blockIdx.z) * a.H + blockIdx.y;
  float S[kStateChunks];
#pragma unroll
  for (int t = 0; t < kStateChunks; ++t) {
    const int c = lane + 32 * t;
    S[t] = (c < a.Dk && a.initial_state) ? a.initial_state[(bh * a.Dk + c) * a.Dv + e] : 0.0f;
  }
  for (int step = 0; step < a.L; ++step) {
    const int64_t tok = bh * a.L + step;
    const float* kt = kp + tok * a.Dk;
    const float* qt = qp + tok * a.Dk;
    const float decay = expf(a.g[tok]);
    float sk = 0.0f;
#pragma unroll
    for (int t = 0; t < kStateChunks; ++t) {
      const int c = lane + 32 * t;
      if (c < a.Dk) {
        S[t] *= decay;
        sk = fmaf(S[t], kt[c], sk);
      }
    }
    const float u = a.beta[tok] * (a.v[tok * a.Dv + e] - warp_sum(sk));
    float so = 0.0f;
#pragma unroll
    for (int t = 0; t < kStateChunks; ++t) {
      const int c = lane + 32 * t;
      if (c < a.Dk) {
        S[t] = fmaf(kt[c], u, S[t]);
        so = fmaf(S[t], qt[c], so);
      }
    }
    so = warp_sum(so);
    if (lane == 0) a.o[tok * a.Dv + e] = so;
  }
#pragma unroll
  for (int t = 0; t < kStateChunks; ++t) {
    const int c = lane + 32 * t;
    if (c < a.Dk) a.final_state[(bh * a.Dk + c) * a.Dv + e] = S[t];
  }
}

// Shared memory of the chunked kernel, in floats, for chunk C and head dim Dk.
__host__ __device__ inline size_t chunk_smem_floats(int Dk, int C) {
  return size_t(C) * Dk         // Ks [C][Dk]
         + 2 * size_t(C) * C    // A, P [C][C]
         + size_t(Dk) * kSlice  // S [Dk][kSlice]
         + size_t(C) * kSlice   // Vp [C][kSlice]
         + 2 * size_t(C);       // gamma, beta [C]
}

__global__ void __launch_bounds__(kChunkThreads)
    gated_delta_chunked_kernel(const GatedDeltaArgs a, const float* qp, const float* kp) {
  extern __shared__ float smem[];
  const int C = a.chunk_size, Dk = a.Dk;
  float* Ks = smem;              // [C][Dk] keys of the chunk
  float* A = Ks + C * Dk;        // [C][C] β_i (k_i · k_j) Γ_ij for j < i, else 0
  float* P = A + C * C;          // [C][C] (q_i · k_j) Γ_ij for j <= i, else 0
  float* S = P + C * C;          // [Dk][kSlice] state columns e0 .. e0 + kSlice
  float* Vp = S + Dk * kSlice;   // [C][kSlice] R, then V' in place
  float* gam = Vp + C * kSlice;  // [C] γ = cumsum(g) inside the chunk
  float* bet = gam + C;          // [C] β

  const int e0 = blockIdx.x * kSlice;
  const int64_t bh = int64_t(blockIdx.z) * a.H + blockIdx.y;
  const int tid = threadIdx.x;

  for (int idx = tid; idx < Dk * kSlice; idx += kChunkThreads) {
    const int c = idx / kSlice, col = e0 + idx % kSlice;
    S[idx] = (col < a.Dv && a.initial_state) ? a.initial_state[(bh * Dk + c) * a.Dv + col] : 0.0f;
  }

  for (int t0 = 0; t0 < a.L; t0 += C) {
    const int n = min(C, a.L - t0);
    const int64_t tok0 = bh * a.L + t0;  // first token of the chunk
    __syncthreads();                     // the previous chunk is done with Ks, Vp, gam, bet
    for (int idx = tid; idx < n * Dk; idx += kChunkThreads) Ks[idx] = kp[tok0 * Dk + idx];
    for (int i = tid; i < n; i += kChunkThreads) {
      float cum = 0.0f;  // n <= 64: a per-thread prefix sum is cheaper than a scan's syncs
      for (int t = 0; t <= i; ++t) cum += a.g[tok0 + t];
      gam[i] = cum;
      bet[i] = a.beta[tok0 + i];
    }
    __syncthreads();

    // Phase 1: A and P (Γ_ij = e^{γ_i − γ_j} only for j <= i, where it is <= 1).
    for (int idx = tid; idx < C * C; idx += kChunkThreads) {
      const int i = idx / C, j = idx % C;
      float av = 0.0f, pv = 0.0f;
      if (i < n && j <= i) {
        const float* ki = Ks + i * Dk;
        const float* kj = Ks + j * Dk;
        const float* qi = qp + (tok0 + i) * Dk;
        float kk = 0.0f, qk = 0.0f;
        for (int c = 0; c < Dk; ++c) {
          kk = fmaf(ki[c], kj[c], kk);
          qk = fmaf(qi[c], kj[c], qk);
        }
        const float gamma_ij = expf(gam[i] - gam[j]);
        if (j < i) av = bet[i] * kk * gamma_ij;
        pv = qk * gamma_ij;
      }
      A[idx] = av;
      P[idx] = pv;
    }
    // Phase 2: R_i = β_i (v_i − e^{γ_i} Sᵀ k_i), reading the state from before this chunk.
    for (int idx = tid; idx < n * kSlice; idx += kChunkThreads) {
      const int i = idx / kSlice, e = idx % kSlice, col = e0 + e;
      float r = 0.0f;
      if (col < a.Dv) {
        float sk = 0.0f;
        for (int c = 0; c < Dk; ++c) sk = fmaf(Ks[i * Dk + c], S[c * kSlice + e], sk);
        r = bet[i] * (a.v[(tok0 + i) * a.Dv + col] - expf(gam[i]) * sk);
      }
      Vp[idx] = r;
    }
    __syncthreads();

    // Phase 3: V' = (I + A)⁻¹ R by forward substitution, one thread per column (rows depend on
    // earlier rows, columns are independent).
    if (tid < kSlice) {
      for (int i = 1; i < n; ++i) {
        float acc = Vp[i * kSlice + tid];
        for (int j = 0; j < i; ++j) acc = fmaf(-A[i * C + j], Vp[j * kSlice + tid], acc);
        Vp[i * kSlice + tid] = acc;
      }
    }
    __syncthreads();

    // Phase 4: O_i = e^{γ_i} Sᵀ q_i + Σ_{j<=i} P_ij V'_j, with the state from before this chunk.
    for (int idx = tid; idx < n * kSlice; idx += kChunkThreads) {
      const int i = idx / kSlice, e = idx % kSlice, col = e0 + e;
      if (col >= a.Dv) continue;
      const float* qi = qp + (tok0 + i) * Dk;
      float qs = 0.0f;
      for (int c = 0; c < Dk; ++c) qs = fmaf(qi[c], S[c * kSlice + e], qs);
      float acc = expf(gam[i]) * qs;
      for (int j = 0; j <= i; ++j) acc = fmaf(P[i * C + j], Vp[j * kSlice + e], acc);
      a.o[(tok0 + i) * a.Dv + col] = acc;
    }
    __syncthreads();  // phase 5 overwrites S, which phase 4 reads

    // Phase 5: S ← e^{γ_n} S + Σ_j k_j e^{γ_n − γ_j} V'_j; each thread owns its S elements.
    const float g_end = gam[n - 1];
    for (int idx = tid; idx < Dk * kSlice; idx += kChunkThreads) {
      const int c = idx / kSlice, e = idx % kSlice;
      float acc = expf(g_end) * S[idx];
      for (int j = 0; j < n; ++j) {
        acc = fmaf(Ks[j * Dk + c] * expf(g_end - gam[j]), Vp[j * kSlice + e], acc);
      }
      S[idx] = acc;
    }
  }
  __syncthreads();
  for (int idx = tid; idx < Dk * kSlice; idx += kChunkThreads) {
    const int c = idx / kSlice, col = e0 + idx % kSlice;
    if (col < a.Dv) a.final_state[(bh * Dk + c) * a.Dv + col] = S[idx];
  }
}

}  // namespace

size_t gated_delta_chunk_smem_bytes(int Dk, int chunk_size) {
  return sizeof(float) * chunk_smem_floats(Dk, chunk_size);
}

void gated_delta_forward(const GatedDeltaArgs& a, cudaStream_t stream, const CancelToken& cancel) {
  const int64_t rows = int64_t(a.B) * a.H * a.L;  // tokens over all heads
  if (int64_t(a.B) * a.H == 0 || a.Dv == 0) return;
  if (a.Dk < 1 || a.Dk > kGatedDeltaMaxHeadDim)
    throw Error("gated_delta: head_dim above 256 on CUDA");
  if (!a.recurrent && (a.chunk_size < 1 || a.chunk_size > kGatedDeltaMaxChunk)) {
    throw Error("gated_delta: chunk_size above 64 is not supported on CUDA");
  }
  StreamScratch<float> qp(rows * a.Dk, stream);  // [B, H, L, Dk] scaled (normalized) queries
  StreamScratch<float> kp(rows * a.Dk, stream);  // [B, H, L, Dk] (normalized) keys
  if (rows > 0) {
    gated_delta_prepare_qk_kernel<<<unsigned((rows + 3) / 4), 128, 0, stream>>>(
        a.q, a.k, qp.get(), kp.get(), rows, a.Dk, a.scale, a.qk_l2norm ? 1 : 0);
    check_launch("gated_delta_prepare_qk_kernel");
  }
  cancel.throw_if_cancelled();
  if (a.recurrent) {
    const dim3 grid(unsigned((a.Dv + 3) / 4), unsigned(a.H), unsigned(a.B));
    gated_delta_recurrent_kernel<<<grid, 128, 0, stream>>>(a, qp.get(), kp.get());
    check_launch("gated_delta_recurrent_kernel");
    return;
  }
  const size_t smem = gated_delta_chunk_smem_bytes(a.Dk, a.chunk_size);
  check_cuda(cudaFuncSetAttribute(gated_delta_chunked_kernel,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "cudaFuncSetAttribute(gated_delta_chunked_kernel)");
  const dim3 grid(unsigned((a.Dv + kSlice - 1) / kSlice), unsigned(a.H), unsigned(a.B));
  gated_delta_chunked_kernel<<<grid, kChunkThreads, smem, stream>>>(a, qp.get(), kp.get());
  check_launch("gated_delta_chunked_kernel");
}

}  // namespace attnscope::cuda
