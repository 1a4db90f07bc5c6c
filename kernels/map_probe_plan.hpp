// The index arithmetic of the map-probe kernel (map_probe.cu), in host+device functions so that
// a plain C++ test can replay the kernel's decomposition on the CPU: which output cells a thread
// block owns, which input rows/columns they pool, which tiles are skipped, which entries count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "launchers.hpp"

#ifdef __CUDACC__
#define ATTNSCOPE_HD __host__ __device__ __forceinline__
#else
#define ATTNSCOPE_HD inline
#endif

namespace attnscope::cuda {

inline constexpr int kMapTile = 64;                       // input rows x columns of one score tile
inline constexpr int kMapMaxCells = kMapTile * kMapTile;  // output cells one block owns, at most

// Bins of one axis exactly as attention_map (probes.cpp) forms them: n inputs into m <= n bins,
// element x in bin floor(x * m / n), so bin o starts at ceil(o * n / m). n, m < 2^31, so the
// products stay far inside int64.
ATTNSCOPE_HD int64_t map_bin_begin(int64_t o, int64_t n, int64_t m) {
  return (o * n + m - 1) / m;
}
ATTNSCOPE_HD int64_t map_bin_of(int64_t x, int64_t n, int64_t m) {
  return x * m / n;
}

// KeyMask::visible (mask.hpp), the rule every path shares, for absolute indices.
ATTNSCOPE_HD bool map_key_visible(const DeviceMask& m, int64_t i, int64_t j) {
  if (!m.causal) return true;
  const int64_t pos = i + m.offset;
  if (j > pos) return false;
  if (m.window <= 0) return true;
  return j > pos - m.window || j < m.sinks;
}

// Whether every entry of rows [i0, i1) x keys [j0, j1) (absolute) is masked, so the tile can be
// skipped: its entries are 0, which neither pool changes (both start at 0 for probabilities).
// A block selection (selection = true) always hides keys after the query's position; its blocks
// are decided per row inside the tile. Conservative: false means "maybe visible".
ATTNSCOPE_HD bool map_tile_hidden(const DeviceMask& m, bool selection, int64_t i0, int64_t i1,
                                  int64_t j0, int64_t j1) {
  const int64_t pmin = i0 + m.offset, pmax = i1 - 1 + m.offset;
  if ((m.causal || selection) && j0 > pmax) return true;  // in every row's future
  if (selection || !m.causal || m.window <= 0) return false;
  return j1 - 1 <= pmin - m.window && j0 >= m.sinks;  // before every row's window, no sink
}

// Block selection: bit c - kb0 set when the row's selection (top_k block ids, -1 padded) holds
// block c, for the blocks kb0..kb1 a tile's keys fall in (kb1 - kb0 < 64 because a tile has <= 64
// keys).
ATTNSCOPE_HD uint64_t map_selection_row_bits(const int32_t* selection, int top_k, int64_t kb0,
                                             int64_t kb1) {
  uint64_t bits = 0;
  for (int t = 0; t < top_k; ++t) {
    const int64_t c = selection[t];
    if (c >= kb0 && c <= kb1) bits |= uint64_t(1) << (c - kb0);
  }
  return bits;
}

// Whether entry (i, j) (absolute) enters the map, the lse being finite: the host map tiles' rule
// (the variants' map_tile hooks). A block selection passes its row bits and block_shift =
// j / block_size - kb0 (per column, so it is computed once).
ATTNSCOPE_HD bool map_entry_visible(const DeviceMask& m, bool selection, int64_t i, int64_t j,
                                    uint64_t row_bits, int block_shift) {
  if (selection) return j <= i + m.offset && ((row_bits >> block_shift) & 1u) != 0;
  return map_key_visible(m, i, j);
}

// How a region is cut into thread blocks. A block owns group_rows x group_cols output cells, so
// at most kMapTile input rows (and columns) when cells are small, or exactly one cell when a
// cell spans a tile or more; it pools every input entry of its cells, so no two blocks write the
// same cell.
struct MapPlan {
  int64_t rows = 0, cols = 0;          // region size
  int64_t out_rows = 0, out_cols = 0;  // output size (<= region size)
  int group_rows = 1, group_cols = 1;  // output cells per block along each axis
  int64_t row_groups = 0, col_groups = 0;
  int64_t group_input_rows = 0;  // input rows one row group spans, at most
};

inline int map_group_extent(int64_t n, int64_t m) {
  const int64_t widest_bin = (n + m - 1) / m;
  return widest_bin >= kMapTile ? 1 : int(std::min<int64_t>(m, kMapTile / widest_bin));
}

inline MapPlan make_map_plan(int64_t rows, int64_t cols, int64_t out_rows, int64_t out_cols) {
  MapPlan p;
  p.rows = rows, p.cols = cols, p.out_rows = out_rows, p.out_cols = out_cols;
  p.group_rows = map_group_extent(rows, out_rows);
  p.group_cols = map_group_extent(cols, out_cols);
  p.row_groups = (out_rows + p.group_rows - 1) / p.group_rows;
  p.col_groups = (out_cols + p.group_cols - 1) / p.group_cols;
  p.group_input_rows = int64_t(p.group_rows) * ((rows + out_rows - 1) / out_rows);
  return p;
}

// The cells of block (row group rg, column group cg) and the region-relative inputs they pool.
struct MapGroup {
  int64_t orow0, orow1, ocol0, ocol1;  // output cells [orow0, orow1) x [ocol0, ocol1)
  int64_t r0, r1, c0, c1;              // input rows [r0, r1) x columns [c0, c1)
};

ATTNSCOPE_HD MapGroup map_group(const MapPlan& p, int64_t rg, int64_t cg) {
  MapGroup g;
  g.orow0 = rg * p.group_rows;
  g.orow1 = g.orow0 + p.group_rows < p.out_rows ? g.orow0 + p.group_rows : p.out_rows;
  g.ocol0 = cg * p.group_cols;
  g.ocol1 = g.ocol0 + p.group_cols < p.out_cols ? g.ocol0 + p.group_cols : p.out_cols;
  g.r0 = map_bin_begin(g.orow0, p.rows, p.out_rows);
  g.r1 = map_bin_begin(g.orow1, p.rows, p.out_rows);
  g.c0 = map_bin_begin(g.ocol0, p.cols, p.out_cols);
  g.c1 = map_bin_begin(g.ocol1, p.cols, p.out_cols);
  return g;
}

// Row groups [group0, group1) are one launch: the queries they need are uploaded together.
// Bands keep that upload, the launch's output and its grid's y extent bounded.
inline constexpr int64_t kMapBandRows = 16384;         // input rows per launch, about
inline constexpr int64_t kMapBandOutFloats = 1 << 24;  // output floats per launch, about
inline int64_t map_groups_per_band(const MapPlan& p) {
  int64_t n = std::min<int64_t>(kMapBandRows / std::max<int64_t>(1, p.group_input_rows),
                                kMapBandOutFloats / (int64_t(p.group_rows) * p.out_cols));
  return std::clamp<int64_t>(n, 1, 65535);
}

// One launch: row groups [group0, group1), output rows [orow_first, orow_end) pooled from region
// rows [q_first, q_end).
struct MapBand {
  int64_t group0 = 0, group1 = 0;
  int64_t orow_first = 0, orow_end = 0;
  int64_t q_first = 0, q_end = 0;
};

inline MapBand map_band(const MapPlan& p, int64_t group0, int64_t groups_per_band) {
  MapBand b;
  b.group0 = group0;
  b.group1 = std::min(p.row_groups, group0 + groups_per_band);
  b.orow_first = group0 * p.group_rows;
  b.orow_end = std::min(p.out_rows, b.group1 * p.group_rows);
  b.q_first = map_bin_begin(b.orow_first, p.rows, p.out_rows);
  b.q_end = map_bin_begin(b.orow_end, p.rows, p.out_rows);
  return b;
}

}  // namespace attnscope::cuda
