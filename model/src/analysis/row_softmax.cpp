// The float64 row softmax every head statistic reads (row_softmax.hpp). The text statistics cost
// L^2 Dh multiply-adds per head, so a tile's scores are a float64 GEMM (Eigen), not scalar dot
// chains; the summation order moves a score by a few ulps, far below what the statistics resolve.
#include "analysis/row_softmax.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <string>

#include "attnscope/error.hpp"
#include "attnscope/parallel.hpp"
#include "attnscope/variant.hpp"

namespace attnscope::analysis_detail {

namespace {

using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstView = Eigen::Map<const MatrixRd>;
using StridedView = Eigen::Map<MatrixRd, Eigen::Unaligned, Eigen::OuterStride<>>;

}  // namespace

void check_layer(const LayerAttention& la) {
  const AttentionProblem& p = la.problem;
  // A softmax over q.k whose keys only a mask (causal, window, sinks) restricts: dense attention
  // and the windowed variants; not a block selection, not another input family.
  const VariantInfo& v = variant_info(p.variant);
  if (v.map_kind != MapKind::softmax || v.input_family != InputFamily::qkv || v.has_selection()) {
    throw Error("head statistics read dense or windowed softmax attention; this layer ran " +
                p.describe());
  }
  const ProblemShape& s = p.shape;
  if (s.batch != 1 || s.q_len != s.kv_len || s.kv_heads < 1 || s.heads % s.kv_heads != 0) {
    throw Error(
        "head statistics read a model layer's own attention (batch 1, as many queries as "
        "keys, heads a multiple of kv heads); this layer ran " +
        p.describe());
  }
  if (!la.inputs.has("q") || !la.inputs.has("k")) {
    throw Error("head statistics need the layer's captured q and k (ForwardOptions::capture)");
  }
  const Shape want_q{1, s.heads, s.q_len, s.head_dim}, want_k{1, s.kv_heads, s.kv_len, s.head_dim};
  if (la.inputs.at("q").shape() != want_q || la.inputs.at("k").shape() != want_k) {
    throw Error("the captured q " + shape_str(la.inputs.at("q").shape()) + " and k " +
                shape_str(la.inputs.at("k").shape()) + " do not have the layer's shapes " +
                shape_str(want_q) + " and " + shape_str(want_k));
  }
}

HeadView head_view(const LayerAttention& la, int64_t head) {
  const ProblemShape& s = la.problem.shape;
  HeadView v;
  v.L = s.q_len;
  v.D = s.head_dim;
  v.q = la.inputs.at("q").data() + head * v.L * v.D;
  v.k = la.inputs.at("k").data() + (head / (s.heads / s.kv_heads)) * v.L * v.D;
  v.scale = la.problem.effective_scale();
  v.mask = KeyMask::of(la.problem);
  return v;
}

void tile_exp(const HeadView& v, int64_t i0, int rows, RowScratch& s, int64_t* hi, double* z) {
  const int64_t D = v.D, L = v.L;
  int64_t lo[kTileRows], sink_end[kTileRows], h_max = 0, skip0 = 0;
  for (int r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    for (int64_t d = 0; d < D; ++d) s.qd[size_t(r * D + d)] = double(v.q[i * D + d]);
    // The keys row i sees are [lo, hi) plus, under a window with sinks, [0, min(sinks, lo)).
    hi[r] = v.mask.hi(i);
    lo[r] = std::min(v.mask.window_lo(i), hi[r]);
    sink_end[r] = v.mask.window > 0 ? std::min(v.mask.sinks, lo[r]) : 0;
    h_max = std::max(h_max, hi[r]);
    skip0 = std::max(skip0, sink_end[r]);
  }
  // Keys in [skip0, skip1) are hidden from every row of the tile (a row's lo only grows with i):
  // they are never scored.
  const int64_t skip1 = std::max(lo[0], skip0);
  const ConstView q(s.qd.data(), rows, D);
  const auto score_keys = [&](int64_t j0, int64_t j1) {
    for (; j0 < j1; j0 += kKeyBlock) {
      const int64_t n = std::min(kKeyBlock, j1 - j0);
      for (int64_t x = 0; x < n * D; ++x) s.kd[size_t(x)] = double(v.k[j0 * D + x]);
      StridedView out(s.t.data() + j0, rows, n, Eigen::OuterStride<>(L));
      out.noalias() = q * ConstView(s.kd.data(), n, D).transpose();
    }
  };
  score_keys(0, std::min(skip0, h_max));
  score_keys(skip1, h_max);
  for (int r = 0; r < rows; ++r) {
    double* t = s.t.data() + r * L;
    double* e = s.e.data() + r * L;
    double m = -INFINITY;
    for (int64_t j = 0; j < hi[r]; ++j) {
      t[j] = j >= lo[r] || j < sink_end[r] ? t[j] * v.scale : -INFINITY;
      m = std::max(m, t[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < hi[r]; ++j) {
      if (t[j] == -INFINITY) {
        e[j] = 0;
        continue;
      }
      t[j] -= m;
      e[j] = std::exp(t[j]);
      sum += e[j];
    }
    z[r] = sum;
  }
}

int64_t row_exp(const HeadView& v, int64_t i, RowScratch& s, double& z) {
  int64_t hi = 0;
  tile_exp(v, i, 1, s, &hi, &z);
  return hi;
}

int stat_threads() {
  return std::min(default_threads(), ThreadPool::global().size());
}

}  // namespace attnscope::analysis_detail
