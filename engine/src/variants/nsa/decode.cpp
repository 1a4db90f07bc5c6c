// NSA's decode on the cpu backend. Per sequence and kv head: the compressed branch attends to the
// cached block means (keys and values, computed once as blocks fill), whose group-mean
// probabilities pick the blocks; the selected and window branches are page walks over those
// blocks' and the window's tokens (cpu/paged_decode.hpp, the G query heads of the group sharing
// each walk); the gates mix the three.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/paged_decode.hpp"
#include "variants/nsa/nsa.hpp"

namespace attnscope::cpu {

RunResult decode_nsa(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel);

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using CMap = Eigen::Map<const RowMat, 0, Stride>;

// The group's block scores exactly as the reference computes them (variants/nsa/reference.cpp):
// float64 block means of the keys summed in token order, dot products in ascending e, softmax,
// group mean. Only for a step whose fp32 scores leave the cut within rounding; it reads every
// key of the group's complete blocks from the pages.
std::vector<double> exact_scores(const PagedKvCache& cache, std::span<const int32_t> pages,
                                 const float* q, int64_t G, int64_t Dk, int64_t g, int64_t bs,
                                 int64_t visible, double scale) {
  const int64_t ps = cache.page_size();
  std::vector<double> mean(static_cast<size_t>(visible * Dk), 0.0);
  for (int64_t c = 0; c < visible; ++c) {
    double* m = mean.data() + c * Dk;
    for (int64_t j = c * bs; j < (c + 1) * bs; ++j) {
      const float* row = cache.rows(pages[size_t(j / ps)], 0, g) + (j % ps) * Dk;
      for (int64_t e = 0; e < Dk; ++e) m[e] += row[e];
    }
    for (int64_t e = 0; e < Dk; ++e) m[e] /= double(bs);
  }
  std::vector<double> score(static_cast<size_t>(visible), 0.0), prob(static_cast<size_t>(visible));
  for (int64_t h = 0; h < G; ++h) {
    const float* qi = q + h * Dk;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < visible; ++c) {
      double dot = 0;
      for (int64_t e = 0; e < Dk; ++e) dot += double(qi[e]) * mean[size_t(c * Dk + e)];
      prob[size_t(c)] = dot * scale;
      m = std::max(m, prob[size_t(c)]);
    }
    double sum = 0;
    for (int64_t c = 0; c < visible; ++c) {
      prob[size_t(c)] = std::exp(prob[size_t(c)] - m);
      sum += prob[size_t(c)];
    }
    for (int64_t c = 0; c < visible; ++c) score[size_t(c)] += prob[size_t(c)] / sum;
  }
  for (double& s : score) s /= double(G);
  return score;
}

}  // namespace

// Step inputs: q [B, H, 1, Dk], gates g_cmp/g_slc/g_swa [B, H, 1] (k, v are already in the cache).
RunResult decode_nsa(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel) {
  const AttentionProblem& p = cache.problem();
  const ProblemShape& sh = p.shape;
  const int64_t B = int64_t(step.sequences.size()), H = sh.heads, Hkv = sh.kv_heads;
  const int64_t G = H / Hkv, Dk = sh.head_dim, Dv = sh.v_head_dim;
  const int64_t bs = p.nsa.block_size, S = p.nsa.block_count, W = p.nsa.window;
  const double scale_d = p.effective_scale();
  const float scale = float(scale_d);
  const float* q = step.inputs.at("q").data();
  const float* g_cmp = step.inputs.at("g_cmp").data();
  const float* g_slc = step.inputs.at("g_slc").data();
  const float* g_swa = step.inputs.at("g_swa").data();

  RunResult r;
  r.o = Tensor({B, H, 1, Dv});
  Tensor lse_cmp({B, H, 1}), lse_slc({B, H, 1}), lse_swa({B, H, 1});
  IndexTensor selection({B, Hkv, 1, S}, -1);
  std::vector<float> o_cmp(size_t(B * H * Dv)), o_slc(size_t(B * H * Dv)),
      o_swa(size_t(B * H * Dv));

  std::vector<int64_t> lengths(static_cast<size_t>(B));
  std::vector<std::span<const int32_t>> pages(static_cast<size_t>(B));
  std::vector<std::span<const float>> kmeans(static_cast<size_t>(B)),
      vmeans(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t seq = step.sequences[size_t(b)];
    lengths[size_t(b)] = cache.length(seq);
    pages[size_t(b)] = cache.page_table(seq);
    kmeans[size_t(b)] = cache.block_means(seq);
    vmeans[size_t(b)] = cache.block_value_means(seq);
  }

  // 1. Compressed branch and the group's selection, per (sequence, kv head).
  ThreadPool::global().parallel_for(B * Hkv, threads, [&](int64_t task, int) {
    cancel.throw_if_cancelled();
    const int64_t b = task / Hkv, g = task % Hkv, h0 = g * G;
    const int64_t L = lengths[size_t(b)], pos = L - 1, own = pos / bs, visible = L / bs;
    const float* qg = q + (b * H + h0) * Dk;
    int32_t* sel = selection.data() + (b * Hkv + g) * S;
    thread_local std::vector<float> score;
    thread_local std::vector<int64_t> idx;
    score.assign(size_t(visible), 0.0f);
    float s_abs = 0, q_norm = 0, k_norm = 0;
    if (visible == 0) {
      for (int64_t h = h0; h < h0 + G; ++h) {
        lse_cmp.data()[b * H + h] = kNegInf;
        std::fill_n(o_cmp.data() + (b * H + h) * Dv, Dv, 0.0f);
      }
    } else {
      const CMap K(kmeans[size_t(b)].data() + g * Dk, visible, Dk, Stride(Hkv * Dk));
      const CMap V(vmeans[size_t(b)].data() + g * Dv, visible, Dv, Stride(Hkv * Dv));
      const RowMat Q = CMap(qg, G, Dk, Stride(Dk)) * scale;
      RowMat P = Q * K.transpose();  // [G, visible]
      for (int64_t h = 0; h < G; ++h) {
        auto x = P.row(h).array();
        const float m = x.maxCoeff();
        s_abs = std::max({s_abs, std::fabs(m), std::fabs(x.minCoeff())});
        q_norm = std::max(q_norm, Q.row(h).norm());
        x = (x - m).exp();
        const float l = x.sum();
        x /= l;
        lse_cmp.data()[b * H + h0 + h] = m + std::log(l);
        for (int64_t c = 0; c < visible; ++c) score[size_t(c)] += P(h, c);
      }
      for (float& s : score) s /= float(G);
      k_norm = K.rowwise().norm().maxCoeff();
      Eigen::Map<RowMat>(o_cmp.data() + (b * H + h0) * Dv, G, Dv).noalias() = P * V;
    }

    // Selection: blocks 0, own, own - 1, then the best of the other visible blocks [1, own - 2]
    // by group score, ties to the lower index.
    int64_t n = 0;
    sel[n++] = 0;
    if (own >= 1) sel[n++] = int32_t(own);
    if (own >= 2) sel[n++] = int32_t(own - 1);
    const int64_t room = S - n, candidates = std::max<int64_t>(0, own - 2);
    idx.resize(size_t(candidates));
    std::iota(idx.begin(), idx.end(), int64_t{1});
    if (candidates > room && room > 0) {
      auto better = [&](int64_t a, int64_t c) {
        return score[size_t(a)] > score[size_t(c)] ||
               (score[size_t(a)] == score[size_t(c)] && a < c);
      };
      std::nth_element(idx.begin(), idx.begin() + room, idx.end(), better);
      float worst = std::numeric_limits<float>::infinity();
      for (int64_t t = 0; t < room; ++t) worst = std::min(worst, score[size_t(idx[size_t(t)])]);
      float best_rejected = score[size_t(idx[size_t(room)])];
      for (int64_t t = room + 1; t < candidates; ++t)
        best_rejected = std::max(best_rejected, score[size_t(idx[size_t(t)])]);
      // The full run's bound (nsa/cpu.cpp) plus the cached fp32 means' own rounding (one ulp of
      // each mean element, so |q||k̄|·u more per score).
      const float tol = (4.0f * float(Dk) + 4.0f) * 6e-8f * q_norm * k_norm +
                        4e-6f * (1.0f + s_abs + std::log(float(std::max<int64_t>(visible, 1))));
      if (worst - best_rejected <= tol * worst + 1e-30f) {
        const std::vector<double> exact =
            exact_scores(cache, pages[size_t(b)], qg, G, Dk, g, bs, visible, scale_d);
        std::iota(idx.begin(), idx.end(), int64_t{1});
        std::nth_element(idx.begin(), idx.begin() + room, idx.end(), [&](int64_t a, int64_t c) {
          return exact[size_t(a)] > exact[size_t(c)] ||
                 (exact[size_t(a)] == exact[size_t(c)] && a < c);
        });
      }
    }
    for (int64_t t = 0; t < std::min(room, candidates); ++t) sel[n++] = int32_t(idx[size_t(t)]);
    std::sort(sel, sel + n);
  });

  // 2. Selected and window branches: one walk per (sequence, kv head, branch), the group's G query
  // rows together (the selection is the group's).
  std::vector<Unit> units;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths[size_t(b)];
    for (int64_t g = 0; g < Hkv; ++g) {
      Unit u;
      u.q = q + (b * H + g * G) * Dk;
      u.G = G;
      u.q_ld = Dk;
      u.layout.width[0] = Dk;
      u.layout.head = g;
      u.layout.dv = Dv;
      u.pages = pages[size_t(b)];
      u.o_ld = Dv;
      const int32_t* sel = selection.data() + (b * Hkv + g) * S;
      for (int64_t t = 0; t < S && sel[t] >= 0; ++t) {
        const int64_t j0 = int64_t(sel[t]) * bs, j1 = std::min(L, j0 + bs);
        if (!u.ranges.empty() && u.ranges.back().j1 == j0) {
          u.ranges.back().j1 = j1;  // adjacent blocks: one range
        } else {
          u.ranges.push_back({j0, j1});
        }
      }
      u.o = o_slc.data() + (b * H + g * G) * Dv;
      u.lse = lse_slc.data() + b * H + g * G;
      units.push_back(u);
      if (W > 0) {
        u.ranges = {{std::max<int64_t>(0, L - W), L}};
        u.o = o_swa.data() + (b * H + g * G) * Dv;
        u.lse = lse_swa.data() + b * H + g * G;
        units.push_back(std::move(u));
      }
    }
  }
  run_units(cache, units, scale, threads, cancel);
  if (W <= 0) {
    std::fill(lse_swa.data(), lse_swa.data() + lse_swa.numel(), kNegInf);
    std::fill(o_swa.begin(), o_swa.end(), 0.0f);
  }

  // 3. o = g_cmp·o_cmp + g_slc·o_slc + g_swa·o_swa.
  for (int64_t row = 0; row < B * H; ++row) {
    float* o = r.o.data() + row * Dv;
    for (int64_t e = 0; e < Dv; ++e) {
      o[e] = g_cmp[row] * o_cmp[size_t(row * Dv + e)] + g_slc[row] * o_slc[size_t(row * Dv + e)] +
             g_swa[row] * o_swa[size_t(row * Dv + e)];
    }
  }
  r.extra.emplace("lse_cmp", std::move(lse_cmp));
  r.extra.emplace("lse_slc", std::move(lse_slc));
  r.extra.emplace("lse_swa", std::move(lse_swa));
  r.extra_index.emplace("selection", std::move(selection));
  return r;
}

}  // namespace attnscope::cpu
