// Host launchers of the CUDA kernels: plain device pointers and sizes in, work queued on a stream.
// The backend (cuda_backend.cpp) owns all memory; each .cu file implements one concept's launchers.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "attnscope/cancel.hpp"
#include "attnscope/mask.hpp"

namespace attnscope::cuda {

// attnscope::KeyMask in a form a kernel can take by value; visible() is the same rule (common.cuh).
struct DeviceMask {
  int causal = 0;
  int64_t offset = 0;  // kv_len - q_len (bottom-right alignment)
  int64_t window = 0;  // 0 = unlimited
  int64_t sinks = 0;
};

inline DeviceMask device_mask(const KeyMask& m) {
  return {m.causal ? 1 : 0, m.offset, m.window, m.sinks};
}

// ---- flash_attention.cu: tiled online-softmax attention (dense, GQA/MQA, SWA + sinks) -------

inline constexpr int kFlashRows = 32;      // query rows per block (4 warps x 8 rows)
inline constexpr int kFlashKeys = 32;      // keys per shared-memory tile (one per lane)
inline constexpr int kFlashDvSlice = 256;  // output columns per block; wider Dv uses more blocks
inline constexpr int kFlashMaxHeadDim = 1024;  // Dk bound (K tile in shared memory; MLA is 576)

struct FlashArgs {
  const float* q = nullptr;  // [B, H, Lq, Dk]
  const float* k = nullptr;  // [B, Hkv, Lk, Dk]
  const float* v = nullptr;  // [B, Hkv, Lk, Dv]
  float* o = nullptr;        // [splits, B, H, Lq, Dv] (splits = 1: the final output)
  float* lse = nullptr;      // [splits, B, H, Lq] natural log, -inf for rows that saw no key
  int B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, Dk = 0, Dv = 0;
  float scale = 1.0f;
  DeviceMask mask;
  int splits = 1;     // key ranges [s * split_len, (s + 1) * split_len) computed separately
  int split_len = 0;  // multiple of kFlashKeys; >= Lk when splits == 1
};

// Dynamic shared memory one block of the flash kernel needs for head dim Dk.
size_t flash_smem_bytes(int Dk);
void launch_flash_attention(const FlashArgs& a, cudaStream_t stream);

// ---- decode_merge.cu: split-KV for few query rows, and the log-sum-exp merge ----------------

// How many key splits keep the GPU busy for this shape (1 = no split): split only when the
// (batch, head, query tile) blocks alone cannot fill the SMs.
int choose_kv_splits(int B, int H, int Lq, int Lk, int Dv, int sm_count);
// o/lse partials [splits, rows, Dv] / [splits, rows] -> o [rows, Dv], lse [rows].
void launch_merge_partials(const float* o_part, const float* lse_part, int splits, int64_t rows,
                           int Dv, float* o, float* lse, cudaStream_t stream);
// Full attention into a.o / a.lse (shaped for splits = 1), splitting the keys `splits` ways
// through a temporary workspace when splits > 1. a.splits and a.split_len are ignored.
void attention_forward(FlashArgs a, int splits, cudaStream_t stream);

// ---- moba.cu: Mixture of Block Attention ---------------------------------------------------

inline constexpr int kMobaMaxDv = 256;     // output accumulators per lane (8 x 32)
inline constexpr int kMobaMaxRanked = 32;  // top_k - 1 bound when ranking is needed

struct MobaArgs {
  const float* q = nullptr;      // [B, H, Lq, Dk]
  const float* k = nullptr;      // [B, Hkv, Lk, Dk]
  const float* v = nullptr;      // [B, Hkv, Lk, Dv]
  float* o = nullptr;            // [B, H, Lq, Dv]
  float* lse = nullptr;          // [B, H, Lq]
  int32_t* selection = nullptr;  // [B, H, Lq, top_k] ascending, -1 padded
  int B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, Dk = 0, Dv = 0;
  int block_size = 0, top_k = 0;
  float scale = 1.0f;
};
void moba_forward(const MobaArgs& a, cudaStream_t stream, const CancelToken& cancel);

// ---- mla.cu: multi-head latent attention, naive and absorbed ---------------------------------

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

// ---- gated_delta.cu: Gated DeltaNet, recurrent and chunked ----------------------------------

inline constexpr int kGdnMaxHeadDim = 256;  // Dk bound: 8 state values per lane (recurrent)
inline constexpr int kGdnMaxChunk = 64;     // chunk bound of the chunked kernel

struct GdnArgs {
  const float* q = nullptr;              // [B, H, L, Dk]
  const float* k = nullptr;              // [B, H, L, Dk]
  const float* v = nullptr;              // [B, H, L, Dv]
  const float* g = nullptr;              // [B, H, L] log decay
  const float* beta = nullptr;           // [B, H, L]
  const float* initial_state = nullptr;  // [B, H, Dk, Dv] or null (zeros)
  float* o = nullptr;                    // [B, H, L, Dv]
  float* final_state = nullptr;          // [B, H, Dk, Dv]
  int B = 0, H = 0, L = 0, Dk = 0, Dv = 0;
  float scale = 1.0f;
  bool qk_l2norm = false;
  bool recurrent = false;
  int chunk_size = 64;
};
size_t gdn_chunk_smem_bytes(int Dk, int chunk_size);
void gated_delta_forward(const GdnArgs& a, cudaStream_t stream, const CancelToken& cancel);

// Largest dynamic shared memory a block may opt into on the current device.
size_t max_shared_memory_per_block();

}  // namespace attnscope::cuda
