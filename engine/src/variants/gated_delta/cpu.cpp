// Gated DeltaNet on the CPU. Chunked (prefill): the WY/UT form of docs/variants/gated_delta.md as
// GEMMs per chunk, with the unit-lower solve (I + A) X = B done by Eigen's blocked triangular
// solver. Recurrent (asked for with gdn.recurrent, or decode): rank-1 state updates, vectorized.
// State in fp32.
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
// The same recurrence 32 columns of S at a time. Column j of S only ever meets u_j and o_j, so a
// Dk × 32 panel (16 KiB at Dk = 128) runs through all L tokens on its own and stays in L1, where
// the whole state (64 KiB) would stream from L2 twice per token.
//
// One pass over the panel per token: row d is updated with token t's kᵀu and, still in
// registers, dotted with token t + 1's k and q. (Measured at L 8192, H 8, D 128: four Eigen
// passes over the whole state per token 174 ms, two 115 ms, panels 68 ms, panels with one fused
// pass and the one-FMA update below 62 ms.)
//
// The panel holds P = S / c with c the running product of the decays, so the update
// P += kᵀ (u / c) is one FMA per element. When c would fall below 1e-10 (or a decay is 0) the
// decay goes into the values instead and c restarts at 1, so P stays within ~1e10 |S| (a state
// would have to exceed ~1e28 to overflow there; the decays cost one extra multiply per element
// every few dozen tokens).
struct PanelDots {
  __m512 k0, k1, q0, q1;  // k P and q P over the panel's 32 columns
};

// Four interleaved chains per sum hide the FMAs' latency; the rows come in fours.
template <bool UPDATE, bool SCALE = false>
PanelDots panel_pass(float* panel, int64_t Dk, const float* k_upd, __m512 w0, __m512 w1,
                     __m512 scale, const float* k, const float* q) {
  __m512 ks0[4], ks1[4], qs0[4], qs1[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) ks0[i] = ks1[i] = qs0[i] = qs1[i] = _mm512_setzero_ps();
  auto row_step = [&](int64_t d, int i) {
    float* row = panel + d * 32;
    __m512 r0 = _mm512_load_ps(row), r1 = _mm512_load_ps(row + 16);
    if constexpr (UPDATE) {
      const __m512 kb = _mm512_set1_ps(k_upd[d]);
      if constexpr (SCALE) {
        r0 = _mm512_mul_ps(scale, r0);
        r1 = _mm512_mul_ps(scale, r1);
      }
      r0 = _mm512_fmadd_ps(kb, w0, r0);
      r1 = _mm512_fmadd_ps(kb, w1, r1);
      _mm512_store_ps(row, r0);
      _mm512_store_ps(row + 16, r1);
    }
    if (k) {
      const __m512 kb = _mm512_set1_ps(k[d]), qb = _mm512_set1_ps(q[d]);
      ks0[i] = _mm512_fmadd_ps(kb, r0, ks0[i]);
      ks1[i] = _mm512_fmadd_ps(kb, r1, ks1[i]);
      qs0[i] = _mm512_fmadd_ps(qb, r0, qs0[i]);
      qs1[i] = _mm512_fmadd_ps(qb, r1, qs1[i]);
    }
  };
  int64_t d = 0;
  for (; d + 4 <= Dk; d += 4) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) row_step(d + i, i);
  }
  for (; d < Dk; ++d) row_step(d, 0);
  auto sum = [](const __m512* x) {
    return _mm512_add_ps(_mm512_add_ps(x[0], x[1]), _mm512_add_ps(x[2], x[3]));
  };
  return {sum(ks0), sum(ks1), sum(qs0), sum(qs1)};
}

void recurrent_panel(const Sequence& s, int64_t L, int64_t Dk, int64_t Dv, int64_t j0,
                     const float* qk, float* S, float* panel, float* o) {
  const int64_t cols = std::min<int64_t>(32, Dv - j0);
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32   ? __mmask16(0xFFFF)
                       : cols <= 16 ? __mmask16(0)
                                    : __mmask16((1u << (cols - 16)) - 1);
  for (int64_t d = 0; d < Dk; ++d) {
    _mm512_store_ps(panel + d * 32, _mm512_maskz_loadu_ps(m0, S + d * Dv + j0));
    _mm512_store_ps(panel + d * 32 + 16, _mm512_maskz_loadu_ps(m1, S + d * Dv + j0 + 16));
  }
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  PanelDots dots = L > 0 ? panel_pass<false>(panel, Dk, nullptr, zero, zero, one, s.k.row(0).data(),
                                             s.q.row(0).data())
                         : PanelDots{zero, zero, zero, zero};
  float c = 1.0f;  // S = c P
  for (int64_t t = 0; t < L; ++t) {
    const __m512 cv = _mm512_set1_ps(c);  // k S and q S of the state before token t
    const __m512 kS0 = _mm512_mul_ps(cv, dots.k0), kS1 = _mm512_mul_ps(cv, dots.k1);
    const __m512 qS0 = _mm512_mul_ps(cv, dots.q0), qS1 = _mm512_mul_ps(cv, dots.q1);
    const float a = std::exp(s.g[t]);
    const __m512 alpha = _mm512_set1_ps(a);
    const __m512 beta = _mm512_set1_ps(s.beta[t]), dot = _mm512_set1_ps(qk[t]);
    const float* v = s.v + t * Dv + j0;
    // u = β (v − α kS);  o = α qS + (q · k) u
    const __m512 u0 =
        _mm512_mul_ps(beta, _mm512_fnmadd_ps(alpha, kS0, _mm512_maskz_loadu_ps(m0, v)));
    const __m512 u1 =
        _mm512_mul_ps(beta, _mm512_fnmadd_ps(alpha, kS1, _mm512_maskz_loadu_ps(m1, v + 16)));
    float* out = o + t * Dv + j0;
    _mm512_mask_storeu_ps(out, m0, _mm512_fmadd_ps(dot, u0, _mm512_mul_ps(alpha, qS0)));
    _mm512_mask_storeu_ps(out + 16, m1, _mm512_fmadd_ps(dot, u1, _mm512_mul_ps(alpha, qS1)));
    // S = α S + kᵀ u: P = P + kᵀ (u / c) with c ← α c, or P = (α c) P + kᵀ u with c ← 1.
    const float next = c * a;
    __m512 w0 = u0, w1 = u1, scale = one;
    const bool rescale = !(next >= 1e-10f);
    if (!rescale) {
      c = next;
      const __m512 inv = _mm512_set1_ps(1.0f / c);
      w0 = _mm512_mul_ps(u0, inv);
      w1 = _mm512_mul_ps(u1, inv);
    } else {
      scale = _mm512_set1_ps(next);
      c = 1.0f;
    }
    const bool more = t + 1 < L;
    const float* kn = more ? s.k.row(t + 1).data() : nullptr;
    const float* qn = more ? s.q.row(t + 1).data() : nullptr;
    dots = rescale ? panel_pass<true, true>(panel, Dk, s.k.row(t).data(), w0, w1, scale, kn, qn)
                   : panel_pass<true>(panel, Dk, s.k.row(t).data(), w0, w1, scale, kn, qn);
  }
  const __m512 cv = _mm512_set1_ps(c);
  for (int64_t d = 0; d < Dk; ++d) {
    _mm512_mask_storeu_ps(S + d * Dv + j0, m0, _mm512_mul_ps(cv, _mm512_load_ps(panel + d * 32)));
    _mm512_mask_storeu_ps(S + d * Dv + j0 + 16, m1,
                          _mm512_mul_ps(cv, _mm512_load_ps(panel + d * 32 + 16)));
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
      for (int64_t j0 = 0; j0 < Dv; j0 += 32) {
        recurrent_panel(s, L, Dk, Dv, j0, dots, S.data(), grow(panel, Dk * 32), o);
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
