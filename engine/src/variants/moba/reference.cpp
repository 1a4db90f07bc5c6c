// Reference Mixture of Block Attention (MoonshotAI MoBA, naive form): gate each query against the
// mean key of every complete past block, keep its own block plus the top_k - 1 best, attend there.
#include <algorithm>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "backends/reference/reference.hpp"
#include "variants/moba/moba.hpp"

namespace attnscope::reference {
namespace {

struct MobaDims {
  int64_t B, H, Hkv, Lq, Lk, Dk, Dv, group, block, top_k, blocks;
  explicit MobaDims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        Hkv(p.shape.kv_heads),
        Lq(p.shape.q_len),
        Lk(p.shape.kv_len),
        Dk(p.shape.head_dim),
        Dv(p.shape.v_head_dim),
        group(p.shape.heads / p.shape.kv_heads),
        block(p.moba.block_size),
        top_k(p.moba.top_k),
        blocks((p.shape.kv_len - 1) / p.moba.block_size + 1) {}
};

// Mean key of every block over its real length (the last block may be short): [blocks, Dk].
std::vector<double> block_means(const MobaDims& d, const float* kb) {
  std::vector<double> mean(static_cast<size_t>(d.blocks * d.Dk), 0.0);
  for (int64_t c = 0; c < d.blocks; ++c) {
    const int64_t lo = c * d.block, hi = std::min(d.Lk, lo + d.block);
    for (int64_t j = lo; j < hi; ++j) {
      for (int64_t e = 0; e < d.Dk; ++e) mean[c * d.Dk + e] += kb[j * d.Dk + e];
    }
    for (int64_t e = 0; e < d.Dk; ++e) mean[c * d.Dk + e] /= double(hi - lo);
  }
  return mean;
}

// Selected blocks of the query at key position pos, ascending: own block + best top_k - 1 of the
// complete past blocks by gate score q · k̄ (no scale), ties to the lower block index.
std::vector<int64_t> select_blocks(const MobaDims& d, const float* qi,
                                   const std::vector<double>& mean, int64_t pos) {
  const int64_t own = pos / d.block;
  std::vector<double> gate(static_cast<size_t>(own));  // [own] past blocks only
  for (int64_t c = 0; c < own; ++c) {
    double s = 0;
    for (int64_t e = 0; e < d.Dk; ++e) s += double(qi[e]) * mean[c * d.Dk + e];
    gate[c] = s;
  }
  std::vector<int64_t> order(static_cast<size_t>(own));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return gate[a] > gate[b]; });
  order.resize(static_cast<size_t>(std::min(own, d.top_k - 1)));
  order.push_back(own);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

RunResult moba_run(const AttentionProblem& p, const Inputs& in, const CancelToken& cancel) {
  const MobaDims d(p);
  const Tensor& q = in.at("q");  // [B, H, Lq, Dk]
  const Tensor& k = in.at("k");  // [B, Hkv, Lk, Dk]
  const Tensor& v = in.at("v");  // [B, Hkv, Lk, Dv]
  const double scale = p.effective_scale();
  RunResult r = make_softmax_result(p);
  IndexTensor selection({d.B, d.H, d.Lq, d.top_k}, -1);  // [B, H, Lq, top_k]

  std::vector<double> prob(static_cast<size_t>(d.Lk));  // [Lk] one row of P
  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t kvh = 0; kvh < d.Hkv; ++kvh) {
      const float* kb = k.data() + (b * d.Hkv + kvh) * d.Lk * d.Dk;
      const float* vb = v.data() + (b * d.Hkv + kvh) * d.Lk * d.Dv;
      const std::vector<double> mean = block_means(d, kb);  // [blocks, Dk]
      for (int64_t h = kvh * d.group; h < (kvh + 1) * d.group; ++h) {
        cancel.throw_if_cancelled();
        for (int64_t i = 0; i < d.Lq; ++i) {
          // Every 64 rows: a long head must not delay cancellation by seconds.
          if (i % 64 == 63) cancel.throw_if_cancelled();
          const int64_t row = (b * d.H + h) * d.Lq + i;
          const float* qi = q.data() + row * d.Dk;
          float* oi = r.o.data() + row * d.Dv;
          const int64_t pos = p.query_position(i);
          if (pos < 0) {  // sees no key at all: zero output, lse = -inf
            std::fill(oi, oi + d.Dv, 0.0f);
            r.lse.data()[row] = -std::numeric_limits<float>::infinity();
            continue;
          }
          // Phase 1: routing.
          const std::vector<int64_t> chosen = select_blocks(d, qi, mean, pos);
          std::copy(chosen.begin(), chosen.end(), selection.data() + row * d.top_k);
          // Phase 2: scores over the chosen blocks' keys (own block only up to pos), softmax.
          std::fill(prob.begin(), prob.end(), kNegInf);
          for (int64_t c : chosen) {
            const int64_t hi = std::min({d.Lk, (c + 1) * d.block, pos + 1});
            for (int64_t j = c * d.block; j < hi; ++j) {
              double dot = 0;
              for (int64_t e = 0; e < d.Dk; ++e) dot += double(qi[e]) * kb[j * d.Dk + e];
              prob[j] = dot * scale;
            }
          }
          r.lse.data()[row] = static_cast<float>(softmax_in_place(prob));
          // Phase 3: weighted values.
          for (int64_t e = 0; e < d.Dv; ++e) {
            double acc = 0;
            for (int64_t j = 0; j < d.Lk; ++j) {
              if (prob[j] != 0) acc += prob[j] * vb[j * d.Dv + e];
            }
            oi[e] = static_cast<float>(acc);
          }
        }
        cancel.report(double((b * d.H + h) + 1) / double(d.B * d.H));
      }
    }
  }
  r.selection = std::move(selection);
  return r;
}

// Map tiles are recomputed on every zoom, so they run on fp32 GEMMs (the run itself is the oracle).
void moba_map_tile(const AttentionProblem& p, const Inputs& in, const RunResult& res, int64_t b,
                   int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MobaDims d(p);
  const int64_t kvh = h / d.group, rows = i1 - i0, cols = j1 - j0;
  Eigen::Map<const RowMajor> qt(in.at("q").data() + ((b * d.H + h) * d.Lq + i0) * d.Dk, rows, d.Dk);
  Eigen::Map<const RowMajor> kt(in.at("k").data() + ((b * d.Hkv + kvh) * d.Lk + j0) * d.Dk, cols,
                                d.Dk);
  Eigen::Map<RowMajor> tile(out, rows, cols);
  // Scores only for the key blocks some row of the tile chose: at 128K tokens with 4 of 32 blocks
  // chosen, most of a map's tiles are mostly unchosen keys.
  const int64_t first_block = j0 / d.block, last_block = (j1 - 1) / d.block;
  std::vector<char> chosen(static_cast<size_t>(last_block - first_block + 1), 0);
  for (int64_t i = i0; i < i1; ++i) {
    const int32_t* sel = res.selection->data() + ((b * d.H + h) * d.Lq + i) * d.top_k;
    for (int64_t t = 0; t < d.top_k; ++t) {
      if (sel[t] >= first_block && sel[t] <= last_block) chosen[sel[t] - first_block] = 1;
    }
  }
  for (int64_t blk = first_block; blk <= last_block; ++blk) {
    if (!chosen[blk - first_block]) continue;
    const int64_t a = std::max(j0, blk * d.block) - j0, e = std::min(j1, (blk + 1) * d.block) - j0;
    tile.middleCols(a, e - a).noalias() = qt * kt.middleRows(a, e - a).transpose();
  }
  const float scale = static_cast<float>(p.effective_scale());
  // Row by row over the chosen blocks only (ascending ids, -1 padding): the rest of the row is an
  // exact 0, and a map at 128K tokens has millions of entries per zoom.
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t row = (b * d.H + h) * d.Lq + i;
    const float lse = res.lse.data()[row];
    const int32_t* sel = res.selection->data() + row * d.top_k;
    const int64_t end = std::min(j1, p.query_position(i) + 1);  // causal
    float* x = out + (i - i0) * cols;
    int64_t done = j0;  // keys [j0, done) of this row are final
    for (int64_t t = 0; t < d.top_k && std::isfinite(lse); ++t) {
      if (sel[t] < 0) continue;
      const int64_t a = std::max(j0, sel[t] * d.block), e = std::min(end, (sel[t] + 1) * d.block);
      if (e <= a) continue;
      std::fill(x + (done - j0), x + (std::max(done, a) - j0), 0.0f);
      Eigen::Map<Eigen::ArrayXf> seg(x + (a - j0), e - a);
      seg = (seg * scale - lse).exp();
      done = std::max(done, e);
    }
    std::fill(x + (done - j0), x + cols, 0.0f);
  }
}

}  // namespace attnscope::reference
