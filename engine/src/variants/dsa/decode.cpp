// DSA's decode on the cpu backend. Per sequence: the lightning indexer scores every cached index
// key (kept beside the latent pages, e4m3-rounded when appended with index_fp8) in fp32 GEMM
// tiles, the top_k keys are kept (near-ties at the cut re-scored in float64 as the reference
// scores them), then MLA's absorbed form attends to exactly those latent rows, gathered from the
// pages in chunks; chunks are split across threads and merged by log-sum-exp.
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "attnscope/decode.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/merge.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/microkernel.hpp"
#include "backends/cpu/paged_decode.hpp"
#include "variants/dsa/dsa.hpp"

namespace attnscope::cpu {

RunResult decode_dsa(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel);

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kKeyTile = 512;      // index keys per indexer task
constexpr int64_t kGatherKeys = 128;   // selected latent rows per attention GEMM
constexpr int64_t kAttendChunk = 512;  // selected keys per attention task (merged by lse)
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using CMap = Eigen::Map<const RowMat, 0, Stride>;

// The reference's float64 index score (variants/dsa/reference.cpp, index_score), term for term,
// for index queries Di apart.
double exact_score(const float* q, const float* w, const float* k, int64_t Hi, int64_t Di,
                   double index_scale) {
  double total = 0;
  for (int64_t j = 0; j < Hi; ++j) {
    const float* qj = q + j * Di;
    double dot = 0;
    for (int64_t e = 0; e < Di; ++e) dot += double(qj[e]) * double(k[e]);
    total = std::fma(double(w[j]), std::max(dot, 0.0), total);
  }
  return total * index_scale;
}

#ifdef ATTNSCOPE_HAVE_MICROKERNEL
// I[s] = Σ_j w_j max(0, k_s · q_j) for R keys at once, all Hi <= 16 V heads in registers (R x V
// accumulators): each key value is broadcast once and meets every head, no operand is packed, and
// the ReLU-weighted head sum happens before anything is stored. qt is Qᵀ [Di, 16 V] and w [16 V],
// zero past Hi.
template <int R, int V>
inline void index_keys(const float* k, int64_t Di, const float* qt, const float* w, float* out) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t e = 0; e < Di; ++e) {
    __m512 q[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) q[v] = _mm512_loadu_ps(qt + e * 16 * V + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(k[r * Di + e]);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(a, q[v], acc[r][v]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    __m512 sum = zero;
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      sum = _mm512_fmadd_ps(_mm512_max_ps(acc[r][v], zero), _mm512_loadu_ps(w + 16 * v), sum);
    out[r] = _mm512_reduce_add_ps(sum);
  }
}

template <int V>
void index_tile(const float* k, int64_t n, int64_t Di, const float* qt, const float* w,
                float* out) {
  constexpr int R = 6;  // 6 x 4 accumulators, 4 query vectors and a broadcast: 29 of 32 registers
  int64_t s = 0;
  for (; s + R <= n; s += R) index_keys<R, V>(k + s * Di, Di, qt, w, out + s);
  for (; s < n; ++s) index_keys<1, V>(k + s * Di, Di, qt, w, out + s);
}
#endif

}  // namespace

// Step inputs: q [B, H, 1, Dn + Dr], q_idx [B, Hi, 1, Di], w_idx [B, 1, Hi], w_uk, w_uv (c_kv,
// k_rope and k_idx are already in the cache).
RunResult decode_dsa(PagedKvCache& cache, const DecodeStep& step, int threads,
                     const CancelToken& cancel) {
  const AttentionProblem& p = cache.problem();
  const int64_t B = int64_t(step.sequences.size()), H = p.shape.heads, Dv = p.shape.v_head_dim;
  const int64_t Dc = p.mla.kv_lora_rank, Dr = p.mla.rope_dim, Dn = p.mla.nope_dim;
  const int64_t Dq = Dn + Dr, Dl = Dc + Dr;
  const int64_t Hi = p.dsa.index_heads, Di = p.dsa.index_head_dim, top_k = p.dsa.top_k;
  const double index_scale = 1.0 / std::sqrt(double(Di));
  const float* q = step.inputs.at("q").data();
  const float* w_uk = step.inputs.at("w_uk").data();    // [H, Dn, Dc]
  const float* w_uv = step.inputs.at("w_uv").data();    // [H, Dv, Dc]
  const float* w_idx = step.inputs.at("w_idx").data();  // [B, 1, Hi]
  // The index queries as the full run's indexer sees them (e4m3-rounded with index_fp8; the
  // cached keys were rounded when appended).
  Tensor q_idx_t = step.inputs.at("q_idx");
  if (p.dsa.index_fp8) dsa::fake_quantize_e4m3(q_idx_t.data(), B * Hi, Di);
  const float* q_idx = q_idx_t.data();  // [B, Hi, 1, Di]
  ThreadPool& pool = ThreadPool::global();

  std::vector<int64_t> lengths(static_cast<size_t>(B));
  std::vector<std::span<const int32_t>> pages(static_cast<size_t>(B));
  std::vector<std::span<const float>> keys(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t seq = step.sequences[size_t(b)];
    lengths[size_t(b)] = cache.length(seq);
    pages[size_t(b)] = cache.page_table(seq);
    keys[size_t(b)] = cache.side_rows(seq);
  }

  // 1. Index scores of every past key, fp32: per (sequence, key tile) one GEMM of the Hi index
  // queries against the tile's keys, ReLU, weighted sum over the heads. Sequences that see at
  // most top_k keys take them all and score nothing.
  std::vector<std::vector<float>> score(static_cast<size_t>(B));
  std::vector<std::vector<float>> key_norm(static_cast<size_t>(B));
  std::vector<std::array<int64_t, 2>> tasks;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths[size_t(b)];
    if (L <= top_k) continue;
    score[size_t(b)].resize(size_t(L));
    key_norm[size_t(b)].resize(size_t((L + kKeyTile - 1) / kKeyTile));
    for (int64_t t0 = 0; t0 < L; t0 += kKeyTile) tasks.push_back({b, t0});
  }
  // The head weights with the index scale folded in, [B, Hi].
  std::vector<float> weight(size_t(B * Hi));
  for (int64_t x = 0; x < B * Hi; ++x) weight[size_t(x)] = float(double(w_idx[x]) * index_scale);
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
  // Up to 64 index heads stay in registers (index_keys); more take the Eigen path.
  const int64_t V = (Hi + 15) / 16, Hp = 16 * V;
  std::vector<float> q_t, w_pad;
  if (V <= 4) {
    q_t.assign(size_t(B * Di * Hp), 0.0f);
    w_pad.assign(size_t(B * Hp), 0.0f);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < Hi; ++j) {
        w_pad[size_t(b * Hp + j)] = weight[size_t(b * Hi + j)];
        for (int64_t e = 0; e < Di; ++e)
          q_t[size_t((b * Di + e) * Hp + j)] = q_idx[(b * Hi + j) * Di + e];
      }
    }
  }
#endif
  pool.parallel_for(int64_t(tasks.size()), threads, [&](int64_t t, int) {
    cancel.throw_if_cancelled();
    const auto [b, t0] = tasks[size_t(t)];
    const int64_t L = lengths[size_t(b)], n = std::min(kKeyTile, L - t0);
    const float* kb = keys[size_t(b)].data() + t0 * Di;
    const CMap K(kb, n, Di, Stride(Di));
    key_norm[size_t(b)][size_t(t0 / kKeyTile)] = K.rowwise().norm().maxCoeff();
    float* I = score[size_t(b)].data() + t0;
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
    if (V <= 4) {
      const float* qt = q_t.data() + b * Di * Hp;
      const float* w = w_pad.data() + b * Hp;
      switch (V) {
        case 1:
          return index_tile<1>(kb, n, Di, qt, w, I);
        case 2:
          return index_tile<2>(kb, n, Di, qt, w, I);
        case 3:
          return index_tile<3>(kb, n, Di, qt, w, I);
        default:
          return index_tile<4>(kb, n, Di, qt, w, I);
      }
    }
#endif
    const CMap Q(q_idx + b * Hi * Di, Hi, Di, Stride(Di));
    thread_local RowMat S;
    S.noalias() = Q * K.transpose();  // [Hi, n]
    S = S.cwiseMax(0.0f);
    Eigen::Map<Eigen::VectorXf>(I, n).noalias() =
        S.transpose() * Eigen::Map<const Eigen::VectorXf>(weight.data() + b * Hi, Hi);
  });

  // 2. Selection per sequence: the top_k keys, ascending. Every fp32 score is within band / 2 of
  // the float64 one (the full run's bound, dsa/cpu.cpp), so only the keys within band of the fp32
  // cut are re-scored in float64.
  IndexTensor selection({B, 1, top_k}, -1);
  pool.parallel_for(B, threads, [&](int64_t b, int) {
    const int64_t L = lengths[size_t(b)];
    int32_t* out = selection.data() + b * top_k;
    if (L <= top_k) {
      std::iota(out, out + L, 0);
      return;
    }
    const float* I = score[size_t(b)].data();
    const float* qb = q_idx + b * Hi * Di;
    const float* w = w_idx + b * Hi;
    const double ulps = double(Di + Hi + 4) * std::ldexp(1.0, -24) * 4.0;
    double bound = 0;
    for (int64_t j = 0; j < Hi; ++j) {
      bound += std::fabs(double(w[j])) *
               Eigen::Map<const Eigen::VectorXf>(qb + j * Di, Di).cast<double>().norm();
    }
    const float k_max = *std::max_element(key_norm[size_t(b)].begin(), key_norm[size_t(b)].end());
    // The key norms are fp32: a few ulps more.
    const float band = float(2.0 * ulps * bound * index_scale * double(k_max) * (1.0 + 1e-4));
    double q_max = 0;
    for (int64_t j = 0; j < Hi; ++j) {
      q_max =
          std::max(q_max, Eigen::Map<const Eigen::VectorXf>(qb + j * Di, Di).cast<double>().norm());
    }
    // Scores that could leave fp32's range (or make inf · 0 = NaN): rank every key in float64,
    // which finite fp32 inputs cannot overflow.
    if (!(std::max(bound * index_scale, q_max) * double(k_max) < 1e30) || !std::isfinite(k_max)) {
      const float* kb = keys[size_t(b)].data();
      std::vector<std::pair<double, int32_t>> all(static_cast<size_t>(L));
      for (int64_t s = 0; s < L; ++s) {
        all[size_t(s)] = {exact_score(qb, w, kb + s * Di, Hi, Di, index_scale), int32_t(s)};
      }
      std::nth_element(all.begin(), all.begin() + (top_k - 1), all.end(),
                       [](const auto& a, const auto& c) {
                         return a.first > c.first || (a.first == c.first && a.second < c.second);
                       });
      for (int64_t t = 0; t < top_k; ++t) out[t] = all[size_t(t)].second;
      std::sort(out, out + top_k);
      return;
    }
    std::vector<int32_t> order(static_cast<size_t>(L));
    std::iota(order.begin(), order.end(), 0);
    std::nth_element(order.begin(), order.begin() + (top_k - 1), order.end(),
                     [&](int32_t a, int32_t c) { return I[a] > I[c]; });
    const float cut = I[order[size_t(top_k - 1)]];
    int64_t count = 0;
    std::vector<std::pair<double, int32_t>> tied;
    for (int64_t s = 0; s < L; ++s) {
      if (I[s] > cut + band) {
        out[count++] = int32_t(s);
      } else if (I[s] >= cut - band) {
        tied.push_back({0.0, int32_t(s)});
      }
    }
    const int64_t rest = top_k - count;
    if (int64_t(tied.size()) > rest) {
      const float* kb = keys[size_t(b)].data();
      for (auto& [sc, key] : tied)
        sc = exact_score(qb, w, kb + int64_t(key) * Di, Hi, Di, index_scale);
      std::nth_element(tied.begin(), tied.begin() + (rest - 1), tied.end(),
                       [](const auto& a, const auto& c) {
                         return a.first > c.first || (a.first == c.first && a.second < c.second);
                       });
    }
    for (int64_t t = 0; t < rest; ++t) out[count++] = tied[size_t(t)].second;
    std::sort(out, out + top_k);
  });

  // 3. Absorbed queries [B, H, Dc + Dr], pre-scaled: q̃ = w_ukᵀ q_nope, then the rotary part.
  const float scale = float(p.effective_scale());
  std::vector<float> qa(size_t(B * H * Dl));
  pool.parallel_for(B * H, threads, [&](int64_t bh, int) {
    const int64_t h = bh % H;
    const float* qn = q + bh * Dq;
    Eigen::Map<Eigen::RowVectorXf> out(qa.data() + bh * Dl, Dl);
    out.head(Dc).noalias() = (Eigen::Map<const Eigen::RowVectorXf>(qn, Dn) *
                              CMap(w_uk + h * Dn * Dc, Dn, Dc, Stride(Dc))) *
                             scale;
    out.tail(Dr) = Eigen::Map<const Eigen::RowVectorXf>(qn + Dn, Dr) * scale;
  });

  // 4. Attention over the selected latent rows: per (sequence, chunk of selected keys) a partial
  // x [H, Dc] and lse [H] by online softmax over gathered rows; partials merge by log-sum-exp.
  struct Part {
    int64_t b, t0, t1;
    std::vector<float> x, lse;
  };
  std::vector<Part> parts;
  std::vector<int64_t> count(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* sel = selection.data() + b * top_k;
    int64_t n = 0;
    while (n < top_k && sel[n] >= 0) ++n;
    count[size_t(b)] = n;
    for (int64_t t0 = 0; t0 < n; t0 += kAttendChunk)
      parts.push_back({b, t0, std::min(n, t0 + kAttendChunk), {}, {}});
  }
  const int64_t ps = cache.page_size();
  pool.parallel_for(int64_t(parts.size()), threads, [&](int64_t t, int) {
    cancel.throw_if_cancelled();
    Part& part = parts[size_t(t)];
    const int64_t b = part.b;
    const int32_t* sel = selection.data() + b * top_k;
    const std::span<const int32_t> table = pages[size_t(b)];
    const CMap Qa(qa.data() + b * H * Dl, H, Dl, Stride(Dl));
    part.x.assign(size_t(H * Dc), 0.0f);
    part.lse.assign(size_t(H), kNegInf);
    Eigen::Map<RowMat> X(part.x.data(), H, Dc);
    std::vector<float> m(size_t(H), kNegInf), l(size_t(H), 0.0f);
    thread_local RowMat Gk, S;
    for (int64_t c0 = part.t0; c0 < part.t1; c0 += kGatherKeys) {
      const int64_t w = std::min(part.t1 - c0, kGatherKeys);
      Gk.resize(w, Dl);
      for (int64_t i = 0; i < w; ++i) {
        const int64_t j = sel[c0 + i], phys = table[size_t(j / ps)];
        std::copy_n(cache.rows(int32_t(phys), 0, 0) + (j % ps) * Dc, Dc, Gk.data() + i * Dl);
        std::copy_n(cache.rows(int32_t(phys), 1, 0) + (j % ps) * Dr, Dr, Gk.data() + i * Dl + Dc);
      }
      S.noalias() = Qa * Gk.transpose();  // [H, w]
      for (int64_t h = 0; h < H; ++h) {
        const float m_new = std::max(m[size_t(h)], S.row(h).maxCoeff());
        const float alpha = std::exp(m[size_t(h)] - m_new);  // 0 on the first chunk
        S.row(h) = (S.row(h).array() - m_new).exp().matrix();
        l[size_t(h)] = l[size_t(h)] * alpha + S.row(h).sum();
        if (c0 > part.t0) X.row(h) *= alpha;
        m[size_t(h)] = m_new;
      }
      X.noalias() += S * Gk.leftCols(Dc);
    }
    for (int64_t h = 0; h < H; ++h) {
      X.row(h) /= l[size_t(h)];
      part.lse[size_t(h)] = m[size_t(h)] + std::log(l[size_t(h)]);
    }
  });
  std::vector<float> x(size_t(B * H * Dc), 0.0f);
  RunResult r;
  r.lse = Tensor({B, H, 1});
  std::fill(r.lse.data(), r.lse.data() + r.lse.numel(), kNegInf);
  for (const Part& part : parts) {  // chunks in ascending key order: a fixed merge order
    for (int64_t h = 0; h < H; ++h) {
      merge_row({x.data() + (part.b * H + h) * Dc, size_t(Dc)}, r.lse.data()[part.b * H + h],
                {part.x.data() + h * Dc, size_t(Dc)}, part.lse[size_t(h)]);
    }
  }

  // 5. o_h = w_uv_h x_h.
  r.o = Tensor({B, H, 1, Dv});
  pool.parallel_for(B * H, threads, [&](int64_t bh, int) {
    const int64_t h = bh % H;
    Eigen::Map<Eigen::VectorXf>(r.o.data() + bh * Dv, Dv).noalias() =
        CMap(w_uv + h * Dv * Dc, Dv, Dc, Stride(Dc)) *
        Eigen::Map<const Eigen::VectorXf>(x.data() + bh * Dc, Dc);
  });
  r.extra_index.emplace("selection", std::move(selection));
  return r;
}

}  // namespace attnscope::cpu
