// Gated DeltaNet on the CPU. Chunked (prefill): the WY/UT form of docs/variants/gated_delta.md as
// GEMMs per chunk, with the unit-lower solve (I + A) X = B done by Eigen's blocked triangular
// solver. Recurrent (asked for with gdn.recurrent, or decode): rank-1 state updates, vectorized.
// State in fp32.
#include <cmath>

#include "attnscope/parallel.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/eigen_types.hpp"
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

void recurrent(const Sequence& s, int64_t L, int64_t Dv, MatrixR& S, float* o) {
  Eigen::RowVectorXf u(Dv);
  for (int64_t t = 0; t < L; ++t) {
    S *= std::exp(s.g[t]);
    u = s.beta[t] * (Eigen::Map<const Eigen::RowVectorXf>(s.v + t * Dv, Dv) - s.k.row(t) * S);
    S.noalias() += s.k.row(t).transpose() * u;
    Eigen::Map<Eigen::RowVectorXf>(o + t * Dv, Dv).noalias() = s.q.row(t) * S;
  }
}

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
      recurrent(s, L, Dv, S, o);
    } else {
      chunked(s, L, p.gated_delta.chunk_size, Dv, S, o);
    }
    view(final_state.data() + bh * Dk * Dv, Dk, Dv, Dv) = S;
  });
  r.final_state = std::move(final_state);
  return r;
}

}  // namespace attnscope::cpu
