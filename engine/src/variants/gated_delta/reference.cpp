// Reference Gated DeltaNet (gated delta rule, Yang et al. 2024) in both forms: the step-by-step
// recurrence and the chunked WY/UT form, float64 throughout; they must agree
// (docs/variants/gated_delta.md).
#include "backends/reference/reference.hpp"
#include "variants/gated_delta/gated_delta.hpp"

namespace attnscope::reference {
namespace {

struct GdnDims {
  int64_t B, H, L, Dk, Dv;
  explicit GdnDims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        L(p.shape.q_len),
        Dk(p.shape.head_dim),
        Dv(p.shape.v_head_dim) {}
};

// q (scaled) and k of tokens [t0, t1) of one (batch, head) in float64, row t at (t - t0),
// L2-normalized per token when asked (x / sqrt(Σx² + 1e-6), before the query scale, as fla does).
void load_qk(const AttentionProblem& p, const GdnDims& d, const Inputs& in, int64_t bh, int64_t t0,
             int64_t t1, std::vector<double>& q, std::vector<double>& k) {
  const double scale = p.effective_scale();
  q.resize(static_cast<size_t>((t1 - t0) * d.Dk));
  k.resize(static_cast<size_t>((t1 - t0) * d.Dk));
  const float* qs = in.at("q").data() + bh * d.L * d.Dk;
  const float* ks = in.at("k").data() + bh * d.L * d.Dk;
  for (int64_t t = t0; t < t1; ++t) {
    double qn = 0, kn = 0;
    for (int64_t e = 0; e < d.Dk; ++e) {
      qn += double(qs[t * d.Dk + e]) * qs[t * d.Dk + e];
      kn += double(ks[t * d.Dk + e]) * ks[t * d.Dk + e];
    }
    const double qf = p.gated_delta.qk_l2norm ? 1.0 / std::sqrt(qn + 1e-6) : 1.0;
    const double kf = p.gated_delta.qk_l2norm ? 1.0 / std::sqrt(kn + 1e-6) : 1.0;
    for (int64_t e = 0; e < d.Dk; ++e) {
      q[(t - t0) * d.Dk + e] = qs[t * d.Dk + e] * qf * scale;
      k[(t - t0) * d.Dk + e] = ks[t * d.Dk + e] * kf;
    }
  }
}

// S_t = exp(g_t) S_{t-1};  u_t = beta_t (v_t - S_tᵀ k_t);  S_t += k_t u_tᵀ;  o_t = S_tᵀ q_t.
void recurrent(const GdnDims& d, const std::vector<double>& q, const std::vector<double>& k,
               const float* v, const float* g, const float* beta, std::vector<double>& S,
               float* o) {
  std::vector<double> u(static_cast<size_t>(d.Dv));  // [Dv]
  for (int64_t t = 0; t < d.L; ++t) {
    const double decay = std::exp(double(g[t]));
    for (double& s : S) s *= decay;
    for (int64_t e = 0; e < d.Dv; ++e) {
      double sk = 0;
      for (int64_t c = 0; c < d.Dk; ++c) sk += S[c * d.Dv + e] * k[t * d.Dk + c];
      u[e] = beta[t] * (v[t * d.Dv + e] - sk);
    }
    for (int64_t c = 0; c < d.Dk; ++c) {
      for (int64_t e = 0; e < d.Dv; ++e) S[c * d.Dv + e] += k[t * d.Dk + c] * u[e];
    }
    for (int64_t e = 0; e < d.Dv; ++e) {
      double acc = 0;
      for (int64_t c = 0; c < d.Dk; ++c) acc += S[c * d.Dv + e] * q[t * d.Dk + c];
      o[t * d.Dv + e] = static_cast<float>(acc);
    }
  }
}

// Chunked form: per chunk of n <= C tokens, with γ = cumsum(g) inside the chunk,
//   A = strictly_lower(diag(β) K Kᵀ ⊙ Γ),  T = (I + A)⁻¹   (solved by forward substitution)
//   U = T (β ⊙ V),  W = T (β ⊙ K ⊙ e^γ),  V' = U − W S
//   O = (Q ⊙ e^γ) S + (Q Kᵀ ⊙ Γ ⊙ lower_incl_diag) V',  S ← e^{γ_n} S + (K ⊙ e^{γ_n − γ})ᵀ V'.
void chunked(const GdnDims& d, int64_t C, const std::vector<double>& q,
             const std::vector<double>& k, const float* v, const float* g, const float* beta,
             std::vector<double>& S, float* o) {
  std::vector<double> gamma, A, U, W;
  for (int64_t t0 = 0; t0 < d.L; t0 += C) {
    const int64_t n = std::min(C, d.L - t0);
    const double* Q = q.data() + t0 * d.Dk;     // [n, Dk]
    const double* K = k.data() + t0 * d.Dk;     // [n, Dk]
    gamma.assign(static_cast<size_t>(n), 0.0);  // [n]
    for (int64_t i = 0; i < n; ++i) gamma[i] = (i ? gamma[i - 1] : 0.0) + g[t0 + i];
    auto kdot = [&](const double* X, int64_t i, int64_t j) {
      double s = 0;
      for (int64_t c = 0; c < d.Dk; ++c) s += X[i * d.Dk + c] * K[j * d.Dk + c];
      return s;
    };
    A.assign(static_cast<size_t>(n * n), 0.0);  // [n, n] strictly lower
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < i; ++j) {
        A[i * n + j] = beta[t0 + i] * kdot(K, i, j) * std::exp(gamma[i] - gamma[j]);
      }
    }
    // (I + A) U = β ⊙ V and (I + A) W = β ⊙ K ⊙ e^γ, row by row.
    U.assign(static_cast<size_t>(n * d.Dv), 0.0);  // [n, Dv]
    W.assign(static_cast<size_t>(n * d.Dk), 0.0);  // [n, Dk]
    for (int64_t i = 0; i < n; ++i) {
      const double bi = beta[t0 + i], eg = std::exp(gamma[i]);
      for (int64_t e = 0; e < d.Dv; ++e) U[i * d.Dv + e] = bi * v[(t0 + i) * d.Dv + e];
      for (int64_t c = 0; c < d.Dk; ++c) W[i * d.Dk + c] = bi * K[i * d.Dk + c] * eg;
      for (int64_t j = 0; j < i; ++j) {
        const double a = A[i * n + j];
        for (int64_t e = 0; e < d.Dv; ++e) U[i * d.Dv + e] -= a * U[j * d.Dv + e];
        for (int64_t c = 0; c < d.Dk; ++c) W[i * d.Dk + c] -= a * W[j * d.Dk + c];
      }
    }
    // V' = U − W S, in place in U.
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t e = 0; e < d.Dv; ++e) {
        double ws = 0;
        for (int64_t c = 0; c < d.Dk; ++c) ws += W[i * d.Dk + c] * S[c * d.Dv + e];
        U[i * d.Dv + e] -= ws;
      }
    }
    // Outputs: inter-chunk part through the state, intra-chunk part through V'.
    for (int64_t i = 0; i < n; ++i) {
      const double eg = std::exp(gamma[i]);
      for (int64_t e = 0; e < d.Dv; ++e) {
        double acc = 0;
        for (int64_t c = 0; c < d.Dk; ++c) acc += Q[i * d.Dk + c] * eg * S[c * d.Dv + e];
        for (int64_t j = 0; j <= i; ++j) {
          acc += kdot(Q, i, j) * std::exp(gamma[i] - gamma[j]) * U[j * d.Dv + e];
        }
        o[(t0 + i) * d.Dv + e] = static_cast<float>(acc);
      }
    }
    // State to the end of the chunk.
    const double g_end = gamma[n - 1];
    for (int64_t c = 0; c < d.Dk; ++c) {
      for (int64_t e = 0; e < d.Dv; ++e) {
        double acc = std::exp(g_end) * S[c * d.Dv + e];
        for (int64_t j = 0; j < n; ++j) {
          acc += K[j * d.Dk + c] * std::exp(g_end - gamma[j]) * U[j * d.Dv + e];
        }
        S[c * d.Dv + e] = acc;
      }
    }
  }
}

}  // namespace

RunResult gated_delta_run(const AttentionProblem& p, const Inputs& in, const CancelToken& cancel) {
  const GdnDims d(p);
  const float* v = in.at("v").data();        // [B, H, L, Dv]
  const float* g = in.at("g").data();        // [B, H, L]
  const float* beta = in.at("beta").data();  // [B, H, L]
  const float* init = in.has("initial_state") ? in.at("initial_state").data() : nullptr;
  RunResult r;
  r.o = Tensor({d.B, d.H, d.L, d.Dv});
  Tensor final_state({d.B, d.H, d.Dk, d.Dv});
  std::vector<double> q, k;                                 // [L, Dk] each
  std::vector<double> S(static_cast<size_t>(d.Dk * d.Dv));  // [Dk, Dv] the state, float64
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    cancel.throw_if_cancelled();
    load_qk(p, d, in, bh, 0, d.L, q, k);
    for (int64_t i = 0; i < d.Dk * d.Dv; ++i) S[i] = init ? init[bh * d.Dk * d.Dv + i] : 0.0;
    const float* vb = v + bh * d.L * d.Dv;
    float* ob = r.o.data() + bh * d.L * d.Dv;
    if (p.gated_delta.recurrent) {
      recurrent(d, q, k, vb, g + bh * d.L, beta + bh * d.L, S, ob);
    } else {
      chunked(d, p.gated_delta.chunk_size, q, k, vb, g + bh * d.L, beta + bh * d.L, S, ob);
    }
    for (int64_t i = 0; i < d.Dk * d.Dv; ++i) {
      final_state.data()[bh * d.Dk * d.Dv + i] = static_cast<float>(S[i]);
    }
    cancel.report(double(bh + 1) / double(d.B * d.H));
  }
  r.final_state = std::move(final_state);
  return r;
}

// Implicit attention A[i][j], the weight of v_j in o_i. The recurrence is S_t = M_t S_{t-1} +
// β_t k_t v_tᵀ with M_t = e^{g_t}(I − β_t k_t k_tᵀ) (symmetric), so o_i = Σ_j v_j β_j k_jᵀ
// (M_{j+1} ⋯ M_i) q_i: walk j down from i carrying r = M_{j+1} ⋯ M_i q_i. The initial state's
// contribution belongs to no token and is left out.
void gated_delta_map_tile(const AttentionProblem& p, const Inputs& in, const RunResult&, int64_t b,
                          int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  const GdnDims d(p);
  const int64_t bh = b * d.H + h;
  // Only tokens [min(i0, j0), i1) take part: rows need q_i, the walk needs k_t for t >= j0.
  const int64_t t0 = std::min(i0, j0);
  std::vector<double> q, k;
  load_qk(p, d, in, bh, t0, i1, q, k);
  const float* g = in.at("g").data() + bh * d.L;
  const float* beta = in.at("beta").data() + bh * d.L;
  std::vector<double> r(static_cast<size_t>(d.Dk));
  const int64_t cols = j1 - j0;
  for (int64_t i = i0; i < i1; ++i) {
    float* row = out + (i - i0) * cols;
    std::fill(row, row + cols, 0.0f);
    if (i < j0) continue;  // keys after the query: zero weight
    std::copy(q.begin() + (i - t0) * d.Dk, q.begin() + (i - t0 + 1) * d.Dk, r.begin());
    for (int64_t t = i; t >= j0; --t) {
      const double* kt = k.data() + (t - t0) * d.Dk;
      double kr = 0;
      for (int64_t c = 0; c < d.Dk; ++c) kr += kt[c] * r[c];
      if (t < j1) row[t - j0] = static_cast<float>(beta[t] * kr);
      const double a = std::exp(double(g[t]));
      for (int64_t c = 0; c < d.Dk; ++c) r[c] = a * (r[c] - beta[t] * kt[c] * kr);
    }
  }
}

}  // namespace attnscope::reference
