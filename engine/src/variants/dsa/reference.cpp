// Reference DeepSeek Sparse Attention (DeepSeek-V3.2-Exp): the lightning indexer scores every past
// key of a query, the top_k keys by that score are kept, and MLA's absorbed form attends to exactly
// those. float64 throughout, one query row at a time.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "attnscope/error.hpp"
#include "attnscope/probes.hpp"
#include "backends/reference/reference.hpp"
#include "variants/dsa/dsa.hpp"

namespace attnscope::reference {
namespace {

struct DsaDims {
  int64_t B, H, Lq, Lk, Dn, Dr, Dc, Dv, Hi, Di, top_k;
  explicit DsaDims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        Lq(p.shape.q_len),
        Lk(p.shape.kv_len),
        Dn(p.mla.nope_dim),
        Dr(p.mla.rope_dim),
        Dc(p.mla.kv_lora_rank),
        Dv(p.shape.v_head_dim),
        Hi(p.dsa.index_heads),
        Di(p.dsa.index_head_dim),
        top_k(p.dsa.top_k) {}
};

// The indexer's q_idx and k_idx as its dot products see them: e4m3-rounded copies with index_fp8.
struct IndexInputs {
  Tensor q_fp8, k_fp8;  // empty without index_fp8
  const float* q = nullptr;
  const float* k = nullptr;
};

IndexInputs index_inputs(const AttentionProblem& p, const Inputs& in) {
  const DsaDims d(p);
  IndexInputs x;
  x.q = in.at("q_idx").data();
  x.k = in.at("k_idx").data();
  if (p.dsa.index_fp8) {
    x.q_fp8 = in.at("q_idx");
    x.k_fp8 = in.at("k_idx");
    dsa::fake_quantize_e4m3(x.q_fp8.data(), d.B * d.Hi * d.Lq, d.Di);
    dsa::fake_quantize_e4m3(x.k_fp8.data(), d.B * d.Lk, d.Di);
    x.q = x.q_fp8.data();
    x.k = x.k_fp8.data();
  }
  return x;
}

// I[i, s] = Di^-1/2 Σ_j w_idx[i, j] ReLU(q_idx[i, j] · k_idx[s]) in float64, summed in this exact
// order (dot over Di ascending, heads ascending, then the scale): the cpu backend re-scores
// near-ties with the same expression, so both break ties identically.
double index_score(const DsaDims& d, const float* qi, const float* wi, const float* ks,
                   double index_scale) {
  double total = 0;
  for (int64_t j = 0; j < d.Hi; ++j) {
    const float* qj = qi + j * d.Lq * d.Di;  // q_idx[b, j, i, :]
    double dot = 0;
    for (int64_t e = 0; e < d.Di; ++e) dot += double(qj[e]) * double(ks[e]);
    // Each product of two floats is exact in double, so only this accumulation could round
    // differently under FMA contraction: spell the fused form out so every build agrees.
    total = std::fma(double(wi[j]), std::max(dot, 0.0), total);
  }
  return total * index_scale;
}

}  // namespace

RunResult dsa_run(const AttentionProblem& p, const Inputs& in, const CancelToken& cancel) {
  const DsaDims d(p);
  const IndexInputs idx = index_inputs(p, in);
  const float* w_idx = in.at("w_idx").data();  // [B, Lq, Hi]
  const Tensor& q = in.at("q");                // [B, H, Lq, Dn + Dr]
  const Tensor& c_kv = in.at("c_kv");          // [B, Lk, Dc]
  const Tensor& k_rope = in.at("k_rope");      // [B, Lk, Dr]
  const Tensor& w_uk = in.at("w_uk");          // [H, Dn, Dc]
  const Tensor& w_uv = in.at("w_uv");          // [H, Dv, Dc]
  const double scale = p.effective_scale();
  const double index_scale = 1.0 / std::sqrt(double(d.Di));
  const int64_t Dq = d.Dn + d.Dr;
  RunResult r = make_softmax_result(p);
  IndexTensor selection({d.B, d.Lq, d.top_k}, -1);  // [B, Lq, top_k]

  std::vector<double> score(static_cast<size_t>(d.Lk));
  std::vector<int64_t> order;
  std::vector<double> q_abs(static_cast<size_t>(d.Dc)), x(static_cast<size_t>(d.Dc));
  for (int64_t b = 0; b < d.B; ++b) {
    // Phase 1: the indexer's selection, one set per query row shared by every head.
    for (int64_t i = 0; i < d.Lq; ++i) {
      // Every row: one scores every past key with all index heads (seconds at 32K in float64).
      cancel.throw_if_cancelled();
      const int64_t pos = p.query_position(i);
      if (pos < 0) continue;  // sees no key: selection stays -1
      const int64_t seen = std::min(pos + 1, d.Lk);
      const float* qi = idx.q + (b * d.Hi * d.Lq + i) * d.Di;
      const float* wi = w_idx + (b * d.Lq + i) * d.Hi;
      for (int64_t s = 0; s < seen; ++s) {
        score[s] = index_score(d, qi, wi, idx.k + (b * d.Lk + s) * d.Di, index_scale);
      }
      order.resize(static_cast<size_t>(seen));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t c) { return score[a] > score[c]; });
      order.resize(static_cast<size_t>(std::min(d.top_k, seen)));
      std::sort(order.begin(), order.end());
      std::copy(order.begin(), order.end(), selection.data() + (b * d.Lq + i) * d.top_k);
    }
    // Phase 2: absorbed MLA over exactly the selected keys.
    const float* cb = c_kv.data() + b * d.Lk * d.Dc;
    const float* kr = k_rope.data() + b * d.Lk * d.Dr;
    for (int64_t h = 0; h < d.H; ++h) {
      cancel.throw_if_cancelled();
      const float* wk = w_uk.data() + h * d.Dn * d.Dc;
      const float* wv = w_uv.data() + h * d.Dv * d.Dc;
      for (int64_t i = 0; i < d.Lq; ++i) {
        if (i % 64 == 63) cancel.throw_if_cancelled();
        const int64_t row = (b * d.H + h) * d.Lq + i;
        const float* qi = q.data() + row * Dq;
        float* oi = r.o.data() + row * d.Dv;
        const int32_t* sel = selection.data() + (b * d.Lq + i) * d.top_k;
        int64_t n = 0;
        while (n < d.top_k && sel[n] >= 0) ++n;
        if (n == 0) {  // no key: zero output, lse = -inf
          std::fill(oi, oi + d.Dv, 0.0f);
          r.lse.data()[row] = -std::numeric_limits<float>::infinity();
          continue;
        }
        // q̃ = w_ukᵀ q_nope.
        std::fill(q_abs.begin(), q_abs.end(), 0.0);
        for (int64_t e = 0; e < d.Dn; ++e) {
          for (int64_t c = 0; c < d.Dc; ++c) q_abs[c] += double(qi[e]) * wk[e * d.Dc + c];
        }
        std::vector<double> prob(static_cast<size_t>(n));
        for (int64_t t = 0; t < n; ++t) {
          const int64_t s = sel[t];
          double dot = 0;
          for (int64_t c = 0; c < d.Dc; ++c) dot += q_abs[c] * cb[s * d.Dc + c];
          for (int64_t e = 0; e < d.Dr; ++e) dot += double(qi[d.Dn + e]) * kr[s * d.Dr + e];
          prob[t] = dot * scale;
        }
        r.lse.data()[row] = static_cast<float>(softmax_in_place(prob));
        // x = Σ p_t c_t, o = w_uv x.
        std::fill(x.begin(), x.end(), 0.0);
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t c = 0; c < d.Dc; ++c) x[c] += prob[t] * cb[sel[t] * d.Dc + c];
        }
        for (int64_t e = 0; e < d.Dv; ++e) {
          double acc = 0;
          for (int64_t c = 0; c < d.Dc; ++c) acc += double(wv[e * d.Dc + c]) * x[c];
          oi[e] = static_cast<float>(acc);
        }
      }
      cancel.report(double(b * d.H + h + 1) / double(d.B * d.H));
    }
  }
  r.extra_index.insert_or_assign("selection", std::move(selection));
  return r;
}

// Map tiles are recomputed on every zoom, so they run in fp32 (the run itself is the oracle), and
// only for the keys each row selected: P = exp(score · scale − lse) there and an exact 0 elsewhere.
void dsa_map_tile(const AttentionProblem& p, const Inputs& in, const RunResult& res, int64_t b,
                  int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Strided = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
  const DsaDims d(p);
  const int64_t Dq = d.Dn + d.Dr, rows = i1 - i0, cols = j1 - j0;
  const auto found = res.extra_index.find("selection");
  if (found == res.extra_index.end()) {
    throw Error("DSA's attention map needs the run's selection, and this result has none");
  }
  const IndexTensor& selection = found->second;
  const float* q = in.at("q").data() + ((b * d.H + h) * d.Lq + i0) * Dq;
  const Strided q_nope(q, rows, d.Dn, Eigen::OuterStride<>(Dq));
  Eigen::Map<const RowMajor> w_uk(in.at("w_uk").data() + h * d.Dn * d.Dc, d.Dn, d.Dc);
  const RowMajor q_abs = q_nope * w_uk;  // [rows, Dc]
  const float* cb = in.at("c_kv").data() + b * d.Lk * d.Dc;
  const float* kr = in.at("k_rope").data() + b * d.Lk * d.Dr;
  const float scale = static_cast<float>(p.effective_scale());
  std::fill(out, out + rows * cols, 0.0f);
  for (int64_t i = i0; i < i1; ++i) {
    const float lse = res.lse.data()[(b * d.H + h) * d.Lq + i];
    if (!std::isfinite(lse)) continue;
    const int32_t* sel = selection.data() + (b * d.Lq + i) * d.top_k;
    // Ascending with -1 padding at the end: the keys of [j0, j1) are one contiguous run.
    const int32_t* first = std::lower_bound(sel, sel + d.top_k, int32_t(j0),
                                            [](int32_t a, int32_t v) { return a >= 0 && a < v; });
    Eigen::Map<const Eigen::RowVectorXf> qt(q_abs.data() + (i - i0) * d.Dc, d.Dc);
    Eigen::Map<const Eigen::RowVectorXf> qr(q + (i - i0) * Dq + d.Dn, d.Dr);
    for (const int32_t* t = first; t < sel + d.top_k && *t >= 0 && *t < j1; ++t) {
      const int64_t s = *t;
      float dot = qt.dot(Eigen::Map<const Eigen::RowVectorXf>(cb + s * d.Dc, d.Dc));
      if (d.Dr > 0) dot += qr.dot(Eigen::Map<const Eigen::RowVectorXf>(kr + s * d.Dr, d.Dr));
      out[(i - i0) * cols + (s - j0)] = std::exp(dot * scale - lse);
    }
  }
}

}  // namespace attnscope::reference

namespace attnscope {

void index_score_tile(const AttentionProblem& p, const Inputs& in, int64_t b, int64_t i0,
                      int64_t i1, int64_t j0, int64_t j1, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  if (p.variant != VariantId::dsa) throw Error("index scores exist only for DSA's indexer");
  const reference::DsaDims d(p);
  if (b < 0 || b >= d.B || i0 < 0 || i1 > d.Lq || i0 > i1 || j0 < 0 || j1 > d.Lk || j0 > j1) {
    throw Error("index_score_tile: rows or keys outside the problem");
  }
  const int64_t rows = i1 - i0, cols = j1 - j0;
  if (rows == 0 || cols == 0) return;
  // Only the tile's own rows of q_idx and k_idx: e4m3 rounding works row by row (runs of 128
  // values along Di), so rounding them alone equals rounding the whole tensors.
  const float* k_tile = in.at("k_idx").data() + (b * d.Lk + j0) * d.Di;
  RowMajor rounded;
  if (p.dsa.index_fp8) {
    rounded = Eigen::Map<const RowMajor>(k_tile, cols, d.Di);
    dsa::fake_quantize_e4m3(rounded.data(), cols, d.Di);
    k_tile = rounded.data();
  }
  const Eigen::Map<const RowMajor> keys(k_tile, cols, d.Di);
  const float* q_idx = in.at("q_idx").data();
  const float* w_idx = in.at("w_idx").data();
  const float index_scale = static_cast<float>(1.0 / std::sqrt(double(d.Di)));
  RowMajor q(d.Hi, d.Di);
  Eigen::Map<RowMajor> tile(out, rows, cols);
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t j = 0; j < d.Hi; ++j) {
      std::copy_n(q_idx + ((b * d.Hi + j) * d.Lq + i) * d.Di, d.Di, q.data() + j * d.Di);
    }
    if (p.dsa.index_fp8) dsa::fake_quantize_e4m3(q.data(), d.Hi, d.Di);
    const RowMajor dots = (q * keys.transpose()).cwiseMax(0.0f);  // [Hi, cols]
    Eigen::Map<const Eigen::RowVectorXf> w(w_idx + (b * d.Lq + i) * d.Hi, d.Hi);
    tile.row(i - i0) = (w * dots) * index_scale;
    const int64_t pos = p.query_position(i);
    for (int64_t s = std::max(j0, pos + 1); s < j1; ++s) {
      tile(i - i0, s - j0) = std::numeric_limits<float>::quiet_NaN();
    }
  }
}

}  // namespace attnscope
