// Reference Native Sparse Attention (fla's naive_nsa, VARIANTS.md): per query row, the compressed
// branch over complete past block means, the kv group's block selection from the group-mean
// compressed probabilities, the selected branch over those blocks' keys, the window branch, and
// the gated sum of the three. Plain float64 loops: this is the oracle the cpu path is held to.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "backends/reference/reference.hpp"
#include "variants/nsa/nsa.hpp"

namespace attnscope::reference {
namespace {

struct NsaDims {
  int64_t B, H, Hkv, Lq, Lk, Dk, Dv, G, bs, S, W, nb;
  explicit NsaDims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        Hkv(p.shape.kv_heads),
        Lq(p.shape.q_len),
        Lk(p.shape.kv_len),
        Dk(p.shape.head_dim),
        Dv(p.shape.v_head_dim),
        G(p.shape.heads / p.shape.kv_heads),
        bs(p.nsa.block_size),
        S(p.nsa.block_count),
        W(p.nsa.window),
        nb((p.shape.kv_len - 1) / p.nsa.block_size + 1) {}
};

// Mean of each block's rows over its real length (the last block may be short): [nb, D].
std::vector<double> block_means(const float* x, int64_t L, int64_t D, int64_t bs, int64_t nb) {
  std::vector<double> mean(static_cast<size_t>(nb * D), 0.0);
  for (int64_t c = 0; c < nb; ++c) {
    const int64_t lo = c * bs, hi = std::min(L, lo + bs);
    for (int64_t j = lo; j < hi; ++j) {
      for (int64_t e = 0; e < D; ++e) mean[c * D + e] += x[j * D + e];
    }
    for (int64_t e = 0; e < D; ++e) mean[c * D + e] /= double(hi - lo);
  }
  return mean;
}

// Softmax over exactly the keys `keys` (ascending) of one query: writes o_i and returns the lse
// (-inf and o = 0 when the set is empty).
double attend(const float* qi, const float* kb, const float* vb, const std::vector<int64_t>& keys,
              int64_t Dk, int64_t Dv, double scale, std::vector<double>& o) {
  std::fill(o.begin(), o.end(), 0.0);
  if (keys.empty()) return kNegInf;
  std::vector<double> s(keys.size());
  for (size_t t = 0; t < keys.size(); ++t) {
    double dot = 0;
    for (int64_t e = 0; e < Dk; ++e) dot += double(qi[e]) * kb[keys[t] * Dk + e];
    s[t] = dot * scale;
  }
  const double lse = softmax_in_place(s);
  for (size_t t = 0; t < keys.size(); ++t) {
    for (int64_t e = 0; e < Dv; ++e) o[static_cast<size_t>(e)] += s[t] * vb[keys[t] * Dv + e];
  }
  return lse;
}

}  // namespace

RunResult nsa_run(const AttentionProblem& p, const Inputs& in, const CancelToken& cancel) {
  const NsaDims d(p);
  const Tensor& q = in.at("q");  // [B, H, Lq, Dk]
  const Tensor& k = in.at("k");  // [B, Hkv, Lk, Dk]
  const Tensor& v = in.at("v");  // [B, Hkv, Lk, Dv]
  const float* g_cmp = in.at("g_cmp").data();
  const float* g_slc = in.at("g_slc").data();
  const float* g_swa = in.at("g_swa").data();
  const double scale = p.effective_scale();
  RunResult r;
  r.o = Tensor({d.B, d.H, d.Lq, d.Dv});
  Tensor lse_cmp({d.B, d.H, d.Lq}), lse_slc({d.B, d.H, d.Lq}), lse_swa({d.B, d.H, d.Lq});
  IndexTensor selection({d.B, d.Hkv, d.Lq, d.S}, -1);  // [B, Hkv, Lq, S]

  std::vector<double> prob(static_cast<size_t>(d.nb));   // one head's P_cmp
  std::vector<double> score(static_cast<size_t>(d.nb));  // group mean of P_cmp
  std::vector<double> o_cmp(static_cast<size_t>(d.G * d.Dv)), o_b(static_cast<size_t>(d.Dv));
  std::vector<int64_t> keys, chosen, order;
  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t kvh = 0; kvh < d.Hkv; ++kvh) {
      const float* kb = k.data() + (b * d.Hkv + kvh) * d.Lk * d.Dk;
      const float* vb = v.data() + (b * d.Hkv + kvh) * d.Lk * d.Dv;
      const std::vector<double> kmean = block_means(kb, d.Lk, d.Dk, d.bs, d.nb);  // [nb, Dk]
      const std::vector<double> vmean = block_means(vb, d.Lk, d.Dv, d.bs, d.nb);  // [nb, Dv]
      for (int64_t i = 0; i < d.Lq; ++i) {
        if (i % 64 == 0) cancel.throw_if_cancelled();
        const int64_t pos = p.query_position(i);
        // A row before the first key (Lq > Lk) sees nothing in any branch; the forced blocks
        // need a position too, so its selection stays all -1.
        if (pos < 0) {
          for (int64_t h = kvh * d.G; h < (kvh + 1) * d.G; ++h) {
            const int64_t row = (b * d.H + h) * d.Lq + i;
            lse_cmp.data()[row] = lse_slc.data()[row] = lse_swa.data()[row] = float(kNegInf);
          }
          continue;
        }
        const int64_t own = pos / d.bs;
        const int64_t visible = (pos + 1) / d.bs;  // blocks c with (c + 1)·BS − 1 <= pos

        // 1. Compressed branch per head, and the group's block scores.
        std::fill(score.begin(), score.end(), 0.0);
        for (int64_t g = 0; g < d.G; ++g) {
          const int64_t h = kvh * d.G + g, row = (b * d.H + h) * d.Lq + i;
          const float* qi = q.data() + row * d.Dk;
          double* oc = o_cmp.data() + g * d.Dv;
          std::fill(oc, oc + d.Dv, 0.0);
          if (visible == 0) {
            lse_cmp.data()[row] = float(kNegInf);
            continue;
          }
          double m = kNegInf;
          for (int64_t c = 0; c < visible; ++c) {
            double dot = 0;
            for (int64_t e = 0; e < d.Dk; ++e) dot += double(qi[e]) * kmean[c * d.Dk + e];
            prob[c] = dot * scale;
            m = std::max(m, prob[c]);
          }
          double sum = 0;
          for (int64_t c = 0; c < visible; ++c) {
            prob[c] = std::exp(prob[c] - m);
            sum += prob[c];
          }
          for (int64_t c = 0; c < visible; ++c) {
            prob[c] /= sum;
            score[c] += prob[c];
            for (int64_t e = 0; e < d.Dv; ++e) oc[e] += prob[c] * vmean[c * d.Dv + e];
          }
          lse_cmp.data()[row] = float(m + std::log(sum));
        }
        for (int64_t c = 0; c < visible; ++c) score[c] /= double(d.G);

        // 2. Selection: the forced blocks, then the best-scoring other visible blocks (all of them
        // lie in [1, own - 2]), ties to the lower index.
        chosen.assign({0});
        if (own >= 1) chosen.push_back(own);
        if (own >= 2) chosen.push_back(own - 1);
        order.clear();
        for (int64_t c = 1; c + 2 <= own; ++c) order.push_back(c);
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t c) { return score[a] > score[c]; });
        const int64_t room = d.S - int64_t(chosen.size());
        for (int64_t t = 0; t < std::min<int64_t>(room, int64_t(order.size())); ++t) {
          chosen.push_back(order[t]);
        }
        std::sort(chosen.begin(), chosen.end());
        std::copy(chosen.begin(), chosen.end(),
                  selection.data() + ((b * d.Hkv + kvh) * d.Lq + i) * d.S);

        // 3-5. Selected and window branches per head, then the gated sum.
        for (int64_t g = 0; g < d.G; ++g) {
          const int64_t h = kvh * d.G + g, row = (b * d.H + h) * d.Lq + i;
          const float* qi = q.data() + row * d.Dk;
          std::vector<double> o(o_cmp.begin() + g * d.Dv, o_cmp.begin() + (g + 1) * d.Dv);
          for (double& x : o) x *= g_cmp[row];
          keys.clear();
          for (int64_t c : chosen) {
            for (int64_t j = c * d.bs; j < std::min({d.Lk, (c + 1) * d.bs, pos + 1}); ++j) {
              keys.push_back(j);
            }
          }
          lse_slc.data()[row] = float(attend(qi, kb, vb, keys, d.Dk, d.Dv, scale, o_b));
          for (int64_t e = 0; e < d.Dv; ++e) o[e] += double(g_slc[row]) * o_b[e];
          keys.clear();
          for (int64_t j = std::max<int64_t>(0, pos - d.W + 1); d.W > 0 && j <= pos; ++j) {
            keys.push_back(j);
          }
          lse_swa.data()[row] = float(attend(qi, kb, vb, keys, d.Dk, d.Dv, scale, o_b));
          for (int64_t e = 0; e < d.Dv; ++e) o[e] += double(g_swa[row]) * o_b[e];
          for (int64_t e = 0; e < d.Dv; ++e) r.o.data()[row * d.Dv + e] = float(o[e]);
        }
      }
      cancel.report(double(b * d.Hkv + kvh + 1) / double(d.B * d.Hkv));
    }
  }
  r.extra.emplace("lse_cmp", std::move(lse_cmp));
  r.extra.emplace("lse_slc", std::move(lse_slc));
  r.extra.emplace("lse_swa", std::move(lse_swa));
  r.extra_index.emplace("selection", std::move(selection));
  return r;
}

// The implicit map: weight of key j in o_i, branch by branch from the run's lse's and selection.
// Map tiles are recomputed on every zoom, so they run on fp32 GEMMs (the run itself is the oracle).
void nsa_map_tile(const AttentionProblem& p, const Inputs& in, const RunResult& res, int64_t b,
                  int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const NsaDims d(p);
  const int64_t kvh = h / d.G, rows = i1 - i0, cols = j1 - j0;
  Eigen::Map<RowMajor> tile(out, rows, cols);
  tile.setZero();
  if (rows <= 0 || cols <= 0) return;
  const float* kb = in.at("k").data() + (b * d.Hkv + kvh) * d.Lk * d.Dk;
  Eigen::Map<const RowMajor> qt(in.at("q").data() + ((b * d.H + h) * d.Lq + i0) * d.Dk, rows, d.Dk);
  Eigen::Map<const RowMajor> kt(kb + j0 * d.Dk, cols, d.Dk);
  const float* lse_cmp = res.extra.at("lse_cmp").data();
  const float* lse_slc = res.extra.at("lse_slc").data();
  const float* lse_swa = res.extra.at("lse_swa").data();
  const int32_t* selection = res.extra_index.at("selection").data();
  const float* g_cmp = in.at("g_cmp").data();
  const float* g_slc = in.at("g_slc").data();
  const float* g_swa = in.at("g_swa").data();
  const float scale = static_cast<float>(p.effective_scale());
  // Every branch sees only keys j <= p: a tile wholly after its last row's position is all 0.
  if (j0 > p.query_position(i1 - 1)) return;

  // Compressed branch: the complete blocks touching the tile, by their mean keys.
  const int64_t c0 = j0 / d.bs, c1 = std::min((j1 - 1) / d.bs, d.Lk / d.bs - 1);  // [c0, c1]
  RowMajor cmp;  // [rows, c1 - c0 + 1] raw scores q·k̄_c
  if (c1 >= c0) {
    RowMajor kmean = RowMajor::Zero(c1 - c0 + 1, d.Dk);
    for (int64_t c = c0; c <= c1; ++c) {
      Eigen::Map<const RowMajor> blk(kb + c * d.bs * d.Dk, d.bs, d.Dk);
      kmean.row(c - c0) = blk.colwise().sum() / float(d.bs);
    }
    cmp.noalias() = qt * kmean.transpose();
  }
  const RowMajor score = qt * kt.transpose();  // [rows, cols] raw q·k

  for (int64_t i = i0; i < i1; ++i) {
    const int64_t pos = p.query_position(i);
    if (pos < 0) continue;
    const int64_t row = (b * d.H + h) * d.Lq + i, r = i - i0;
    float* x = out + r * cols;
    auto weight = [&](int64_t j, float lse) { return std::exp(score(r, j - j0) * scale - lse); };
    // Selected branch: keys j <= pos of the chosen blocks.
    if (std::isfinite(lse_slc[row]) && g_slc[row] != 0.0f) {
      const int32_t* sel = selection + ((b * d.Hkv + kvh) * d.Lq + i) * d.S;
      for (int64_t t = 0; t < d.S; ++t) {
        if (sel[t] < 0) continue;
        const int64_t a = std::max(j0, sel[t] * d.bs);
        const int64_t e = std::min({j1, (sel[t] + 1) * d.bs, pos + 1});
        for (int64_t j = a; j < e; ++j) x[j - j0] += g_slc[row] * weight(j, lse_slc[row]);
      }
    }
    // Window branch: keys pos - W < j <= pos.
    if (d.W > 0 && std::isfinite(lse_swa[row]) && g_swa[row] != 0.0f) {
      const int64_t a = std::max(j0, pos - d.W + 1), e = std::min(j1, pos + 1);
      for (int64_t j = a; j < e; ++j) x[j - j0] += g_swa[row] * weight(j, lse_swa[row]);
    }
    // Compressed branch: each visible block's probability spread evenly over its keys.
    if (c1 >= c0 && std::isfinite(lse_cmp[row]) && g_cmp[row] != 0.0f) {
      const int64_t visible = (pos + 1) / d.bs;
      for (int64_t c = c0; c <= std::min(c1, visible - 1); ++c) {
        const float w = g_cmp[row] * std::exp(cmp(r, c - c0) * scale - lse_cmp[row]) / float(d.bs);
        const int64_t a = std::max(j0, c * d.bs), e = std::min(j1, (c + 1) * d.bs);
        for (int64_t j = a; j < e; ++j) x[j - j0] += w;
      }
    }
  }
}

}  // namespace attnscope::reference
