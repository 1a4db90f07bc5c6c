// Reference multi-head latent attention (DeepSeek-V2/V3) in both forms: naive (expand K/V per head,
// then dense attention) and absorbed (score against the latent directly). float64 throughout.
#include <Eigen/Core>

#include "attnscope/mask.hpp"
#include "backends/reference/reference.hpp"
#include "variants/mla/mla.hpp"

namespace attnscope::reference {
namespace {

struct MlaDims {
  int64_t B, H, Lq, Lk, Dn, Dr, Dc, Dv;
  explicit MlaDims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        Lq(p.shape.q_len),
        Lk(p.shape.kv_len),
        Dn(p.mla.nope_dim),
        Dr(p.mla.rope_dim),
        Dc(p.mla.kv_lora_rank),
        Dv(p.shape.v_head_dim) {}
};

// Absorbed query of one row: q̃ = w_ukᵀ q_nope, [Dc].
void absorb_query(const MlaDims& d, const float* qi, const float* wk, std::vector<double>& qt) {
  qt.assign(static_cast<size_t>(d.Dc), 0.0);
  for (int64_t n = 0; n < d.Dn; ++n) {
    for (int64_t c = 0; c < d.Dc; ++c) qt[c] += double(qi[n]) * wk[n * d.Dc + c];
  }
}

// Scaled score of one (row, key) pair in the absorbed form.
double absorbed_score(const MlaDims& d, const std::vector<double>& qt, const float* q_rope,
                      const float* ct, const float* krt, double scale) {
  double dot = 0;
  for (int64_t c = 0; c < d.Dc; ++c) dot += qt[c] * ct[c];
  for (int64_t r = 0; r < d.Dr; ++r) dot += double(q_rope[r]) * krt[r];
  return dot * scale;
}

}  // namespace

RunResult mla_run(const AttentionProblem& p, const Inputs& in, const CancelToken& cancel) {
  const MlaDims d(p);
  const Tensor& q = in.at("q");            // [B, H, Lq, Dn + Dr]
  const Tensor& c_kv = in.at("c_kv");      // [B, Lk, Dc]
  const Tensor& k_rope = in.at("k_rope");  // [B, Lk, Dr]
  const Tensor& w_uk = in.at("w_uk");      // [H, Dn, Dc]
  const Tensor& w_uv = in.at("w_uv");      // [H, Dv, Dc]
  const KeyMask mask = KeyMask::of(p);
  const double scale = p.effective_scale();
  const int64_t Dq = d.Dn + d.Dr;
  RunResult r = make_softmax_result(p);

  std::vector<double> prob(static_cast<size_t>(d.Lk));           // [Lk]
  std::vector<double> k_nope(static_cast<size_t>(d.Lk * d.Dn));  // [Lk, Dn] naive form only
  std::vector<double> v_h(static_cast<size_t>(d.Lk * d.Dv));     // [Lk, Dv] naive form only
  std::vector<double> q_abs;                                     // [Dc] absorbed form only
  std::vector<double> x(static_cast<size_t>(d.Dc));              // [Dc] absorbed form only
  for (int64_t b = 0; b < d.B; ++b) {
    const float* cb = c_kv.data() + b * d.Lk * d.Dc;
    const float* kr = k_rope.data() + b * d.Lk * d.Dr;
    for (int64_t h = 0; h < d.H; ++h) {
      cancel.throw_if_cancelled();
      const float* wk = w_uk.data() + h * d.Dn * d.Dc;
      const float* wv = w_uv.data() + h * d.Dv * d.Dc;
      if (!p.mla.absorbed) {
        // Naive form, phase 1: expand this head's keys and values from the latent.
        for (int64_t t = 0; t < d.Lk; ++t) {
          for (int64_t n = 0; n < d.Dn; ++n) {
            double acc = 0;
            for (int64_t c = 0; c < d.Dc; ++c) acc += double(cb[t * d.Dc + c]) * wk[n * d.Dc + c];
            k_nope[t * d.Dn + n] = acc;
          }
          for (int64_t e = 0; e < d.Dv; ++e) {
            double acc = 0;
            for (int64_t c = 0; c < d.Dc; ++c) acc += double(cb[t * d.Dc + c]) * wv[e * d.Dc + c];
            v_h[t * d.Dv + e] = acc;
          }
        }
      }
      for (int64_t i = 0; i < d.Lq; ++i) {
        // Every 64 rows: a long head must not delay cancellation by seconds.
        if (i % 64 == 63) cancel.throw_if_cancelled();
        const float* qi = q.data() + ((b * d.H + h) * d.Lq + i) * Dq;
        if (p.mla.absorbed) absorb_query(d, qi, wk, q_abs);
        // Phase 2: scores over visible keys (either form), then softmax.
        for (int64_t t = 0; t < d.Lk; ++t) {
          if (!mask.visible(i, t)) {
            prob[t] = kNegInf;
            continue;
          }
          if (p.mla.absorbed) {
            prob[t] = absorbed_score(d, q_abs, qi + d.Dn, cb + t * d.Dc, kr + t * d.Dr, scale);
          } else {
            double dot = 0;
            for (int64_t n = 0; n < d.Dn; ++n) dot += double(qi[n]) * k_nope[t * d.Dn + n];
            for (int64_t e = 0; e < d.Dr; ++e) dot += double(qi[d.Dn + e]) * kr[t * d.Dr + e];
            prob[t] = dot * scale;
          }
        }
        const double lse = softmax_in_place(prob);
        r.lse.data()[(b * d.H + h) * d.Lq + i] = static_cast<float>(lse);
        float* oi = r.o.data() + ((b * d.H + h) * d.Lq + i) * d.Dv;
        // Phase 3: values. Absorbed: x = Σ p_t c_t, then o = w_uv x; naive: o = Σ p_t v_t.
        if (p.mla.absorbed) {
          std::fill(x.begin(), x.end(), 0.0);
          for (int64_t t = 0; t < d.Lk; ++t) {
            if (prob[t] == 0) continue;
            for (int64_t c = 0; c < d.Dc; ++c) x[c] += prob[t] * cb[t * d.Dc + c];
          }
          for (int64_t e = 0; e < d.Dv; ++e) {
            double acc = 0;
            for (int64_t c = 0; c < d.Dc; ++c) acc += double(wv[e * d.Dc + c]) * x[c];
            oi[e] = static_cast<float>(acc);
          }
        } else {
          for (int64_t e = 0; e < d.Dv; ++e) {
            double acc = 0;
            for (int64_t t = 0; t < d.Lk; ++t) {
              if (prob[t] != 0) acc += prob[t] * v_h[t * d.Dv + e];
            }
            oi[e] = static_cast<float>(acc);
          }
        }
      }
      cancel.report(double(b * d.H + h + 1) / double(d.B * d.H));
    }
  }
  return r;
}

// Map tiles are recomputed on every zoom, so they run on fp32 GEMMs in the absorbed form (the
// same scores as the naive form, without expanding K): S = (q_nope w_uk) c_kvᵀ + q_rope k_ropeᵀ.
void mla_map_tile(const AttentionProblem& p, const Inputs& in, const RunResult& res, int64_t b,
                  int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Strided = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
  const MlaDims d(p);
  const int64_t Dq = d.Dn + d.Dr, rows = i1 - i0, cols = j1 - j0;
  const float* q = in.at("q").data() + ((b * d.H + h) * d.Lq + i0) * Dq;
  const Strided q_nope(q, rows, d.Dn, Eigen::OuterStride<>(Dq));
  const Strided q_rope(q + d.Dn, rows, d.Dr, Eigen::OuterStride<>(Dq));
  Eigen::Map<const RowMajor> w_uk(in.at("w_uk").data() + h * d.Dn * d.Dc, d.Dn, d.Dc);
  Eigen::Map<const RowMajor> c(in.at("c_kv").data() + (b * d.Lk + j0) * d.Dc, cols, d.Dc);
  Eigen::Map<const RowMajor> kr(in.at("k_rope").data() + (b * d.Lk + j0) * d.Dr, cols, d.Dr);
  const RowMajor q_abs = q_nope * w_uk;  // [rows, Dc]
  Eigen::Map<RowMajor> tile(out, rows, cols);
  tile.noalias() = q_abs * c.transpose();
  if (d.Dr > 0) tile.noalias() += q_rope * kr.transpose();
  scores_to_probabilities(p, res, b, h, i0, rows, j0, cols, out);
}

}  // namespace attnscope::reference
