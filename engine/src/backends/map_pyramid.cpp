// Answers map requests from a run's pyramid: output bins are unions of whole cells, binned by the
// probe's own rule applied to cells, so a whole-map view costs a pass over at most 2048^2 cells.
#include "attnscope/map_pyramid.hpp"

#include <algorithm>

namespace attnscope {
namespace {

// Cells [c0, c1) of an axis into `out` bins (cell k into bin floor((k - c0) * out / n)); returns
// each bin's first cell, plus the end.
std::vector<int64_t> bin_cells(int64_t c0, int64_t c1, int64_t out) {
  const int64_t n = c1 - c0;
  std::vector<int64_t> first(static_cast<size_t>(out + 1));
  for (int64_t o = 0; o <= out; ++o) first[o] = c0 + (o * n + out - 1) / out;
  return first;
}

}  // namespace

std::optional<PyramidMap> map_from_pyramid(const MapPyramid& p, const MapRequest& req,
                                           const MapRegion& g, bool coarse_ok) {
  if (req.batch < 0 || req.batch >= p.batch || req.head < 0 || req.head >= p.heads) return {};
  // The cells the region touches; the answer covers them whole.
  const int64_t r0 = g.row0 / p.cell_rows, r1 = (g.row1 + p.cell_rows - 1) / p.cell_rows;
  const int64_t c0 = g.col0 / p.cell_cols, c1 = (g.col1 + p.cell_cols - 1) / p.cell_cols;
  const bool fine = g.out_rows <= r1 - r0 && g.out_cols <= c1 - c0;
  if (!fine && !coarse_ok) return {};
  PyramidMap m;
  m.as_fine_as_asked = fine;
  const int64_t out_r = std::min(g.out_rows, r1 - r0), out_c = std::min(g.out_cols, c1 - c0);
  const std::vector<int64_t> rb = bin_cells(r0, r1, out_r), cb = bin_cells(c0, c1, out_c);
  m.region = {p.row_begin(r0), p.row_end(r1 - 1), p.col_begin(c0), p.col_end(c1 - 1),
              out_r,           out_c};
  for (int64_t x : rb) m.row_edges.push_back(std::min(p.q_len, x * p.cell_rows));
  for (int64_t x : cb) m.col_edges.push_back(std::min(p.kv_len, x * p.cell_cols));
  m.values = Tensor({out_r, out_c});
  const float* src =
      (req.pool == Pool::max ? p.max.data() : p.sum.data()) + p.offset(req.batch, req.head);
  for (int64_t o = 0; o < out_r; ++o) {
    float* dst = m.values.data() + o * out_c;
    for (int64_t oc = 0; oc < out_c; ++oc) {
      double acc = 0;
      float mx = 0;  // P >= 0, and an all-masked bin is 0
      for (int64_t r = rb[o]; r < rb[o + 1]; ++r) {
        const float* row = src + r * p.cols;
        for (int64_t c = cb[oc]; c < cb[oc + 1]; ++c) {
          if (req.pool == Pool::max) {
            mx = std::max(mx, row[c]);
          } else {
            acc += row[c];
          }
        }
      }
      if (req.pool == Pool::max) {
        dst[oc] = mx;
      } else {
        const double area = double(m.row_edges[o + 1] - m.row_edges[o]) *
                            double(m.col_edges[oc + 1] - m.col_edges[oc]);
        dst[oc] = static_cast<float>(acc / area);
      }
    }
  }
  return m;
}

}  // namespace attnscope
