// The attention-map probe on the GPU: recompute P_ij = exp(s_ij * scale - lse_i) of a map region
// in score tiles from q, k and the run's lse, mask it as the host map tiles do, and pool it into
// the requested cells on the device, so a 128K x 128K map never exists (docs/architecture.md).
//
// Versions (none has run on a GPU yet):
//   v1: one block of 256 threads per group of output cells (map_probe_plan.hpp): at most 64 x 64
//       input entries of small cells, or one cell that spans many 64 x 64 tiles. Each tile is a
//       register-blocked fp32 GEMM (4 x 4 scores per thread, 16-wide slices of the head dim
//       staged in shared memory), tiles the mask hides entirely are skipped, and each score goes
//       straight into its cell's shared-memory accumulator (a warp whose entries share one cell
//       reduces first and does one atomic). Mean sums in float64 like the host; max pooling uses
//       integer atomicMax, exact because probabilities are >= 0. Plain FMAs, no tensor cores.
//       ptxas (sm_90): 122-128 registers, 41-42 KB static shared memory, no spills, no stack.
#include "common.cuh"
#include "cuda_check.hpp"
#include "map_probe_plan.hpp"

namespace attnscope::cuda {
namespace {

constexpr int kThreads = 256;       // 16 x 16 threads, 4 x 4 scores each
constexpr int kChunk = 16;          // head-dim slice staged per step
constexpr int kPad = kMapTile + 4;  // keeps each row 16-byte aligned for float4 reads
constexpr float kMasked = -1.0f;    // below every probability: "this entry is not pooled"

static_assert(kThreads == (kMapTile / 4) * (kMapTile / 4), "4 x 4 scores per thread");

// Adds one (cell, value) partial: max through the float's bits (monotone for values >= 0).
template <bool kMean>
__device__ __forceinline__ void pool_into(double* cells, int cell, float mx, double sum) {
  if constexpr (kMean) {
    atomicAdd(&cells[cell], sum);
  } else {
    atomicMax(reinterpret_cast<int*>(cells) + cell, __float_as_int(mx));
  }
}

template <bool kMean, bool kSelection>
__global__ void __launch_bounds__(kThreads) map_probe_kernel(const MapProbeArgs a) {
  __shared__ __align__(16) float qs[kChunk][kPad];  // [d][row] query slice of the tile
  __shared__ __align__(16) float ks[kChunk][kPad];  // [d][col] key slice of the tile
  // Mean: float64 sums per cell. Max: the first kMapMaxCells ints hold float bits.
  __shared__ double cells[kMapMaxCells];
  __shared__ float lse_s[kMapTile];
  __shared__ uint64_t row_bits[kMapTile];  // a block selection's chosen blocks per tile row

  MapPlan plan;
  plan.rows = a.rows, plan.cols = a.cols, plan.out_rows = a.out_rows, plan.out_cols = a.out_cols;
  plan.group_rows = a.group_rows, plan.group_cols = a.group_cols;
  const int64_t rg = a.orow_first / a.group_rows + blockIdx.y;
  const MapGroup g = map_group(plan, rg, blockIdx.x);
  const int ncols = int(g.ocol1 - g.ocol0);
  const int ncells = int(g.orow1 - g.orow0) * ncols;

  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16, lane = tid % 32;
  for (int c = tid; c < ncells; c += kThreads) cells[c] = 0.0;  // 0 bits: 0.0 and 0.0f

  for (int64_t i0 = g.r0; i0 < g.r1; i0 += kMapTile) {
    const int64_t i1 = min(g.r1, i0 + kMapTile);
    for (int64_t j0 = g.c0; j0 < g.c1; j0 += kMapTile) {
      const int64_t j1 = min(g.c1, j0 + kMapTile);
      const int64_t ia0 = a.row0 + i0, ja0 = a.col0 + j0;
      if (map_tile_hidden(a.mask, kSelection, ia0, a.row0 + i1, ja0, a.col0 + j1)) continue;
      const int64_t kb0 = kSelection ? ja0 / a.block_size : 0;

      __syncthreads();  // the previous tile's readers of qs/ks/lse_s/row_bits are done
      if (tid < kMapTile) {
        const int64_t i = i0 + tid;
        lse_s[tid] = i < i1 ? a.lse[i - a.q_first] : ATTNSCOPE_NEG_INF;
        if constexpr (kSelection) {
          row_bits[tid] =
              i < i1 ? map_selection_row_bits(a.selection + (i - a.q_first) * a.top_k, a.top_k, kb0,
                                              (a.col0 + j1 - 1) / a.block_size)
                     : 0;
        }
      }
      if constexpr (kSelection) {
        // A tile none of whose rows chose any of its blocks holds only zeros.
        if (!__syncthreads_or(tid < kMapTile && row_bits[tid] != 0)) continue;
      }

      float acc[4][4] = {};
      for (int d0 = 0; d0 < a.D; d0 += kChunk) {
        for (int idx = tid; idx < kChunk * kMapTile; idx += kThreads) {
          const int r = idx / kChunk, d = idx % kChunk;
          const bool in_d = d0 + d < a.D;
          const int64_t i = i0 + r, j = j0 + r;
          qs[d][r] = (i < i1 && in_d) ? a.q[(i - a.q_first) * a.D + d0 + d] : 0.0f;
          ks[d][r] = (j < j1 && in_d) ? a.k[j * a.D + d0 + d] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int d = 0; d < kChunk; ++d) {
          const float4 qv = *reinterpret_cast<const float4*>(&qs[d][ty * 4]);
          const float4 kv = *reinterpret_cast<const float4*>(&ks[d][tx * 4]);
          const float qa[4] = {qv.x, qv.y, qv.z, qv.w}, kc[4] = {kv.x, kv.y, kv.z, kv.w};
#pragma unroll
          for (int r = 0; r < 4; ++r) {
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(qa[r], kc[c], acc[r][c]);
          }
        }
        __syncthreads();
      }

      // This thread's output cells and block shifts, once per row and column: int64
      // divisions are slow on the GPU.
      int crow[4], ccol[4], shift[4];
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const int64_t i = min(i0 + ty * 4 + x, i1 - 1), j = min(j0 + tx * 4 + x, j1 - 1);
        crow[x] = int(map_bin_of(i, a.rows, a.out_rows) - g.orow0);
        ccol[x] = int(map_bin_of(j, a.cols, a.out_cols) - g.ocol0);
        shift[x] = kSelection ? int((a.col0 + j) / a.block_size - kb0) : 0;
      }
      // Probabilities in place (kMasked where the entry is not pooled), and this thread's
      // partial: its entries' cell when they all share one (single), their max and sum.
      int my_cell = -1;
      bool single = true;
      float my_max = 0.0f;
      double my_sum = 0.0;
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int64_t i = i0 + ty * 4 + r;
        const float l = lse_s[ty * 4 + r];
        const bool row_ok = i < i1 && isfinite(l);
        const uint64_t bits = kSelection ? row_bits[ty * 4 + r] : 0;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int64_t j = j0 + tx * 4 + c;
          const bool on =
              row_ok && j < j1 &&
              map_entry_visible(a.mask, kSelection, a.row0 + i, a.col0 + j, bits, shift[c]);
          if (!on) {
            acc[r][c] = kMasked;
            continue;
          }
          const float p = expf(acc[r][c] * a.scale - l);
          acc[r][c] = p;
          const int cell = crow[r] * ncols + ccol[c];
          if (my_cell < 0) {
            my_cell = cell;
          } else if (cell != my_cell) {
            single = false;
          }
          my_max = fmaxf(my_max, p);
          my_sum += double(p);
        }
      }

      // Large cells: every thread of the warp usually pools into the same one.
      const int warp_cell = __reduce_max_sync(kFullMask, my_cell);
      const bool uniform = __all_sync(kFullMask, my_cell < 0 || (single && my_cell == warp_cell));
      if (uniform) {
        if (warp_cell >= 0) {
          float mx = my_max;
          double sum = my_sum;
#pragma unroll
          for (int off = 16; off > 0; off >>= 1) {
            if constexpr (kMean) {
              sum += __shfl_xor_sync(kFullMask, sum, off);
            } else {
              mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, off));
            }
          }
          if (lane == 0) pool_into<kMean>(cells, warp_cell, mx, sum);
        }
      } else {
        // Small cells: runs of neighbouring entries that share a cell, one atomic per run.
        int run_cell = -1;
        float run_max = 0.0f;
        double run_sum = 0.0;
#pragma unroll
        for (int r = 0; r < 4; ++r) {
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            const float p = acc[r][c];
            if (p == kMasked) continue;
            const int cell = crow[r] * ncols + ccol[c];
            if (cell != run_cell) {
              if (run_cell >= 0) pool_into<kMean>(cells, run_cell, run_max, run_sum);
              run_cell = cell, run_max = 0.0f, run_sum = 0.0;
            }
            run_max = fmaxf(run_max, p);
            run_sum += double(p);
          }
        }
        if (run_cell >= 0) pool_into<kMean>(cells, run_cell, run_max, run_sum);
      }
    }
  }

  __syncthreads();
  const int* cell_bits = reinterpret_cast<const int*>(cells);
  for (int c = tid; c < ncells; c += kThreads) {
    const int64_t orow = g.orow0 + c / ncols, ocol = g.ocol0 + c % ncols;
    float v;
    if constexpr (kMean) {
      // The host divides by the entries counted, masked ones included: the cell's area.
      const int64_t h =
          map_bin_begin(orow + 1, a.rows, a.out_rows) - map_bin_begin(orow, a.rows, a.out_rows);
      const int64_t w =
          map_bin_begin(ocol + 1, a.cols, a.out_cols) - map_bin_begin(ocol, a.cols, a.out_cols);
      v = float(cells[c] / (double(h) * double(w)));
    } else {
      v = __int_as_float(cell_bits[c]);
    }
    a.out[(orow - a.orow_first) * a.out_cols + ocol] = v;
  }
}

}  // namespace

void launch_map_probe(const MapProbeArgs& a, cudaStream_t stream) {
  if (a.row_groups <= 0 || a.col_groups <= 0) return;
  if (a.row_groups > 65535 || a.col_groups > 0x7fffffff) {
    throw Error("map probe: launch grid too large (split the region into bands)");
  }
  const dim3 grid(unsigned(a.col_groups), unsigned(a.row_groups));
  const bool selection = a.block_size > 0;
  if (a.mean) {
    if (selection) {
      map_probe_kernel<true, true><<<grid, kThreads, 0, stream>>>(a);
    } else {
      map_probe_kernel<true, false><<<grid, kThreads, 0, stream>>>(a);
    }
  } else {
    if (selection) {
      map_probe_kernel<false, true><<<grid, kThreads, 0, stream>>>(a);
    } else {
      map_probe_kernel<false, false><<<grid, kThreads, 0, stream>>>(a);
    }
  }
  check_launch("map_probe_kernel");
}

}  // namespace attnscope::cuda
