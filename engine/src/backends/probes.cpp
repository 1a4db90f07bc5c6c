// The attention-map probe: exact tiles of P recomputed from lse, pooled to screen resolution.
// Works tile by tile, so memory is O(tile + output) whatever q_len x kv_len is.
#include "attnscope/probes.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

#include "attnscope/error.hpp"
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
  const int64_t row1 = g.row1, col1 = g.col1;
  const int64_t rows = g.rows(), cols = g.cols();
  const int64_t out_r = g.out_rows, out_c = g.out_cols;
  // Max pooling starts at -inf: Gated DeltaNet's implicit attention can be negative.
  Tensor out({out_r, out_c},
             req.pool == Pool::max ? -std::numeric_limits<float>::infinity() : 0.0f);
  std::vector<double> sum;  // [out_r, out_c] mean pooling accumulators
  std::vector<int64_t> count;
  if (req.pool == Pool::mean) {
    sum.assign(static_cast<size_t>(out_r * out_c), 0.0);
    count.assign(static_cast<size_t>(out_r * out_c), 0);
  }
  const VariantInfo& info = variant_info(p.variant);
  // One task per output row: it owns every input row that pools into it, so tasks never write
  // the same bin and the result does not depend on the thread count. Within a task, tiles of at
  // most 64 rows x 2048 columns keep the scratch small (512 KiB).
  constexpr int64_t kTileRows = 64, kTileCols = 2048;
  std::atomic<int64_t> done{0};
  ThreadPool::global().parallel_for(out_r, default_threads(), [&](int64_t orow, int) {
    cancel.throw_if_cancelled();
    thread_local std::vector<float> tile;
    tile.resize(static_cast<size_t>(kTileRows * kTileCols));
    // Input rows i with (i - row0) * out_r / rows == orow.
    const int64_t lo = req.row0 + (orow * rows + out_r - 1) / out_r;
    const int64_t hi = std::min(row1, req.row0 + ((orow + 1) * rows + out_r - 1) / out_r);
    float* out_row = out.data() + orow * out_c;
    for (int64_t i0 = lo; i0 < hi; i0 += kTileRows) {
      const int64_t i1 = std::min(hi, i0 + kTileRows);
      for (int64_t j0 = req.col0; j0 < col1; j0 += kTileCols) {
        const int64_t j1 = std::min(col1, j0 + kTileCols);
        info.map_tile(p, in, r, req.batch, req.head, i0, i1, j0, j1, tile.data());
        for (int64_t i = i0; i < i1; ++i) {
          const float* t = tile.data() + (i - i0) * (j1 - j0);
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t ocol = (j - req.col0) * out_c / cols;
            if (req.pool == Pool::max) {
              out_row[ocol] = std::max(out_row[ocol], t[j - j0]);
            } else {
              sum[orow * out_c + ocol] += t[j - j0];
              ++count[orow * out_c + ocol];
            }
          }
        }
      }
    }
    cancel.report(double(done.fetch_add(1) + 1) / double(out_r));
  });
  if (req.pool == Pool::mean) {
    for (int64_t o = 0; o < out_r * out_c; ++o) {
      out.data()[o] = count[o] ? static_cast<float>(sum[o] / double(count[o])) : 0.0f;
    }
  }
  return out;
}

}  // namespace attnscope
