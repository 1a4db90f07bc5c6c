// What the attention-map probe is asked for: one (batch, head), a region of the map, an output
// size and a pooling rule. Its own header because it is part of the Backend seam (backend.hpp).
#pragma once

#include <cstdint>

namespace attnscope {

enum class Pool { max, mean };

struct MapRequest {
  int64_t batch = 0;
  int64_t head = 0;
  // Region of the full map, half-open: rows [row0, row1) of queries, cols [col0, col1) of keys.
  // row1/col1 <= 0 mean "to the end".
  int64_t row0 = 0, row1 = 0, col0 = 0, col1 = 0;
  int64_t out_rows = 256, out_cols = 256;  // clamped to the region's size (never upsampled)
  Pool pool = Pool::max;
};

// A request resolved against its problem (resolve_map_region, probes.hpp): the region's bounds with
// "to the end" filled in and the output size after clamping. Output row o pools input rows
// [row0 + ceil(o * rows / out_rows), row0 + ceil((o + 1) * rows / out_rows)), i.e. the rows i with
// floor((i - row0) * out_rows / rows) == o; columns are binned the same way. Every bin is non-empty
// because out_rows <= rows and out_cols <= cols.
struct MapRegion {
  int64_t row0 = 0, row1 = 0, col0 = 0, col1 = 0;
  int64_t out_rows = 0, out_cols = 0;
  int64_t rows() const { return row1 - row0; }
  int64_t cols() const { return col1 - col0; }
};

}  // namespace attnscope
