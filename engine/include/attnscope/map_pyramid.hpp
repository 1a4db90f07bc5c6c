// The attention map's overview, pooled by the run itself. A fast path that already holds every
// score tile (the CPU flash tiles) pools P into fixed cells as it goes, so the whole-map view and
// every zoom no finer than a cell need no second pass over the L x L scores. Memory is
// cells, never L^2: about 2048 x 2048 cells per head at most, within a byte budget.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "attnscope/map_request.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

struct MapPyramid {
  int64_t batch = 0, heads = 0, q_len = 0, kv_len = 0;
  // Full-map rows (queries) and columns (keys) per cell; the last cell of an axis may be shorter.
  int64_t cell_rows = 1, cell_cols = 1;
  int64_t rows = 0, cols = 0;  // cells per axis
  // [batch, heads, rows, cols]: the largest P_ij and the sum of P_ij over each cell (masked entries
  // count as 0), exact up to fp32 rounding.
  std::vector<float> max, sum;

  int64_t row_begin(int64_t r) const { return r * cell_rows; }
  int64_t row_end(int64_t r) const { return std::min(q_len, (r + 1) * cell_rows); }
  int64_t col_begin(int64_t c) const { return c * cell_cols; }
  int64_t col_end(int64_t c) const { return std::min(kv_len, (c + 1) * cell_cols); }
  int64_t offset(int64_t b, int64_t h) const { return (b * heads + h) * rows * cols; }
  int64_t bytes() const { return int64_t((max.size() + sum.size()) * sizeof(float)); }
};

// What a run is asked to pool (Probes::pyramid): about `cells` cells per axis (0: no pyramid),
// coarser when `batch * heads` pyramids of that size would exceed `max_bytes`.
struct PyramidRequest {
  int64_t cells = 0;
  int64_t max_bytes = int64_t(256) << 20;
};

// A map answered from a pyramid: bins are unions of whole cells, so the region is the request's
// snapped outward to cell edges, and bins list their edges (they differ by up to one cell).
struct PyramidMap {
  Tensor values;  // [out_rows, out_cols], pooled as requested
  MapRegion region;
  std::vector<int64_t> row_edges, col_edges;  // out_rows + 1 and out_cols + 1 full-map indices
  // True when every bin is at most the requested bin (the answer the probe would give, on cell
  // edges); false for a coarse preview of a region finer than the cells.
  bool as_fine_as_asked = false;
};

// Serves `request` (already resolved against the problem: resolve_map_request) from the pyramid.
// Returns nothing when the region is finer than the cells and `coarse_ok` is false.
std::optional<PyramidMap> map_from_pyramid(const MapPyramid& pyramid, const MapRequest& request,
                                           const MapRegion& resolved, bool coarse_ok);

}  // namespace attnscope
