// MoBA on the CPU, "collect and densify" (as FlashMoBA does on GPU): gate every query against the
// block-mean keys with a GEMM, pick top-k per query, then for each key block gather the queries
// that chose it into one dense tile, attend, and merge each query's per-block partials by
// log-sum-exp. Work falls with top_k x block_size; only the gate (L x L/block_size x D) grows with
// L².
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "attnscope/merge.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "variants/moba/moba.hpp"

namespace attnscope::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kGateRows = 256;  // query rows gated per task
constexpr int64_t kTileRows = 256;  // gathered query rows per attention tile

struct Dims {
  int64_t B, H, Hkv, G, Lq, Lk, Dk, Dv, bs, top_k, nb, off;
  explicit Dims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        Hkv(p.shape.kv_heads),
        G(p.shape.heads / p.shape.kv_heads),
        Lq(p.shape.q_len),
        Lk(p.shape.kv_len),
        Dk(p.shape.head_dim),
        Dv(p.shape.v_head_dim),
        bs(p.moba.block_size),
        top_k(p.moba.top_k),
        nb((p.shape.kv_len - 1) / p.moba.block_size + 1),
        off(p.shape.kv_len - p.shape.q_len) {}
};

// Top (k - 1) past blocks of one query from fp32 gate scores, ties to the lower index. When the
// last chosen and the first rejected block are within fp32 rounding, the row is re-decided with
// float64 scores, so the choice matches the float64 oracle and does not depend on GEMM blocking.
void choose(const float* gate, int64_t own, int64_t want, const float* q, const MatrixRd& mean_d,
            std::vector<int64_t>& idx, std::vector<double>& score_d) {
  idx.resize(static_cast<size_t>(own));
  std::iota(idx.begin(), idx.end(), 0);
  auto better = [&](int64_t a, int64_t b) {
    return gate[a] > gate[b] || (gate[a] == gate[b] && a < b);
  };
  if (want >= own) {
    idx.push_back(own);
    return;
  }
  std::nth_element(idx.begin(), idx.begin() + want, idx.end(), better);
  // idx[want] is the best rejected block; the worst chosen one is the max of idx[0..want) by order.
  float worst = std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < want; ++t) worst = std::min(worst, gate[idx[t]]);
  float best_rejected = gate[idx[want]];
  for (int64_t t = want + 1; t < own; ++t) best_rejected = std::max(best_rejected, gate[idx[t]]);
  if (want > 0 && worst - best_rejected <= 1e-4f * (1.0f + std::fabs(worst))) {
    score_d.resize(static_cast<size_t>(own));
    const int64_t Dk = mean_d.cols();
    for (int64_t c = 0; c < own; ++c) {
      double s = 0;
      for (int64_t e = 0; e < Dk; ++e) s += double(q[e]) * mean_d(c, e);
      score_d[c] = s;
    }
    std::iota(idx.begin(), idx.end(), 0);
    std::nth_element(idx.begin(), idx.begin() + want, idx.end(), [&](int64_t a, int64_t b) {
      return score_d[a] > score_d[b] || (score_d[a] == score_d[b] && a < b);
    });
  }
  idx.resize(static_cast<size_t>(want));
  idx.push_back(own);
}

// Attention of `n` gathered (pre-scaled) query rows against keys [j0, j1) of one block; row r sees
// keys j <= limit[r]. Writes the normalized partial output and its lse.
void attend_block(const Eigen::Map<MatrixR>& Qg, int64_t n, const float* kb, const float* vb,
                  int64_t j0, int64_t j1, const int64_t* limit, int64_t Dk, int64_t Dv,
                  Eigen::Map<MatrixR>& S, Eigen::Map<MatrixR>& O, float* lse) {
  const int64_t w = j1 - j0;
  S.noalias() = Qg.topRows(n) * view(kb + j0 * Dk, w, Dk, Dk).transpose();
  for (int64_t r = 0; r < n; ++r) {
    if (limit) {
      for (int64_t c = std::max<int64_t>(0, limit[r] + 1 - j0); c < w; ++c) S(r, c) = kNegInf;
    }
    const float m = S.row(r).maxCoeff();
    if (m == kNegInf) {
      S.row(r).setZero();
      lse[r] = kNegInf;
      continue;
    }
    S.row(r) = (S.row(r).array() - m).exp().matrix();
    const float l = S.row(r).sum();
    S.row(r) /= l;
    lse[r] = m + std::log(l);
  }
  O.noalias() = S * view(vb + j0 * Dv, w, Dv, Dv);
}

// The map pyramid's cells for MoBA (map_pyramid.hpp): a cell's columns divide the block size or are
// a multiple of it, so each block's partial pools into whole cells; coarser until both the pyramid
// and the per-(row, chosen block) scratch fit the budget. Null when not asked for or nothing fits.
std::shared_ptr<MapPyramid> make_pyramid(const Dims& d, const PyramidRequest& want,
                                         int64_t& cells_per_block) {
  if (want.cells <= 0 || d.Lq <= 0 || d.Lk <= 0) return nullptr;
  auto p = std::make_shared<MapPyramid>();
  p->batch = d.B, p->heads = d.H, p->q_len = d.Lq, p->kv_len = d.Lk;
  p->cell_rows = (d.Lq + want.cells - 1) / want.cells;
  int64_t target = (d.Lk + want.cells - 1) / want.cells;
  const int64_t slots = std::min(d.top_k, d.nb);
  for (;;) {
    if (target >= d.bs) {
      p->cell_cols = (target + d.bs - 1) / d.bs * d.bs;
    } else {
      p->cell_cols = 1;
      for (int64_t x = target; x >= 1; --x) {
        if (d.bs % x == 0) {
          p->cell_cols = x;
          break;
        }
      }
    }
    cells_per_block = std::max<int64_t>(1, d.bs / p->cell_cols);
    p->rows = (d.Lq + p->cell_rows - 1) / p->cell_rows;
    p->cols = (d.Lk + p->cell_cols - 1) / p->cell_cols;
    const double pyramid = 8.0 * double(d.B * d.H) * double(p->rows) * double(p->cols);
    const double scratch = 8.0 * double(d.G * d.Lq) * double(slots) * double(cells_per_block);
    if (pyramid <= double(want.max_bytes) && scratch <= double(want.max_bytes)) break;
    // Coarser: columns up to one whole block (or all keys), rows up to all queries; when neither
    // can grow, nothing fits (a key range shorter than a block stops short of Lk, hence the bs).
    const int64_t next_target = std::min(std::max(d.Lk, d.bs), std::max(target, p->cell_cols) * 2);
    const int64_t next_rows = std::min(d.Lq, p->cell_rows * 2);
    if (next_target == target && next_rows == p->cell_rows) return nullptr;
    target = next_target;
    p->cell_rows = next_rows;
  }
  const size_t n = static_cast<size_t>(d.B * d.H * p->rows * p->cols);
  p->max.assign(n, 0.0f);
  p->sum.assign(n, 0.0f);
  return p;
}

}  // namespace

RunResult run_moba(const Context& c) {
  const Dims d(c.problem);
  const float scale = static_cast<float>(c.problem.effective_scale());
  const float* q = c.inputs.at("q").data();
  const float* k = c.inputs.at("k").data();
  const float* v = c.inputs.at("v").data();
  ThreadPool& pool = ThreadPool::global();
  RunResult r;
  r.o = Tensor({d.B, d.H, d.Lq, d.Dv});
  r.lse = Tensor({d.B, d.H, d.Lq});
  IndexTensor selection({d.B, d.H, d.Lq, d.top_k}, -1);

  const int64_t rows = d.G * d.Lq;  // query rows of one kv head: row = g * Lq + i
  // A query selects at most min(top_k, blocks) blocks: one partial slot each.
  const int64_t slots = std::min(d.top_k, d.nb);
  std::vector<float> part_o(static_cast<size_t>(rows * slots * d.Dv));  // [rows, slots, Dv]
  std::vector<float> part_lse(static_cast<size_t>(rows * slots));       // [rows, slots]
  std::vector<int64_t> count(static_cast<size_t>(d.nb) + 1), start;
  std::vector<int32_t> members;  // rows that chose each block as a past block, grouped by block
  // The map pyramid, pooled from each (row, chosen block) partial: its block-normalized P's max
  // and sum per cell, scaled by exp(lse_block - lse) once the row's lse is final.
  int64_t cpb = 1;  // cells per block
  const std::shared_ptr<MapPyramid> pyramid = make_pyramid(d, c.probes.pyramid, cpb);
  std::vector<float> cell_max, cell_sum;  // [rows, slots, cpb]
  if (pyramid) {
    cell_max.resize(static_cast<size_t>(rows * slots * cpb));
    cell_sum.resize(static_cast<size_t>(rows * slots * cpb));
  }

  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t kvh = 0; kvh < d.Hkv; ++kvh) {
      c.cancel.throw_if_cancelled();
      const float* kb = k + (b * d.Hkv + kvh) * d.Lk * d.Dk;
      const float* vb = v + (b * d.Hkv + kvh) * d.Lk * d.Dv;
      int32_t* sel = selection.data() + (b * d.H + kvh * d.G) * d.Lq * d.top_k;  // [rows, top_k]
      // 1. Block-mean keys over each block's real length (float64 sums; fp32 copy for the GEMM).
      MatrixRd mean_d = MatrixRd::Zero(d.nb, d.Dk);
      for (int64_t j = 0; j < d.Lk; ++j) {
        mean_d.row(j / d.bs) += view(kb + j * d.Dk, 1, d.Dk, d.Dk).cast<double>();
      }
      for (int64_t blk = 0; blk < d.nb; ++blk) {
        mean_d.row(blk) /= double(std::min(d.Lk, (blk + 1) * d.bs) - blk * d.bs);
      }
      const MatrixR mean = mean_d.cast<float>();
      // 2. Gate + top-k per query row, kGateRows rows per task.
      pool.parallel_for((rows + kGateRows - 1) / kGateRows, c.threads, [&](int64_t t, int) {
        const int64_t r0 = t * kGateRows, r1 = std::min(rows, r0 + kGateRows);
        thread_local AlignedVector q_buf, gate_buf;
        thread_local std::vector<int64_t> idx;
        thread_local std::vector<double> score_d;
        Eigen::Map<MatrixR> Qt(grow(q_buf, kGateRows * d.Dk), r1 - r0, d.Dk);
        for (int64_t row = r0; row < r1; ++row) {
          const int64_t g = row / d.Lq, i = row % d.Lq;
          Qt.row(row - r0) = view(q + ((b * d.H + kvh * d.G + g) * d.Lq + i) * d.Dk, 1, d.Dk, d.Dk);
        }
        Eigen::Map<MatrixR> gate(grow(gate_buf, kGateRows * d.nb), r1 - r0, d.nb);
        gate.noalias() = Qt * mean.transpose();
        for (int64_t row = r0; row < r1; ++row) {
          const int64_t pos = row % d.Lq + d.off;
          if (pos < 0) continue;  // sees no key: selection stays -1
          const int64_t own = pos / d.bs;
          choose(gate.data() + (row - r0) * d.nb, own, std::min(own, d.top_k - 1),
                 Qt.data() + (row - r0) * d.Dk, mean_d, idx, score_d);
          std::sort(idx.begin(), idx.end());
          std::copy(idx.begin(), idx.end(), sel + row * d.top_k);
        }
      });
      // 3. Collect: rows that chose each block as a past block (counting sort by block).
      std::fill(count.begin(), count.end(), 0);
      for (int64_t row = 0; row < rows; ++row) {
        for (int64_t s = 0; s + 1 < d.top_k && sel[row * d.top_k + s + 1] >= 0; ++s) {
          ++count[sel[row * d.top_k + s]];
        }
      }
      start.assign(static_cast<size_t>(d.nb) + 1, 0);
      std::partial_sum(count.begin(), count.end() - 1, start.begin() + 1);
      members.resize(static_cast<size_t>(start[d.nb]));
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t row = 0; row < rows; ++row) {
        for (int64_t s = 0; s + 1 < d.top_k && sel[row * d.top_k + s + 1] >= 0; ++s) {
          members[fill[sel[row * d.top_k + s]]++] = static_cast<int32_t>(row);
        }
      }
      // 4. Densify: per key block, one task per tile of gathered past rows, plus the rows whose
      // own block it is (causal inside the block). Each partial lands in its row's slot.
      std::vector<std::array<int64_t, 3>> tasks;  // {block, first member, last member}; own: -1
      for (int64_t blk = 0; blk < d.nb; ++blk) {
        for (int64_t m0 = start[blk]; m0 < start[blk + 1]; m0 += kTileRows) {
          tasks.push_back({blk, m0, std::min(start[blk + 1], m0 + kTileRows)});
        }
        tasks.push_back({blk, -1, -1});
      }
      pool.parallel_for(static_cast<int64_t>(tasks.size()), c.threads, [&](int64_t t, int) {
        c.cancel.throw_if_cancelled();
        const auto [blk, m0, m1] = tasks[static_cast<size_t>(t)];
        const int64_t j0 = blk * d.bs, j1 = std::min(d.Lk, j0 + d.bs);
        thread_local AlignedVector q_buf, s_buf, o_buf;
        thread_local std::vector<int64_t> row_of, limit;
        thread_local std::vector<float> lse;
        row_of.clear();
        limit.clear();
        if (m0 >= 0) {
          for (int64_t m = m0; m < m1; ++m) {
            row_of.push_back(members[m]);
            limit.push_back(j1 - 1);
          }
        } else {  // queries at positions inside this block
          for (int64_t g = 0; g < d.G; ++g) {
            for (int64_t pos = j0; pos < j1; ++pos) {
              const int64_t i = pos - d.off;
              if (i < 0 || i >= d.Lq) continue;
              row_of.push_back(g * d.Lq + i);
              limit.push_back(pos);
            }
          }
        }
        const int64_t n = static_cast<int64_t>(row_of.size());
        if (n == 0) return;
        Eigen::Map<MatrixR> Qg(grow(q_buf, n * d.Dk), n, d.Dk);
        Eigen::Map<MatrixR> S(grow(s_buf, n * (j1 - j0)), n, j1 - j0);  // a block may exceed Lk
        Eigen::Map<MatrixR> O(grow(o_buf, n * d.Dv), n, d.Dv);
        for (int64_t r = 0; r < n; ++r) {
          const int64_t g = row_of[r] / d.Lq, i = row_of[r] % d.Lq;
          Qg.row(r) =
              view(q + ((b * d.H + kvh * d.G + g) * d.Lq + i) * d.Dk, 1, d.Dk, d.Dk) * scale;
        }
        lse.resize(static_cast<size_t>(n));
        attend_block(Qg, n, kb, vb, j0, j1, m0 >= 0 ? nullptr : limit.data(), d.Dk, d.Dv, S, O,
                     lse.data());
        for (int64_t r = 0; r < n; ++r) {
          const int32_t* srow = sel + row_of[r] * d.top_k;
          const int64_t slot = std::find(srow, srow + d.top_k, int32_t(blk)) - srow;
          float* dst = part_o.data() + (row_of[r] * slots + slot) * d.Dv;
          std::copy(O.data() + r * d.Dv, O.data() + (r + 1) * d.Dv, dst);
          part_lse[static_cast<size_t>(row_of[r] * slots + slot)] = lse[r];
          if (!pyramid) continue;
          float* cmax = cell_max.data() + (row_of[r] * slots + slot) * cpb;
          float* csum = cell_sum.data() + (row_of[r] * slots + slot) * cpb;
          for (int64_t k = 0; k < cpb; ++k) {
            const int64_t a = k * pyramid->cell_cols, e = std::min(j1 - j0, a + pyramid->cell_cols);
            if (e <= a) {
              cmax[k] = csum[k] = 0.0f;
              continue;
            }
            cmax[k] = S.row(r).segment(a, e - a).maxCoeff();
            csum[k] = S.row(r).segment(a, e - a).sum();
          }
        }
      });
      // 5. Merge each row's partials in ascending block order.
      pool.parallel_for((rows + kGateRows - 1) / kGateRows, c.threads, [&](int64_t t, int) {
        for (int64_t row = t * kGateRows; row < std::min(rows, (t + 1) * kGateRows); ++row) {
          const int64_t g = row / d.Lq, i = row % d.Lq;
          const int64_t out = (b * d.H + kvh * d.G + g) * d.Lq + i;
          std::span<float> o(r.o.data() + out * d.Dv, static_cast<size_t>(d.Dv));
          float& l = r.lse.data()[out];
          l = kNegInf;  // o is zero-initialized
          for (int64_t s = 0; s < d.top_k && sel[row * d.top_k + s] >= 0; ++s) {
            merge_row(o, l,
                      std::span<const float>(part_o.data() + (row * slots + s) * d.Dv,
                                             static_cast<size_t>(d.Dv)),
                      part_lse[static_cast<size_t>(row * slots + s)]);
          }
        }
      });
      if (!pyramid) continue;
      // 6. Pool each row's partials into the pyramid, one task per (head, cell row): no two tasks
      // write the same cell.
      MapPyramid& pyr = *pyramid;
      pool.parallel_for(d.G * pyr.rows, c.threads, [&](int64_t t, int) {
        const int64_t g = t / pyr.rows, cr = t % pyr.rows, h = kvh * d.G + g;
        float* pmax = pyr.max.data() + pyr.offset(b, h) + cr * pyr.cols;
        float* psum = pyr.sum.data() + pyr.offset(b, h) + cr * pyr.cols;
        for (int64_t i = pyr.row_begin(cr); i < pyr.row_end(cr); ++i) {
          const int64_t row = g * d.Lq + i;
          const float l = r.lse.data()[(b * d.H + h) * d.Lq + i];
          if (!std::isfinite(l)) continue;
          for (int64_t s = 0; s < d.top_k && sel[row * d.top_k + s] >= 0; ++s) {
            const float scale_to_p = std::exp(part_lse[static_cast<size_t>(row * slots + s)] - l);
            const int64_t first = sel[row * d.top_k + s] * d.bs / pyr.cell_cols;
            const float* cmax = cell_max.data() + (row * slots + s) * cpb;
            const float* csum = cell_sum.data() + (row * slots + s) * cpb;
            for (int64_t k = 0; k < cpb && first + k < pyr.cols; ++k) {
              pmax[first + k] = std::max(pmax[first + k], cmax[k] * scale_to_p);
              psum[first + k] += csum[k] * scale_to_p;
            }
          }
        }
      });
    }
  }
  r.selection = std::move(selection);
  r.pyramid = pyramid;
  return r;
}

}  // namespace attnscope::cpu
