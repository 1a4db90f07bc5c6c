// DSA on the CPU in two passes. 1. The lightning indexer, tile by tile: for a block of query rows,
// one GEMM of their Hi index queries against a tile of index keys, ReLU, weighted sum over the
// heads, and a running top-k per row (memory O(top_k) per row, never O(Lq x Lk)); where fp32 cannot
// tell the last kept key from the first rejected one, those candidates are re-scored in float64 as
// the reference scores them. 2. Absorbed MLA over the selected latent rows: per query row, its
// keys' [c_kv | k_rope] rows are gathered once and shared by all H heads (one selection per query).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "variants/dsa/dsa.hpp"

namespace attnscope::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kIndexRows = 16;    // query rows per indexer task (x Hi GEMM rows)
constexpr int64_t kKeyTile = 256;     // index keys per indexer GEMM
constexpr int64_t kAttendRows = 32;   // query rows per attention task
constexpr int64_t kGatherKeys = 128;  // selected keys gathered per attention GEMM

struct Dims {
  int64_t B, H, Lq, Lk, Dn, Dr, Dc, Dv, Hi, Di, top_k, off;
  explicit Dims(const AttentionProblem& p)
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
        top_k(p.dsa.top_k),
        off(p.shape.kv_len - p.shape.q_len) {}
};

struct Candidate {
  float score;  // fp32 index score
  int32_t key;
};

// The reference's float64 index score (variants/dsa/reference.cpp, index_score), term for term:
// the selection must break ties exactly as the oracle does.
double exact_score(const Dims& d, const float* qi, const float* wi, const float* ks,
                   double index_scale) {
  double total = 0;
  for (int64_t j = 0; j < d.Hi; ++j) {
    const float* qj = qi + j * d.Lq * d.Di;
    double dot = 0;
    for (int64_t e = 0; e < d.Di; ++e) dot += double(qj[e]) * double(ks[e]);
    total = std::fma(double(wi[j]), std::max(dot, 0.0), total);
  }
  return total * index_scale;
}

// Keeps the candidates that may still be among the best `n`: the n-th best score only rises as
// keys arrive, so whatever is more than `band` below it now can never come within `band` of the
// final cut.
void prune(std::vector<Candidate>& buf, int64_t n, float band) {
  std::nth_element(buf.begin(), buf.begin() + (n - 1), buf.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  const float keep = buf[size_t(n - 1)].score - band;
  std::erase_if(buf, [keep](const Candidate& c) { return c.score < keep; });
}

// The best `n` keys of one row from its fp32 candidates, ascending, into `out`. Every fp32 score is
// within band / 2 of the float64 one, so a key more than `band` above the fp32 cut is in and one
// more than `band` below it is out whatever float64 says; only the keys in between are re-scored.
void finish_row(std::vector<Candidate>& buf, int64_t n, float band, const Dims& d, const float* qi,
                const float* wi, const float* kb, double index_scale,
                std::vector<std::pair<double, int32_t>>& tied, int32_t* out) {
  std::nth_element(buf.begin(), buf.begin() + (n - 1), buf.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  const float cut = buf[size_t(n - 1)].score;
  int64_t count = 0;
  tied.clear();
  for (const Candidate& c : buf) {
    if (c.score > cut + band) {
      out[count++] = c.key;
    } else if (c.score >= cut - band) {
      tied.push_back({0.0, c.key});
    }
  }
  const int64_t rest = n - count;  // >= 1: fewer than n fp32 scores exceed the cut
  if (static_cast<int64_t>(tied.size()) > rest) {
    for (auto& [s, key] : tied) s = exact_score(d, qi, wi, kb + int64_t(key) * d.Di, index_scale);
    std::nth_element(tied.begin(), tied.begin() + (rest - 1), tied.end(),
                     [](const auto& a, const auto& b) {
                       return a.first > b.first || (a.first == b.first && a.second < b.second);
                     });
  }
  for (int64_t t = 0; t < rest; ++t) out[count++] = tied[size_t(t)].second;
  std::sort(out, out + n);
}

// The best `n` of the keys [0, seen) by the float64 score alone, ascending: for rows whose index
// scores could leave fp32's range (finite inputs near 1e19 do), where the fp32 pass cannot rank.
void exact_row(int64_t n, int64_t seen, const Dims& d, const float* qi, const float* wi,
               const float* kb, double index_scale, std::vector<std::pair<double, int32_t>>& all,
               int32_t* out) {
  all.resize(static_cast<size_t>(seen));
  for (int64_t s = 0; s < seen; ++s) {
    all[size_t(s)] = {exact_score(d, qi, wi, kb + s * d.Di, index_scale), int32_t(s)};
  }
  std::nth_element(all.begin(), all.begin() + (n - 1), all.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  for (int64_t t = 0; t < n; ++t) out[t] = all[size_t(t)].second;
  std::sort(out, out + n);
}

// Pass 1: selection [B, Lq, top_k] of every row.
void select_keys(const Context& c, const Dims& d, const float* q_idx, const float* k_idx,
                 IndexTensor& selection) {
  const float* w_idx = c.inputs.at("w_idx").data();  // [B, Lq, Hi]
  const double index_scale = 1.0 / std::sqrt(double(d.Di));
  // The fp32 scores' error bound (band / 2): each index dot product is off by at most
  // γ_Di |q_j| |k| (Cauchy-Schwarz on Σ|q_e k_e|), ReLU passes that on, and the weighted head sum
  // and the weights' scaling add a few ulps of Σ|w_j| |q_j| |k|. Doubled twice for safety (and
  // for the float64 oracle's own rounding).
  const double ulps = double(d.Di + d.Hi + 4) * std::ldexp(1.0, -24) * 4.0;
  std::vector<double> k_max(static_cast<size_t>(d.B), 0.0);
  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t s = 0; s < d.Lk; ++s) {
      const double norm = view(k_idx + (b * d.Lk + s) * d.Di, 1, d.Di, d.Di).cast<double>().norm();
      k_max[size_t(b)] = std::max(k_max[size_t(b)], norm);
    }
  }
  const int64_t blocks = (d.Lq + kIndexRows - 1) / kIndexRows;
  ThreadPool::global().parallel_for(d.B * blocks, c.threads, [&](int64_t task, int) {
    c.cancel.throw_if_cancelled();
    const int64_t b = task / blocks;
    // Last rows first: they see the most keys, and the pool hands tasks out in order.
    const int64_t i0 = (blocks - 1 - task % blocks) * kIndexRows;
    const int64_t i1 = std::min(d.Lq, i0 + kIndexRows);
    // Rows that see at most top_k keys take all of them: no scoring.
    int64_t first = i0;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t pos = i + d.off;
      int32_t* out = selection.data() + (b * d.Lq + i) * d.top_k;
      if (pos >= 0 && pos + 1 <= d.top_k) {
        for (int64_t s = 0; s <= pos; ++s) out[s] = static_cast<int32_t>(s);
      }
      if (pos + 1 <= d.top_k) first = i + 1;
    }
    if (first >= i1) return;
    const int64_t rows = i1 - first, last_pos = i1 - 1 + d.off;
    thread_local AlignedVector q_buf, s_buf, i_buf;
    thread_local std::vector<std::vector<Candidate>> bufs;
    thread_local std::vector<std::pair<double, int32_t>> tied;
    // The rows' index queries, row r * Hi + j = q_idx[b, j, first + r], and their weights with
    // the index scale folded in.
    Eigen::Map<MatrixR> Q(grow(q_buf, rows * d.Hi * d.Di), rows * d.Hi, d.Di);
    MatrixR W(rows, d.Hi);
    std::vector<float> band(static_cast<size_t>(rows)), thr(static_cast<size_t>(rows), kNegInf);
    std::vector<char> exact(static_cast<size_t>(rows), 0);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = first + r;
      double bound = 0, q_max = 0;
      for (int64_t j = 0; j < d.Hi; ++j) {
        const float* qj = q_idx + ((b * d.Hi + j) * d.Lq + i) * d.Di;
        Q.row(r * d.Hi + j) = view(qj, 1, d.Di, d.Di);
        const float w = w_idx[(b * d.Lq + i) * d.Hi + j];
        W(r, j) = static_cast<float>(double(w) * index_scale);
        const double q_norm = view(qj, 1, d.Di, d.Di).cast<double>().norm();
        bound += std::fabs(double(w)) * q_norm;
        q_max = std::max(q_max, q_norm);
      }
      band[size_t(r)] = static_cast<float>(2.0 * ulps * bound * index_scale * k_max[size_t(b)]);
      // A dot product or a weighted sum that could overflow fp32 (or turn inf · 0 into NaN)
      // leaves the row to float64, which finite fp32 inputs cannot overflow.
      const double reach = std::max(bound * index_scale, q_max) * k_max[size_t(b)];
      exact[size_t(r)] = !(reach < 1e30);
    }
    if (static_cast<int64_t>(bufs.size()) < rows) bufs.resize(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) bufs[size_t(r)].clear();
    const int64_t cap = std::max<int64_t>(4 * d.top_k, 1024);
    std::vector<int64_t> limit(static_cast<size_t>(rows), cap);
    float* I = grow(i_buf, kKeyTile);
    for (int64_t t0 = 0; t0 <= last_pos; t0 += kKeyTile) {
      const int64_t t1 = std::min(last_pos + 1, t0 + kKeyTile), w = t1 - t0;
      Eigen::Map<MatrixR> S(grow(s_buf, rows * d.Hi * kKeyTile), rows * d.Hi, w);
      S.noalias() = Q * view(k_idx + (b * d.Lk + t0) * d.Di, w, d.Di, d.Di).transpose();
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t pos = first + r + d.off, n = std::min(w, pos + 1 - t0);
        if (n <= 0 || exact[size_t(r)]) continue;
        Eigen::Map<Eigen::ArrayXf> score(I, n);
        score = S.row(r * d.Hi).head(n).array().max(0.0f) * W(r, 0);
        for (int64_t j = 1; j < d.Hi; ++j) {
          score += S.row(r * d.Hi + j).head(n).array().max(0.0f) * W(r, j);
        }
        std::vector<Candidate>& buf = bufs[size_t(r)];
        const float floor = thr[size_t(r)];
        for (int64_t k = 0; k < n; ++k) {
          if (I[k] >= floor) buf.push_back({I[k], static_cast<int32_t>(t0 + k)});
        }
        if (static_cast<int64_t>(buf.size()) >= limit[size_t(r)]) {
          prune(buf, d.top_k, band[size_t(r)]);
          thr[size_t(r)] = buf[size_t(d.top_k - 1)].score - band[size_t(r)];
          // Many near-equal scores (ReLU's exact zeros) may all have to stay.
          limit[size_t(r)] = std::max(cap, 2 * static_cast<int64_t>(buf.size()));
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = first + r;
      const float* qi = q_idx + (b * d.Hi * d.Lq + i) * d.Di;
      const float* wi = w_idx + (b * d.Lq + i) * d.Hi;
      int32_t* out = selection.data() + (b * d.Lq + i) * d.top_k;
      if (exact[size_t(r)]) {
        exact_row(d.top_k, i + d.off + 1, d, qi, wi, k_idx + b * d.Lk * d.Di, index_scale, tied,
                  out);
      } else {
        finish_row(bufs[size_t(r)], d.top_k, band[size_t(r)], d, qi, wi, k_idx + b * d.Lk * d.Di,
                   index_scale, tied, out);
      }
    }
  });
}

}  // namespace

RunResult run_dsa(const Context& c) {
  const AttentionProblem& p = c.problem;
  const Dims d(p);
  const int64_t Dq = d.Dn + d.Dr, Dl = d.Dc + d.Dr;
  const float* q = c.inputs.at("q").data();            // [B, H, Lq, Dn + Dr]
  const float* c_kv = c.inputs.at("c_kv").data();      // [B, Lk, Dc]
  const float* k_rope = c.inputs.at("k_rope").data();  // [B, Lk, Dr]
  const float* w_uk = c.inputs.at("w_uk").data();      // [H, Dn, Dc]
  const float* w_uv = c.inputs.at("w_uv").data();      // [H, Dv, Dc]
  ThreadPool& pool = ThreadPool::global();
  RunResult result;
  result.o = Tensor({d.B, d.H, d.Lq, d.Dv});
  result.lse = Tensor({d.B, d.H, d.Lq});
  const Cost cost = cost_of(p);
  result.counters = {cost.flops, cost.bytes, cost.visible_pairs};
  IndexTensor selection({d.B, d.Lq, d.top_k}, -1);

  // 1. The indexer, on e4m3-rounded copies with index_fp8 (as the reference).
  const auto t0 = std::chrono::steady_clock::now();
  {
    Tensor q_fp8, k_fp8;
    const float* q_idx = c.inputs.at("q_idx").data();
    const float* k_idx = c.inputs.at("k_idx").data();
    if (p.dsa.index_fp8) {
      q_fp8 = c.inputs.at("q_idx");
      k_fp8 = c.inputs.at("k_idx");
      dsa::fake_quantize_e4m3(q_fp8.data(), d.B * d.Hi * d.Lq, d.Di);
      dsa::fake_quantize_e4m3(k_fp8.data(), d.B * d.Lk, d.Di);
      q_idx = q_fp8.data();
      k_idx = k_fp8.data();
    }
    select_keys(c, d, q_idx, k_idx, selection);
  }
  const auto t1 = std::chrono::steady_clock::now();

  // 2. The latent keys [c_kv | k_rope] in one row per token, so a gather copies one run per key.
  Tensor kv({d.B, d.Lk, Dl});
  for (int64_t b = 0; b < d.B; ++b) {
    auto dst = view(kv.data() + b * d.Lk * Dl, d.Lk, Dl, Dl);
    dst.leftCols(d.Dc) = view(c_kv + b * d.Lk * d.Dc, d.Lk, d.Dc, d.Dc);
    dst.rightCols(d.Dr) = view(k_rope + b * d.Lk * d.Dr, d.Lk, d.Dr, d.Dr);
  }

  // 3. Absorbed MLA per block of query rows: q̃ for the block's rows of every head, then per row
  // scores [H, n] against its gathered keys, softmax, x [H, Dc], and finally o = x w_uvᵀ per head.
  const float scale = static_cast<float>(p.effective_scale());
  const int64_t blocks = (d.Lq + kAttendRows - 1) / kAttendRows;
  pool.parallel_for(d.B * blocks, c.threads, [&](int64_t task, int) {
    c.cancel.throw_if_cancelled();
    const int64_t b = task / blocks, i0 = (task % blocks) * kAttendRows;
    const int64_t rows = std::min(d.Lq, i0 + kAttendRows) - i0;
    thread_local AlignedVector qa_buf, x_buf, g_buf, s_buf, m_buf;
    // q̃ rows h * rows + r, [q̃ | q_rope], pre-scaled.
    Eigen::Map<MatrixR> QA(grow(qa_buf, d.H * rows * Dl), d.H * rows, Dl);
    Eigen::Map<MatrixR> X(grow(x_buf, d.H * rows * d.Dc), d.H * rows, d.Dc);
    for (int64_t h = 0; h < d.H; ++h) {
      auto qh = view(q + ((b * d.H + h) * d.Lq + i0) * Dq, rows, Dq, Dq);
      QA.middleRows(h * rows, rows).leftCols(d.Dc).noalias() =
          (qh.leftCols(d.Dn) * view(w_uk + h * d.Dn * d.Dc, d.Dn, d.Dc, d.Dc)) * scale;
      QA.middleRows(h * rows, rows).rightCols(d.Dr) = qh.rightCols(d.Dr) * scale;
    }
    const float* kvb = kv.data() + b * d.Lk * Dl;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      const int32_t* sel = selection.data() + (b * d.Lq + i) * d.top_k;
      int64_t n = 0;
      while (n < d.top_k && sel[n] >= 0) ++n;
      auto x = view(X.data() + r * d.Dc, d.H, d.Dc, rows * d.Dc);
      if (n == 0) {  // sees no key: o = 0, lse = -inf
        x.setZero();
        for (int64_t h = 0; h < d.H; ++h) result.lse.data()[(b * d.H + h) * d.Lq + i] = kNegInf;
        continue;
      }
      // Online softmax over chunks of gathered keys: a chunk stays in L2 between its two GEMMs,
      // where one gather of all n keys (4.7 MB at top_k 2048) would stream through memory twice.
      auto Qi = view(QA.data() + r * Dl, d.H, Dl, rows * Dl);
      float* m = grow(m_buf, 2 * d.H);
      float* l = m + d.H;
      std::fill(m, m + d.H, kNegInf);
      std::fill(l, l + d.H, 0.0f);
      x.setZero();
      for (int64_t t0 = 0; t0 < n; t0 += kGatherKeys) {
        const int64_t w = std::min(n - t0, kGatherKeys);
        Eigen::Map<MatrixR> G(grow(g_buf, w * Dl), w, Dl);
        for (int64_t t = 0; t < w; ++t) {
          std::copy_n(kvb + int64_t(sel[t0 + t]) * Dl, Dl, G.data() + t * Dl);
        }
        Eigen::Map<MatrixR> S(grow(s_buf, d.H * w), d.H, w);
        S.noalias() = Qi * G.transpose();
        for (int64_t h = 0; h < d.H; ++h) {
          const float m_new = std::max(m[h], S.row(h).maxCoeff());
          const float alpha = std::exp(m[h] - m_new);  // 0 on the first chunk (m = -inf)
          S.row(h) = (S.row(h).array() - m_new).exp().matrix();
          l[h] = l[h] * alpha + S.row(h).sum();
          if (t0 > 0) x.row(h) *= alpha;
          m[h] = m_new;
        }
        x.noalias() += S * G.leftCols(d.Dc);
      }
      for (int64_t h = 0; h < d.H; ++h) {
        x.row(h) /= l[h];
        result.lse.data()[(b * d.H + h) * d.Lq + i] = m[h] + std::log(l[h]);
      }
    }
    for (int64_t h = 0; h < d.H; ++h) {
      view(result.o.data() + ((b * d.H + h) * d.Lq + i0) * d.Dv, rows, d.Dv, d.Dv).noalias() =
          X.middleRows(h * rows, rows) * view(w_uv + h * d.Dv * d.Dc, d.Dv, d.Dc, d.Dc).transpose();
    }
  });
  result.extra_index.insert_or_assign("selection", std::move(selection));
  const auto t2 = std::chrono::steady_clock::now();
  result.phases = {{"indexer", std::chrono::duration<double>(t1 - t0).count()},
                   {"attention", std::chrono::duration<double>(t2 - t1).count()}};
  return result;
}

}  // namespace attnscope::cpu
