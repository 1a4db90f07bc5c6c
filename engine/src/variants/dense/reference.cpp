// Reference dense attention (MHA / GQA / MQA) and sliding-window attention with sinks
// (docs/variants/dense.md, swa.md): o = softmax(q kᵀ · scale + mask) v per query head, float64
// throughout.
#include <Eigen/Core>

#include "attnscope/mask.hpp"
#include "backends/reference/reference.hpp"

namespace attnscope::reference {

RunResult make_softmax_result(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  RunResult r;
  r.o = Tensor({s.batch, s.heads, s.q_len, s.v_head_dim});
  r.lse = Tensor({s.batch, s.heads, s.q_len});
  return r;
}

RunResult dense_run(const AttentionProblem& p, const Inputs& in, const CancelToken& cancel) {
  const ProblemShape& s = p.shape;
  const int64_t B = s.batch, H = s.heads, Hkv = s.kv_heads, Lq = s.q_len, Lk = s.kv_len;
  const int64_t Dk = s.head_dim, Dv = s.v_head_dim, group = H / Hkv;
  const Tensor& q = in.at("q");  // [B, H, Lq, Dk]
  const Tensor& k = in.at("k");  // [B, Hkv, Lk, Dk]
  const Tensor& v = in.at("v");  // [B, Hkv, Lk, Dv]
  const KeyMask mask = KeyMask::of(p);
  const double scale = p.effective_scale();
  RunResult r = make_softmax_result(p);

  std::vector<double> prob(static_cast<size_t>(Lk));  // [Lk] one row of P
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      cancel.throw_if_cancelled();
      const int64_t kvh = h / group;  // contiguous groups, as repeat_interleave
      const float* kb = k.data() + (b * Hkv + kvh) * Lk * Dk;
      const float* vb = v.data() + (b * Hkv + kvh) * Lk * Dv;
      for (int64_t i = 0; i < Lq; ++i) {
        // Every 64 rows: a long head must not delay cancellation by seconds.
        if (i % 64 == 63) cancel.throw_if_cancelled();
        const float* qi = q.data() + ((b * H + h) * Lq + i) * Dk;
        // Phase 1: scaled scores of the visible keys, -inf elsewhere.
        for (int64_t j = 0; j < Lk; ++j) {
          if (!mask.visible(i, j)) {
            prob[j] = kNegInf;
            continue;
          }
          double dot = 0;
          for (int64_t d = 0; d < Dk; ++d) dot += double(qi[d]) * kb[j * Dk + d];
          prob[j] = dot * scale;
        }
        // Phase 2: softmax; Phase 3: weighted sum of values.
        const double lse = softmax_in_place(prob);
        float* oi = r.o.data() + ((b * H + h) * Lq + i) * Dv;
        for (int64_t d = 0; d < Dv; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < Lk; ++j) {
            if (prob[j] != 0) acc += prob[j] * vb[j * Dv + d];
          }
          oi[d] = static_cast<float>(acc);
        }
        r.lse.data()[(b * H + h) * Lq + i] = static_cast<float>(lse);
      }
      cancel.report(double(b * H + h + 1) / double(B * H));
    }
  }
  return r;
}

void dense_map_tile(const AttentionProblem& p, const Inputs& in, const RunResult& res, int64_t b,
                    int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const ProblemShape& s = p.shape;
  const int64_t Dk = s.head_dim, kvh = h / (s.heads / s.kv_heads);
  const int64_t rows = i1 - i0, cols = j1 - j0;
  Eigen::Map<const RowMajor> qt(in.at("q").data() + ((b * s.heads + h) * s.q_len + i0) * Dk, rows,
                                Dk);
  Eigen::Map<const RowMajor> kt(in.at("k").data() + ((b * s.kv_heads + kvh) * s.kv_len + j0) * Dk,
                                cols, Dk);
  Eigen::Map<RowMajor> tile(out, rows, cols);
  tile.noalias() = qt * kt.transpose();
  scores_to_probabilities(p, res, b, h, i0, rows, j0, cols, out);
}

void scores_to_probabilities(const AttentionProblem& p, const RunResult& res, int64_t b, int64_t h,
                             int64_t i0, int64_t rows, int64_t j0, int64_t cols, float* tile) {
  // Maps recompute millions of entries per zoom: each row's visible keys are at most two ranges
  // (the sinks and the causal band), exponentiated as vectors; everything else is an exact 0.
  const KeyMask mask = KeyMask::of(p);
  const float scale = static_cast<float>(p.effective_scale());
  const float* lse = res.lse.data() + (b * p.shape.heads + h) * p.shape.q_len;
  const int64_t j1 = j0 + cols;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    const float l = lse[i];
    float* row = tile + r * cols;
    if (!std::isfinite(l)) {
      std::fill(row, row + cols, 0.0f);
      continue;
    }
    const int64_t hi = std::min(mask.hi(i), j1), lo = std::min(mask.window_lo(i), hi);
    const int64_t sinks = mask.window > 0 ? std::min(mask.sinks, lo) : 0;
    auto exp_range = [&](int64_t a, int64_t e) {  // keys [a, e) of the tile's row
      a = std::max(a, j0);
      if (e <= a) return;
      Eigen::Map<Eigen::ArrayXf> x(row + (a - j0), e - a);
      x = (x * scale - l).exp();
    };
    auto zero_range = [&](int64_t a, int64_t e) {
      a = std::max(a, j0);
      e = std::min(e, j1);
      if (e > a) std::fill(row + (a - j0), row + (e - j0), 0.0f);
    };
    exp_range(0, sinks);
    zero_range(sinks, lo);
    exp_range(lo, hi);
    zero_range(std::max(hi, lo), j1);
  }
}

}  // namespace attnscope::reference
