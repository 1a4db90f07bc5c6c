// Host launchers of the shared CUDA kernels: plain device pointers and sizes in, work queued on a
// stream. The backend (cuda_backend.cpp) owns all memory; each .cu file implements one concept's
// launchers. A variant's own kernels declare theirs in its own header (<variant>.hpp).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "attnscope/mask.hpp"
#include "attnscope/problem.hpp"

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

// ---- flash_attention.cu: tiled online-softmax attention (any KeyMask, GQA/MQA) ---------------

inline constexpr int kFlashRows = 32;      // query rows per block (4 warps x 8 rows)
inline constexpr int kFlashKeys = 32;      // keys per shared-memory tile (one per lane)
inline constexpr int kFlashDvSlice = 256;  // output columns per block; wider Dv uses more blocks
inline constexpr int kFlashMaxHeadDim = 1024;  // Dk bound (K tile in shared memory)

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

// ---- flash_attention_tc.cu: bf16/fp16 tensor-core attention (any KeyMask, GQA/MQA) ----------

struct FlashTcArgs {
  const uint16_t* q = nullptr;  // [B, H, Lq, D] bf16/fp16 bit patterns
  const uint16_t* k = nullptr;  // [B, Hkv, Lk, D]
  const uint16_t* v = nullptr;  // [B, Hkv, Lk, D]
  float* o = nullptr;           // [B, H, Lq, D] fp32
  float* lse = nullptr;         // [B, H, Lq] natural log, -inf for rows that saw no key
  int B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, D = 0;  // D = Dk = Dv, one of kTensorCoreHeadDims
  double scale = 1.0;
  DeviceMask mask;
  Precision precision = Precision::bf16;  // bf16 or fp16
};

// Dynamic shared memory one block of the tensor-core kernel needs for head dim D.
size_t flash_tc_smem_bytes(int D);
void launch_flash_attention_tc(const FlashTcArgs& a, cudaStream_t stream);
// y[i] = x[i] rounded to bf16/fp16 (round to nearest even), as 16-bit patterns. Sets *overflow
// to 1 (never clears it) when a finite x[i] becomes infinite.
void launch_to_lowp(const float* x, uint16_t* y, int64_t n, Precision precision, int* overflow,
                    cudaStream_t stream);

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

// ---- paged_decode.cu: one query row per (sequence, head) over a paged KV cache -------------

inline constexpr int kPagedKeys = 32;          // keys per shared-memory tile (one per lane)
inline constexpr int kPagedRowsPerWarp = 8;    // query heads a warp carries through the keys
inline constexpr int kPagedMaxWarps = 4;       // so at most 32 query heads of a group per block
inline constexpr int kPagedDvSlice = 256;      // output columns per block; wider Dv uses more
inline constexpr int kPagedMaxHeadDim = 1024;  // Dk bound (K tile in shared memory)

// Where token r of physical page `page` keeps its key and value in the device pool (offsets in
// floats; PagedKvCache::page documents the host layout these mirror). A key is one or two
// contiguous pieces: [0, k_split) at k_offset + kvh * k_head_stride + r * k_row_stride, then
// [k_split, Dk) at k2_offset + r * k2_row_stride (a latent cache's rotary key).
struct PagedKvLayout {
  int64_t page_floats = 0;
  int page_size = 0;
  int k_split = 0;
  int64_t k_offset = 0, k_head_stride = 0, k_row_stride = 0;
  int64_t k2_offset = 0, k2_row_stride = 0;
  int64_t v_offset = 0, v_head_stride = 0, v_row_stride = 0;
  bool v_from_k = false;  // the value is the key's columns [0, Dv) (a latent: x = Σ p c)
};

// The page layouts of CacheLayout::kv (K and V per kv head) and CacheLayout::latent (one latent
// row then one rotary key per token; the key is [latent | rope], the value the latent).
PagedKvLayout paged_kv_layout(int page_size, int64_t page_floats, int Hkv, int Dk, int Dv);
PagedKvLayout paged_latent_layout(int page_size, int64_t page_floats, int Dc, int Dr);

struct PagedAttentionArgs {
  const float* q = nullptr;          // [B, H, Dk] the step's query rows
  const float* pool = nullptr;       // [pages, page_floats] device mirror of the page pool
  const int32_t* tables = nullptr;   // [B, table_stride] physical page ids, -1 evicted / absent
  const int32_t* lengths = nullptr;  // [B] tokens in the sequence; the query sits at length - 1
  // Block selection: [B, H, top_k] selected blocks (ascending, own block last, -1 padding). When
  // set, a row attends to its selected blocks' keys only (the own block up to the query) and each
  // block carries one query head; when null, the G heads of a kv head share every K/V tile.
  const int32_t* selection = nullptr;
  float* o = nullptr;    // [splits, B, H, Dv] (splits = 1: the final output)
  float* lse = nullptr;  // [splits, B, H] natural log; -inf for a row that saw no key
  int B = 0, H = 0, Hkv = 0, Dk = 0, Dv = 0;
  int table_stride = 0;
  PagedKvLayout layout;
  float scale = 1.0f;
  int window = 0, sinks = 0;      // keys (p - window, p] and [0, sinks); window 0 = all keys
  int block_size = 0, top_k = 0;  // of the block selection
  int splits = 1, split_len = 0;  // each split takes split_len visible keys (multiple of 32)
};

size_t paged_attention_smem_bytes(int Dk, int Dv, bool v_from_k);
void launch_paged_attention(const PagedAttentionArgs& a, cudaStream_t stream);
// Key splits for a step whose longest row sees max_keys keys (1 = no split), FlashDecoding-style:
// split only when the (sequence, head group) blocks alone cannot fill the SMs.
int choose_paged_splits(int64_t blocks, int64_t max_keys, int sm_count);
// Attention into a.o / a.lse (shaped for splits = 1), through split partials and the log-sum-exp
// merge of decode_merge.cu when splits > 1. a.splits and a.split_len are set here.
void paged_attention_forward(PagedAttentionArgs a, int splits, int64_t max_keys,
                             cudaStream_t stream);
// Blocks of the paged kernel before splitting (for choose_paged_splits).
int64_t paged_attention_blocks(const PagedAttentionArgs& a);

// pool[ids[i]] = staged[i] for n pages of page_floats floats (incremental mirror upload).
void launch_scatter_pages(const float* staged, const int32_t* ids, int n, int64_t page_floats,
                          float* pool, cudaStream_t stream);

// ---- map_probe.cu: the attention-map probe, P = exp(s * scale - lse) pooled on the device -----

// One launch of the map-probe kernel: output rows [orow_first, orow_first + launch rows) of a
// region, pooled from the rows of those row groups (map_probe_plan.hpp has the decomposition).
struct MapProbeArgs {
  const float* q = nullptr;            // [launch rows, D]: region row i at (i - q_first) * D
  const float* k = nullptr;            // [region cols, D]: region column j at j * D
  const float* lse = nullptr;          // [launch rows], indexed like q
  const int32_t* selection = nullptr;  // [launch rows, top_k] indexed like q; else null
  float* out = nullptr;        // [launch out rows, out_cols]: output row o at o - orow_first
  int64_t q_first = 0;         // region row of q[0]
  int64_t orow_first = 0;      // first output row of the launch (a row group's first)
  int64_t row0 = 0, col0 = 0;  // the region's origin in the full map (masks are absolute)
  int64_t rows = 0, cols = 0, out_rows = 0, out_cols = 0;
  int group_rows = 1, group_cols = 1;
  int64_t row_groups = 0, col_groups = 0;  // this launch's row groups; all column groups
  int D = 0;                               // score width
  float scale = 1.0f;
  DeviceMask mask;                // offset = kv_len - q_len with a block selection too
  int block_size = 0, top_k = 0;  // a block selection when block_size > 0
  bool mean = false;              // mean pooling, else max
};
void launch_map_probe(const MapProbeArgs& a, cudaStream_t stream);

// Largest dynamic shared memory a block may opt into on the current device.
size_t max_shared_memory_per_block();

// ---- a problem's shape, scale and mask in each launcher's args ------------------------------
// Pointers stay the caller's. One mapping for CudaBackend::run and the benchmark timing
// (device_timing.cu), so the timed path cannot drift from the tested one.

inline FlashArgs flash_args_of(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  FlashArgs a;
  a.B = int(s.batch), a.H = int(s.heads), a.Hkv = int(s.kv_heads);
  a.Lq = int(s.q_len), a.Lk = int(s.kv_len), a.Dk = int(s.head_dim), a.Dv = int(s.v_head_dim);
  a.scale = float(p.effective_scale());
  a.mask = device_mask(KeyMask::of(p));
  return a;
}

inline FlashTcArgs flash_tc_args_of(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  FlashTcArgs a;
  a.B = int(s.batch), a.H = int(s.heads), a.Hkv = int(s.kv_heads);
  a.Lq = int(s.q_len), a.Lk = int(s.kv_len), a.D = int(s.head_dim);
  a.scale = p.effective_scale();
  a.mask = device_mask(KeyMask::of(p));
  a.precision = p.precision;
  return a;
}

}  // namespace attnscope::cuda
