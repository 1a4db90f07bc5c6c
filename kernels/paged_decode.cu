// Decode attention through a paged KV cache (vLLM's block tables, FlashDecoding's key splits): one
// query row per (sequence, head) reads K/V through its sequence's page table in the device mirror
// of the cache's page pool. K/V pages (with a window and sinks, or a block selection) and latent
// pages all run the same kernel; they differ in the page layout and in the list of keys a row
// sees. Also here: the page scatter of the incremental mirror upload.
//
// Versions (none has run on a GPU yet):
//   v1: a row's visible keys are enumerated as a "virtual" list v = 0 .. n-1 mapped to absolute
//       positions j: the sinks [0, min(sinks, lo)) then the window [lo, p]; the selected past
//       blocks then its own block up to p; dense all of [0, p]. So masking never runs per element
//       (every listed key is visible), evicted pages are never visited, and key splits divide the
//       visible work evenly. One block per (sequence, group of <= 32 query heads sharing a kv head,
//       slice of <= 256 output columns, key split): per tile of 32 keys, 32 threads resolve the
//       keys' page-table entries, the block loads the K/V rows into shared memory, then each warp
//       carries up to 8 of the group's heads through an online softmax (lane = key for scores,
//       lane = output column for P·V). With a block selection, rows select different blocks, so
//       a block carries one head (one warp). Split partials merge by log-sum-exp (decode_merge.cu).
//       Plain fp32 FMAs; no tensor cores, no cp.async prefetch of the next tile yet.
#include <algorithm>

#include "common.cuh"
#include "cuda_check.hpp"

namespace attnscope::cuda {
namespace {

constexpr int kDvChunks = kPagedDvSlice / 32;  // output columns per lane: lane + 32 * t

static_assert(kPagedKeys == 32, "one key per lane in the score phase");

// Odd row stride of the K tile: lanes read K[lane][d] for one d, in 32 different banks.
__host__ __device__ inline int k_tile_stride(int Dk) {
  return (Dk % 2 == 0) ? Dk + 1 : Dk;
}

// The keys one row sees, in order: v < head maps to a sink (v) or to a selected past block's key
// (block selection), v >= head to base + (v - head), the window / own-block run that ends at the
// query.
struct VirtualKeys {
  int n = 0;
  int head = 0;
  int base = 0;
  const int32_t* blocks = nullptr;  // block selection: selected past blocks, ascending
  int block_size = 1;
  __device__ int key(int v) const {
    if (v >= head) return base + (v - head);
    return blocks ? blocks[v / block_size] * block_size + v % block_size : v;
  }
};

// Warps per block: one per query head up to 4; block-selection blocks carry a single head.
__host__ __device__ inline int paged_warps(const PagedAttentionArgs& a) {
  const int group = a.H / a.Hkv;
  return a.selection ? 1 : (group < kPagedMaxWarps ? group : kPagedMaxWarps);
}

__host__ __device__ inline int head_chunks(const PagedAttentionArgs& a) {
  if (a.selection) return 1;
  const int per_block = paged_warps(a) * kPagedRowsPerWarp;
  return (a.H / a.Hkv + per_block - 1) / per_block;
}

__global__ void __launch_bounds__(kPagedMaxWarps * 32)
    paged_attention_kernel(const PagedAttentionArgs a, int dv_slices) {
  extern __shared__ float smem[];
  __shared__ int64_t key_at[kPagedKeys], key2_at[kPagedKeys], value_at[kPagedKeys];
  const PagedKvLayout& L = a.layout;
  const int k_stride = k_tile_stride(a.Dk);
  float* ks = smem;                          // [kPagedKeys][k_stride] key tile
  float* vs = smem + kPagedKeys * k_stride;  // [kPagedKeys][dv_w] value tile (unless v_from_k)

  const int split = blockIdx.x / dv_slices, dv_slice = blockIdx.x % dv_slices;
  const int b = blockIdx.z;
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = a.H / a.Hkv;
  const int chunks = head_chunks(a);
  int h0, nrows;
  if (a.selection) {
    h0 = blockIdx.y;
    nrows = 1;
  } else {
    const int g = blockIdx.y / chunks, chunk = blockIdx.y % chunks;
    h0 = g * group + chunk * warps * kPagedRowsPerWarp;
    nrows = min(warps * kPagedRowsPerWarp, (g + 1) * group - h0);
  }
  const int kvh = h0 / group;  // contiguous GQA groups, as repeat_interleave
  const int e0 = dv_slice * kPagedDvSlice, dv_w = min(kPagedDvSlice, a.Dv - e0);

  // The row's visible keys (identical for every head of a block without a selection).
  VirtualKeys vk;
  const int len = a.lengths[b];
  if (len > 0) {
    const int p = len - 1;  // the query's position: the token just appended
    if (a.selection) {
      const int32_t* sel = a.selection + (int64_t(b) * a.H + h0) * a.top_k;
      const int own = p / a.block_size;
      int past = 0;  // ascending with the own block last: the entries before it are past blocks
      while (past < a.top_k && sel[past] >= 0 && sel[past] != own) ++past;
      vk.blocks = sel;
      vk.block_size = a.block_size;
      vk.head = past * a.block_size;  // past blocks are complete: block_size keys each
      vk.base = own * a.block_size;
    } else if (a.window > 0) {
      const int lo = max(0, p - a.window + 1);
      vk.head = min(a.sinks, lo);  // sinks not already inside the window
      vk.base = lo;
    }
    vk.n = vk.head + (p - vk.base + 1);
  }
  const int vb = split * a.split_len;
  const int ve = int(min(int64_t(vk.n), int64_t(vb) + a.split_len));

  // Online-softmax state of this warp's rows rl = warp + warps * r.
  float m[kPagedRowsPerWarp], l[kPagedRowsPerWarp], acc[kPagedRowsPerWarp][kDvChunks];
#pragma unroll
  for (int r = 0; r < kPagedRowsPerWarp; ++r) {
    m[r] = ATTNSCOPE_NEG_INF;
    l[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < kDvChunks; ++t) acc[r][t] = 0.0f;
  }

  for (int v0 = vb; v0 < ve; v0 += kPagedKeys) {
    const int nk = min(kPagedKeys, ve - v0);
    __syncthreads();  // every warp is done with the previous tile
    if (threadIdx.x < kPagedKeys) {
      // Resolve key slot threadIdx.x through the page table; -1 = not resident (never visited
      // when the cache evicts only what the mask hides, but never read either way).
      int64_t ka = -1, k2a = 0, va = 0;
      if (int(threadIdx.x) < nk) {
        const int j = vk.key(v0 + int(threadIdx.x));
        const int slot = j / L.page_size;
        const int page = slot < a.table_stride ? a.tables[int64_t(b) * a.table_stride + slot] : -1;
        if (page >= 0) {
          const int64_t base = int64_t(page) * L.page_floats;
          const int r = j % L.page_size;
          ka = base + L.k_offset + kvh * L.k_head_stride + r * L.k_row_stride;
          k2a = base + L.k2_offset + r * L.k2_row_stride;
          va = base + L.v_offset + kvh * L.v_head_stride + r * L.v_row_stride;
        }
      }
      key_at[threadIdx.x] = ka;
      key2_at[threadIdx.x] = k2a;
      value_at[threadIdx.x] = va;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < nk * a.Dk; idx += blockDim.x) {
      const int r = idx / a.Dk, d = idx % a.Dk;
      const int64_t ka = key_at[r];
      float x = 0.0f;
      if (ka >= 0) x = d < L.k_split ? a.pool[ka + d] : a.pool[key2_at[r] + (d - L.k_split)];
      ks[r * k_stride + d] = x;
    }
    if (!L.v_from_k) {
      for (int idx = threadIdx.x; idx < nk * dv_w; idx += blockDim.x) {
        const int r = idx / dv_w, e = idx % dv_w;
        vs[r * dv_w + e] = key_at[r] >= 0 ? a.pool[value_at[r] + e0 + e] : 0.0f;
      }
    }
    __syncthreads();

    const bool valid = lane < nk && key_at[lane] >= 0;
#pragma unroll
    for (int r = 0; r < kPagedRowsPerWarp; ++r) {
      const int rl = warp + warps * r;
      if (rl >= nrows) continue;  // warp-uniform
      float s = ATTNSCOPE_NEG_INF;
      if (valid) {
        const float* qi = a.q + (int64_t(b) * a.H + h0 + rl) * a.Dk;  // broadcast reads
        const float* kj = ks + lane * k_stride;
        float dot = 0.0f;
        for (int d = 0; d < a.Dk; ++d) dot = fmaf(qi[d], kj[d], dot);
        s = dot * a.scale;
      }
      const float m_new = fmaxf(m[r], warp_max(s));
      if (m_new == ATTNSCOPE_NEG_INF) continue;  // nothing visible yet (warp-uniform)
      const float pr = (s == ATTNSCOPE_NEG_INF) ? 0.0f : expf(s - m_new);
      const float alpha = rescale(m[r], m_new);
      l[r] = l[r] * alpha + warp_sum(pr);
      m[r] = m_new;
#pragma unroll
      for (int t = 0; t < kDvChunks; ++t) acc[r][t] *= alpha;
      for (int jj = 0; jj < nk; ++jj) {  // acc += P V, key jj's probability from lane jj
        const float pj = __shfl_sync(kFullMask, pr, jj);
        const float* vrow = L.v_from_k ? ks + jj * k_stride + e0 : vs + jj * dv_w;
#pragma unroll
        for (int t = 0; t < kDvChunks; ++t) {
          const int e = lane + 32 * t;
          if (e < dv_w) acc[r][t] = fmaf(pj, vrow[e], acc[r][t]);
        }
      }
    }
  }

  // Normalize and write; a row that saw no key gets o = 0, lse = -inf (docs/conventions.md).
  const int64_t rows_total = int64_t(a.B) * a.H;
  float* o_split = a.o + int64_t(split) * rows_total * a.Dv;
  float* lse_split = a.lse + int64_t(split) * rows_total;
#pragma unroll
  for (int r = 0; r < kPagedRowsPerWarp; ++r) {
    const int rl = warp + warps * r;
    if (rl >= nrows) continue;
    const int64_t row = int64_t(b) * a.H + h0 + rl;
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

__global__ void scatter_pages_kernel(const float* __restrict__ staged,
                                     const int32_t* __restrict__ ids, int64_t page_floats,
                                     float* __restrict__ pool) {
  const float* src = staged + int64_t(blockIdx.y) * page_floats;
  float* dst = pool + int64_t(ids[blockIdx.y]) * page_floats;
  for (int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; x < page_floats;
       x += int64_t(gridDim.x) * blockDim.x) {
    dst[x] = src[x];
  }
}

}  // namespace

PagedKvLayout paged_kv_layout(int page_size, int64_t page_floats, int Hkv, int Dk, int Dv) {
  PagedKvLayout l;
  l.page_floats = page_floats;
  l.page_size = page_size;
  l.k_split = Dk;
  l.k_head_stride = int64_t(page_size) * Dk;
  l.k_row_stride = Dk;
  l.v_offset = int64_t(Hkv) * page_size * Dk;
  l.v_head_stride = int64_t(page_size) * Dv;
  l.v_row_stride = Dv;
  return l;
}

PagedKvLayout paged_latent_layout(int page_size, int64_t page_floats, int Dc, int Dr) {
  PagedKvLayout l;
  l.page_floats = page_floats;
  l.page_size = page_size;
  l.k_split = Dc;  // key = [c_kv | k_rope]
  l.k_row_stride = Dc;
  l.k2_offset = int64_t(page_size) * Dc;
  l.k2_row_stride = Dr;
  l.v_from_k = true;  // value = c_kv
  return l;
}

size_t paged_attention_smem_bytes(int Dk, int Dv, bool v_from_k) {
  const size_t v_tile = v_from_k ? 0 : size_t(kPagedKeys) * size_t(std::min(Dv, kPagedDvSlice));
  return sizeof(float) * (size_t(kPagedKeys) * size_t(k_tile_stride(Dk)) + v_tile);
}

int64_t paged_attention_blocks(const PagedAttentionArgs& a) {
  const int64_t dv_slices = (a.Dv + kPagedDvSlice - 1) / kPagedDvSlice;
  const int64_t rows = a.selection ? a.H : int64_t(a.Hkv) * head_chunks(a);
  return int64_t(a.B) * rows * dv_slices;
}

int choose_paged_splits(int64_t blocks, int64_t max_keys, int sm_count) {
  if (blocks <= 0 || blocks >= sm_count) return 1;
  // Aim for two blocks per SM, but give each split at least 4 key tiles of work.
  const int64_t want = (2 * int64_t(sm_count) + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, max_keys / (4 * kPagedKeys));
  return int(std::clamp<int64_t>(std::min(want, most), 1, 64));
}

void launch_paged_attention(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.B == 0 || a.H == 0 || a.Dv == 0) return;
  if (a.Dk < 1 || a.Dk > kPagedMaxHeadDim) throw Error("paged_attention: head_dim out of range");
  if (a.Hkv < 1 || a.H % a.Hkv != 0) {
    throw Error("paged_attention: heads must be a multiple of kv_heads");
  }
  if (a.layout.page_size < 1 || a.splits < 1 || a.split_len < 1) {
    throw Error("paged_attention: bad page size or key splits");
  }
  if (a.selection && (a.block_size < 1 || a.top_k < 1)) {
    throw Error("paged_attention: a block selection needs block_size and top_k");
  }
  if (a.layout.v_from_k && a.Dv > a.layout.k_split) {
    throw Error("paged_attention: the value is wider than the key part it is read from");
  }
  const int dv_slices = (a.Dv + kPagedDvSlice - 1) / kPagedDvSlice;
  const size_t smem = paged_attention_smem_bytes(a.Dk, a.Dv, a.layout.v_from_k);
  check_cuda(cudaFuncSetAttribute(paged_attention_kernel,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "cudaFuncSetAttribute(paged_attention_kernel)");
  const unsigned rows = a.selection ? unsigned(a.H) : unsigned(a.Hkv) * unsigned(head_chunks(a));
  const dim3 grid(unsigned(a.splits) * unsigned(dv_slices), rows, unsigned(a.B));
  paged_attention_kernel<<<grid, unsigned(paged_warps(a)) * 32u, smem, stream>>>(a, dv_slices);
  check_launch("paged_attention_kernel");
}

void paged_attention_forward(PagedAttentionArgs a, int splits, int64_t max_keys,
                             cudaStream_t stream) {
  const int64_t rows = int64_t(a.B) * a.H;
  if (rows == 0 || a.Dv == 0) return;
  max_keys = std::max<int64_t>(max_keys, 1);
  if (splits <= 1 || max_keys <= kPagedKeys) {
    a.splits = 1;
    a.split_len = int((max_keys + kPagedKeys - 1) / kPagedKeys * kPagedKeys);
    launch_paged_attention(a, stream);
    return;
  }
  // Split lengths are whole key tiles, so no tile straddles two splits.
  const int64_t per = (max_keys + splits - 1) / splits;
  a.split_len = int((per + kPagedKeys - 1) / kPagedKeys * kPagedKeys);
  a.splits = int((max_keys + a.split_len - 1) / a.split_len);
  StreamScratch<float> o_part(int64_t(a.splits) * rows * a.Dv, stream);  // [splits, rows, Dv]
  StreamScratch<float> lse_part(int64_t(a.splits) * rows, stream);       // [splits, rows]
  float* o = a.o;
  float* lse = a.lse;
  a.o = o_part.get();
  a.lse = lse_part.get();
  launch_paged_attention(a, stream);
  launch_merge_partials(o_part.get(), lse_part.get(), a.splits, rows, a.Dv, o, lse, stream);
}

void launch_scatter_pages(const float* staged, const int32_t* ids, int n, int64_t page_floats,
                          float* pool, cudaStream_t stream) {
  if (n <= 0 || page_floats <= 0) return;
  constexpr int kThreads = 256;
  const int64_t x = std::min<int64_t>((page_floats + kThreads - 1) / kThreads, 64);
  for (int first = 0; first < n; first += 65535) {  // grid.y limit
    const int count = std::min(n - first, 65535);
    scatter_pages_kernel<<<dim3(unsigned(x), unsigned(count)), kThreads, 0, stream>>>(
        staged + int64_t(first) * page_floats, ids + first, page_floats, pool);
    check_launch("scatter_pages_kernel");
  }
}

}  // namespace attnscope::cuda
