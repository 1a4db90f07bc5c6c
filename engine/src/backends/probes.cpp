// The attention-map probe: exact tiles of P recomputed from lse, pooled to screen resolution.
// Works tile by tile, so memory is O(tile + output) whatever q_len x kv_len is.
#include "attnscope/probes.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/parallel.hpp"
#include "attnscope/registry.hpp"

namespace attnscope {
namespace {

void check_result(const AttentionProblem& p, const RunResult& r) {
  const ProblemShape& s = p.shape;
  const VariantInfo& info = variant_info(p.variant);
  if (info.has_lse() && r.lse.shape() != Shape{s.batch, s.heads, s.q_len}) {
    throw Error("attention map: the run result's lse does not match the problem (rerun it)");
  }
  if (info.has_selection() && !r.selection) {
    throw Error("attention map: a " + std::string(info.short_title) +
                " map needs the run's block selection (run with the selection probe on)");
  }
  for (std::string_view name : info.extra_outputs) {
    if (r.extra.find(name) == r.extra.end() && r.extra_index.find(name) == r.extra_index.end()) {
      throw Error("attention map: a " + std::string(info.short_title) + " map needs the run's '" +
                  std::string(name) + "' (rerun it)");
    }
  }
}

}  // namespace

void attention_tile(const AttentionProblem& p, const Inputs& in, const RunResult& r, int64_t b,
                    int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  check_result(p, r);
  const ProblemShape& s = p.shape;
  if (b < 0 || b >= s.batch || h < 0 || h >= s.heads || i0 < 0 || i1 > s.q_len || i0 >= i1 ||
      j0 < 0 || j1 > s.kv_len || j0 >= j1) {
    throw Error("attention map: tile out of range");
  }
  variant_info(p.variant).map_tile(p, in, r, b, h, i0, i1, j0, j1, out);
}

MapRegion resolve_map_region(const AttentionProblem& p, const RunResult& r, const MapRequest& req) {
  check_result(p, r);
  return resolve_map_request(p, req);
}

MapRegion resolve_map_request(const AttentionProblem& p, const MapRequest& req) {
  const ProblemShape& s = p.shape;
  const int64_t row1 = req.row1 > 0 ? req.row1 : s.q_len;
  const int64_t col1 = req.col1 > 0 ? req.col1 : s.kv_len;
  if (req.batch < 0 || req.batch >= s.batch) {
    throw Error("attention map: batch index " + std::to_string(req.batch) +
                " is out of range (the problem has batch " + std::to_string(s.batch) + ")");
  }
  if (req.head < 0 || req.head >= s.heads) {
    throw Error("attention map: head index " + std::to_string(req.head) +
                " is out of range (the problem has " + std::to_string(s.heads) + " heads)");
  }
  if (req.row0 < 0 || row1 > s.q_len || req.row0 >= row1 || req.col0 < 0 || col1 > s.kv_len ||
      req.col0 >= col1) {
    throw Error("attention map: region rows [" + std::to_string(req.row0) + ", " +
                std::to_string(row1) + ") x cols [" + std::to_string(req.col0) + ", " +
                std::to_string(col1) + ") is outside the " + std::to_string(s.q_len) + " x " +
                std::to_string(s.kv_len) + " map");
  }
  if (req.out_rows < 1 || req.out_cols < 1) {
    throw Error("attention map: output size must be at least 1 x 1 (got " +
                std::to_string(req.out_rows) + " x " + std::to_string(req.out_cols) + ")");
  }
  MapRegion g;
  g.row0 = req.row0, g.row1 = row1, g.col0 = req.col0, g.col1 = col1;
  g.out_rows = std::min(req.out_rows, g.rows());
  g.out_cols = std::min(req.out_cols, g.cols());
  return g;
}

Tensor attention_map(const AttentionProblem& p, const Inputs& in, const RunResult& r,
                     const MapRequest& req, const CancelToken& cancel) {
  const MapRegion g = resolve_map_region(p, r, req);
  const int64_t rows = g.rows(), cols = g.cols();
  const int64_t out_r = g.out_rows, out_c = g.out_cols;
  const VariantInfo& info = variant_info(p.variant);
  // A softmax map (or a mixture of softmax branches) is exactly 0 where the mask hides a key, so
  // tiles the mask hides entirely are never computed (half of a causal map); Gated DeltaNet's
  // implicit map is computed everywhere.
  const bool skip_masked = info.map_kind != MapKind::implicit;
  const KeyMask mask = KeyMask::of(p);
  // Max pooling starts at -inf: Gated DeltaNet's implicit attention can be negative.
  Tensor out({out_r, out_c},
             req.pool == Pool::max ? -std::numeric_limits<float>::infinity() : 0.0f);
  // Output column o pools the columns [col_edge[o], col_edge[o + 1]) (the MapRegion rule).
  std::vector<int64_t> col_edge(static_cast<size_t>(out_c + 1));
  for (int64_t o = 0; o <= out_c; ++o) col_edge[o] = g.col0 + (o * cols + out_c - 1) / out_c;
  // One task per output row: it owns every input row that pools into it, so tasks never write
  // the same bin and the result does not depend on the thread count. Within a task, tiles of at
  // most 64 rows x 2048 columns keep the scratch small (512 KiB) and cancel answers within one.
  constexpr int64_t kTileRows = 64, kTileCols = 2048;
  std::atomic<int64_t> done{0};
  ThreadPool::global().parallel_for(out_r, default_threads(), [&](int64_t orow, int) {
    cancel.throw_if_cancelled();
    // Aligned like Eigen's packets: Eigen sums an unaligned segment with a scalar head, so with
    // the plain heap's 16-byte alignment a bin's sum depended on which thread's buffer held it.
    thread_local std::vector<float, Eigen::aligned_allocator<float>> tile;
    thread_local std::vector<double> sum;
    tile.resize(static_cast<size_t>(kTileRows * kTileCols));
    if (req.pool == Pool::mean) sum.assign(static_cast<size_t>(out_c), 0.0);
    // Input rows i with (i - row0) * out_r / rows == orow.
    const int64_t lo = g.row0 + (orow * rows + out_r - 1) / out_r;
    const int64_t hi = std::min(g.row1, g.row0 + ((orow + 1) * rows + out_r - 1) / out_r);
    float* out_row = out.data() + orow * out_c;
    for (int64_t i0 = lo; i0 < hi; i0 += kTileRows) {
      const int64_t i1 = std::min(hi, i0 + kTileRows);
      // Keys any row of [i0, i1) can see: the sinks [0, sink_hi) and the band [band_lo, band_hi).
      int64_t sink_hi = 0, band_lo = 0, band_hi = p.shape.kv_len;
      if (skip_masked && mask.causal) {
        band_hi = mask.hi(i1 - 1);
        band_lo = std::min(mask.window_lo(i0), band_hi);
        sink_hi = mask.window > 0 ? std::min(mask.sinks, band_lo) : 0;
      }
      auto sweep = [&](int64_t from, int64_t to) {
        from = std::max(from, g.col0);
        to = std::min(to, g.col1);
        for (int64_t j0 = from; j0 < to; j0 += kTileCols) {
          cancel.throw_if_cancelled();
          const int64_t j1 = std::min(to, j0 + kTileCols), n = j1 - j0;
          info.map_tile(p, in, r, req.batch, req.head, i0, i1, j0, j1, tile.data());
          // The output columns this tile touches, each over its own contiguous range.
          int64_t oc = (j0 - g.col0) * out_c / cols;
          for (; oc < out_c && col_edge[oc] < j1; ++oc) {
            const int64_t a = std::max(j0, col_edge[oc]) - j0;
            const int64_t e = std::min(j1, col_edge[oc + 1]) - j0;
            for (int64_t i = i0; i < i1; ++i) {
              const Eigen::Map<const Eigen::ArrayXf> seg(tile.data() + (i - i0) * n + a, e - a);
              if (req.pool == Pool::max) {
                out_row[oc] = std::max(out_row[oc], seg.maxCoeff());
              } else {
                sum[oc] += double(seg.sum());
              }
            }
          }
        }
      };
      sweep(0, sink_hi);
      sweep(band_lo, band_hi);
    }
    if (req.pool == Pool::mean) {
      // Every entry of the bin counts, the skipped (masked, exactly 0) ones included.
      const double bin_rows = double(hi - lo);
      for (int64_t oc = 0; oc < out_c; ++oc) {
        out_row[oc] =
            static_cast<float>(sum[oc] / (bin_rows * double(col_edge[oc + 1] - col_edge[oc])));
      }
    } else if (skip_masked) {
      // A bin whose entries were all skipped holds only masked zeros.
      for (int64_t oc = 0; oc < out_c; ++oc) out_row[oc] = std::max(out_row[oc], 0.0f);
    }
    cancel.report(double(done.fetch_add(1) + 1) / double(out_r));
  });
  return out;
}

}  // namespace attnscope
