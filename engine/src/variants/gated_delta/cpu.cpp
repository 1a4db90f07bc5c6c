// Gated DeltaNet on the CPU. Chunked (prefill): the WY/UT form of docs/variants/gated_delta.md as
// GEMMs per chunk, with the unit-lower solve (I + A) X = B done by Eigen's blocked triangular
// solver. Recurrent (asked for with gdn.recurrent): rank-1 state updates, on AVX-512 in column
// panels of the state that stay in L1 (below). State in fp32.
#include <algorithm>
#include <cmath>

#include "attnscope/parallel.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "backends/cpu/microkernel.hpp"
#include "variants/gated_delta/gated_delta.hpp"

namespace attnscope::cpu {
namespace {

struct Sequence {
  MatrixR q, k;       // [L, Dk] scaled (q) and optionally L2-normalized (both)
  const float* v;     // [L, Dv]
  const float* g;     // [L]
  const float* beta;  // [L]
};

void prepare(const AttentionProblem& p, const Inputs& in, int64_t bh, Sequence& s) {
  const int64_t L = p.shape.q_len, Dk = p.shape.head_dim, Dv = p.shape.v_head_dim;
  s.q = view(in.at("q").data() + bh * L * Dk, L, Dk, Dk);
  s.k = view(in.at("k").data() + bh * L * Dk, L, Dk, Dk);
  if (p.gated_delta.qk_l2norm) {  // x / sqrt(Σx² + 1e-6), as fla's l2norm
    for (int64_t t = 0; t < L; ++t) {
      s.q.row(t) /= std::sqrt(s.q.row(t).squaredNorm() + 1e-6f);
      s.k.row(t) /= std::sqrt(s.k.row(t).squaredNorm() + 1e-6f);
    }
  }
  s.q *= static_cast<float>(p.effective_scale());
  s.v = in.at("v").data() + bh * L * Dv;
  s.g = in.at("g").data() + bh * L;
  s.beta = in.at("beta").data() + bh * L;
}

// Two passes over the state per token instead of four: with α = e^g, S_t = α S + kᵀu where
// u = β (v − α k S), and o = q S_t = α q S + (q · k) u, so k S and q S come from one read of S
// and the update is one read-modify-write.
[[maybe_unused]] void recurrent(const Sequence& s, int64_t L, int64_t Dk, int64_t Dv, MatrixR& S,
                                float* o) {
  Eigen::RowVectorXf kS(Dv), qS(Dv), u(Dv);
  for (int64_t t = 0; t < L; ++t) {
    const float alpha = std::exp(s.g[t]);
    const float* k = s.k.row(t).data();
    const float* q = s.q.row(t).data();
    kS.setZero();
    qS.setZero();
    for (int64_t d = 0; d < Dk; ++d) {
      const auto row = S.row(d);
      kS.noalias() += k[d] * row;
      qS.noalias() += q[d] * row;
    }
    u = s.beta[t] * (Eigen::Map<const Eigen::RowVectorXf>(s.v + t * Dv, Dv) - alpha * kS);
    Eigen::Map<Eigen::RowVectorXf>(o + t * Dv, Dv) = alpha * qS + s.q.row(t).dot(s.k.row(t)) * u;
    for (int64_t d = 0; d < Dk; ++d) S.row(d) = alpha * S.row(d) + k[d] * u;
  }
}

#ifdef ATTNSCOPE_HAVE_MICROKERNEL
// The same recurrence a panel of S's columns at a time. Column j of S only ever meets u_j and
// o_j, so a Dk × 64 panel (32 KiB at Dk = 128) runs through all L tokens on its own and stays in
// L1, where the whole state (64 KiB) would stream from L2 twice per token.
//
// One pass over the panel per token: row d is updated with token t's kᵀu and, still in
// registers, dotted with token t + 1's k and q. (Measured at L 8192, H 8, D 128: four Eigen
// passes over the whole state per token 174 ms, two 115 ms, 32-column panels 68 ms, with one
// fused pass and the one-FMA update below 62 ms, 64-column panels 59 ms.)
//
// The panel holds P = S / c with c the running product of the decays, so the update
// P += kᵀ (u / c) is one FMA per element. When c would fall below 1e-10 (or a decay is 0) the
// decay goes into the values instead and c restarts at 1, so P stays within ~1e10 |S| (a state
// would have to exceed ~1e28 to overflow there; the decays cost one extra multiply per element
// every few dozen tokens).
//
// NV vectors of 16 columns per panel row; CH interleaved chains per sum hide the FMAs' latency.
template <int NV>
struct PanelDots {
  __m512 k[NV], q[NV];  // k P and q P over the panel's columns
};

template <int NV, int CH, bool UPDATE, bool SCALE = false>
PanelDots<NV> panel_pass(float* panel, int64_t Dk, const float* k_upd, const __m512* w,
                         __m512 scale, const float* k, const float* q) {
  constexpr int W = 16 * NV;
  __m512 ks[CH][NV], qs[CH][NV];
#pragma GCC unroll 4
  for (int i = 0; i < CH; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) ks[i][v] = qs[i][v] = _mm512_setzero_ps();
  }
  auto row_step = [&](int64_t d, int i) {
    float* row = panel + d * W;
    __m512 r[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) r[v] = _mm512_load_ps(row + 16 * v);
    if constexpr (UPDATE) {
      const __m512 kb = _mm512_set1_ps(k_upd[d]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        if constexpr (SCALE) r[v] = _mm512_mul_ps(scale, r[v]);
        r[v] = _mm512_fmadd_ps(kb, w[v], r[v]);
        _mm512_store_ps(row + 16 * v, r[v]);
      }
    }
    if (k) {
      const __m512 kb = _mm512_set1_ps(k[d]), qb = _mm512_set1_ps(q[d]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        ks[i][v] = _mm512_fmadd_ps(kb, r[v], ks[i][v]);
        qs[i][v] = _mm512_fmadd_ps(qb, r[v], qs[i][v]);
      }
    }
  };
  int64_t d = 0;
  for (; d + CH <= Dk; d += CH) {
#pragma GCC unroll 4
    for (int i = 0; i < CH; ++i) row_step(d + i, i);
  }
  for (; d < Dk; ++d) row_step(d, 0);
  PanelDots<NV> out;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    out.k[v] = ks[0][v];
    out.q[v] = qs[0][v];
#pragma GCC unroll 4
    for (int i = 1; i < CH; ++i) {
      out.k[v] = _mm512_add_ps(out.k[v], ks[i][v]);
      out.q[v] = _mm512_add_ps(out.q[v], qs[i][v]);
    }
  }
  return out;
}

template <int NV, int CH>
void recurrent_panel(const Sequence& s, int64_t L, int64_t Dk, int64_t Dv, int64_t j0,
                     const float* qk, float* S, float* panel, float* o) {
  constexpr int W = 16 * NV;
  __mmask16 m[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t left = std::clamp<int64_t>(Dv - j0 - 16 * v, 0, 16);
    m[v] = left == 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  }
  for (int64_t d = 0; d < Dk; ++d) {
    for (int v = 0; v < NV; ++v) {
      _mm512_store_ps(panel + d * W + 16 * v,
                      _mm512_maskz_loadu_ps(m[v], S + d * Dv + j0 + 16 * v));
    }
  }
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 w[NV];
  PanelDots<NV> dots{};
  if (L > 0) {
    dots =
        panel_pass<NV, CH, false>(panel, Dk, nullptr, w, one, s.k.row(0).data(), s.q.row(0).data());
  }
  float c = 1.0f;  // S = c P
  for (int64_t t = 0; t < L; ++t) {
    const __m512 cv = _mm512_set1_ps(c);  // k S and q S of the state before token t
    const float a = std::exp(s.g[t]);
    const __m512 alpha = _mm512_set1_ps(a);
    const __m512 beta = _mm512_set1_ps(s.beta[t]), dot = _mm512_set1_ps(qk[t]);
    const float* v_in = s.v + t * Dv + j0;
    float* out = o + t * Dv + j0;
    __m512 u[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      // u = β (v − α kS);  o = α qS + (q · k) u
      const __m512 kS = _mm512_mul_ps(cv, dots.k[v]), qS = _mm512_mul_ps(cv, dots.q[v]);
      u[v] = _mm512_mul_ps(beta,
                           _mm512_fnmadd_ps(alpha, kS, _mm512_maskz_loadu_ps(m[v], v_in + 16 * v)));
      _mm512_mask_storeu_ps(out + 16 * v, m[v],
                            _mm512_fmadd_ps(dot, u[v], _mm512_mul_ps(alpha, qS)));
    }
    // S = α S + kᵀ u: P = P + kᵀ (u / c) with c ← α c, or P = (α c) P + kᵀ u with c ← 1.
    const float next = c * a;
    const bool rescale = !(next >= 1e-10f);
    __m512 scale = one;
    if (!rescale) {
      c = next;
      const __m512 inv = _mm512_set1_ps(1.0f / c);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) w[v] = _mm512_mul_ps(u[v], inv);
    } else {
      scale = _mm512_set1_ps(next);
      c = 1.0f;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) w[v] = u[v];
    }
    const bool more = t + 1 < L;
    const float* kn = more ? s.k.row(t + 1).data() : nullptr;
    const float* qn = more ? s.q.row(t + 1).data() : nullptr;
    dots = rescale ? panel_pass<NV, CH, true, true>(panel, Dk, s.k.row(t).data(), w, scale, kn, qn)
                   : panel_pass<NV, CH, true>(panel, Dk, s.k.row(t).data(), w, scale, kn, qn);
  }
  const __m512 cv = _mm512_set1_ps(c);
  for (int64_t d = 0; d < Dk; ++d) {
    for (int v = 0; v < NV; ++v) {
      _mm512_mask_storeu_ps(S + d * Dv + j0 + 16 * v, m[v],
                            _mm512_mul_ps(cv, _mm512_load_ps(panel + d * W + 16 * v)));
    }
  }
}
#endif

void chunked(const Sequence& s, int64_t L, int64_t C, int64_t Dv, MatrixR& S, float* o) {
  MatrixR M, U, W, QK;
  Eigen::VectorXf gamma, eg;
  for (int64_t t0 = 0; t0 < L; t0 += C) {
    const int64_t n = std::min(C, L - t0);
    auto Q = s.q.middleRows(t0, n);
    auto K = s.k.middleRows(t0, n);
    auto V = view(s.v + t0 * Dv, n, Dv, Dv);
    gamma.resize(n);  // cumulative log decay inside the chunk, summed in double
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) gamma[i] = static_cast<float>(acc += s.g[t0 + i]);
    eg = gamma.array().exp();
    const float g_end = gamma[n - 1];
    // M = I + strictly_lower(diag(β) K Kᵀ ⊙ Γ), Γ_ij = exp(γ_i − γ_j).
    M.noalias() = K * K.transpose();
    // Γ row by row as vectorized exps of γ_i − γ_j <= 0 (never e^{-γ}, which can overflow).
    for (int64_t i = 1; i < n; ++i) {
      M.row(i).head(i).array() *=
          s.beta[t0 + i] * (gamma[i] - gamma.head(i).array()).exp().transpose();
    }
    // U = M⁻¹ (β ⊙ V),  W = M⁻¹ (β ⊙ K ⊙ e^γ)
    U = Eigen::Map<const Eigen::VectorXf>(s.beta + t0, n).asDiagonal() * V;
    W = (Eigen::Map<const Eigen::VectorXf>(s.beta + t0, n).cwiseProduct(eg)).asDiagonal() * K;
    M.triangularView<Eigen::UnitLower>().solveInPlace(U);
    M.triangularView<Eigen::UnitLower>().solveInPlace(W);
    U.noalias() -= W * S;  // V' = U − W S
    // O = (Q ⊙ e^γ) S + (Q Kᵀ ⊙ Γ ⊙ lower_incl_diag) V'
    QK.noalias() = Q * K.transpose();
    for (int64_t i = 0; i < n; ++i) {
      QK.row(i).head(i + 1).array() *= (gamma[i] - gamma.head(i + 1).array()).exp().transpose();
      QK.row(i).tail(n - i - 1).setZero();
    }
    auto out = view(o + t0 * Dv, n, Dv, Dv);
    out.noalias() = eg.asDiagonal() * (Q * S);
    out.noalias() += QK * U;
    // S ← e^{γ_n} S + (K ⊙ e^{γ_n − γ})ᵀ V'
    S *= std::exp(g_end);
    S.noalias() += (K.transpose() * (g_end - gamma.array()).exp().matrix().asDiagonal()) * U;
  }
}

}  // namespace

RunResult run_gated_delta(const Context& c) {
  const AttentionProblem& p = c.problem;
  const int64_t B = p.shape.batch, H = p.shape.heads, L = p.shape.q_len;
  const int64_t Dk = p.shape.head_dim, Dv = p.shape.v_head_dim;
  const float* init = c.inputs.has("initial_state") ? c.inputs.at("initial_state").data() : nullptr;
  RunResult r;
  r.o = Tensor({B, H, L, Dv});
  Tensor final_state({B, H, Dk, Dv});
  ThreadPool::global().parallel_for(B * H, c.threads, [&](int64_t bh, int) {
    c.cancel.throw_if_cancelled();
    thread_local Sequence s;
    prepare(p, c.inputs, bh, s);
    MatrixR S = init ? MatrixR(view(init + bh * Dk * Dv, Dk, Dv, Dv)) : MatrixR::Zero(Dk, Dv);
    float* o = r.o.data() + bh * L * Dv;
    if (p.gated_delta.recurrent) {
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
      thread_local AlignedVector panel, qk;
      float* dots = grow(qk, L);
      for (int64_t t = 0; t < L; ++t) dots[t] = s.q.row(t).dot(s.k.row(t));
      for (int64_t j0 = 0; j0 < Dv; j0 += 64) {
        recurrent_panel<4, 2>(s, L, Dk, Dv, j0, dots, S.data(), grow(panel, Dk * 64), o);
      }
#else
      recurrent(s, L, Dk, Dv, S, o);
#endif
    } else {
      chunked(s, L, p.gated_delta.chunk_size, Dv, S, o);
    }
    view(final_state.data() + bh * Dk * Dv, Dk, Dv, Dv) = S;
  });
  r.final_state = std::move(final_state);
  return r;
}

}  // namespace attnscope::cpu
