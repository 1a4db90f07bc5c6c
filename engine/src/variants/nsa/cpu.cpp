// NSA on the CPU, never an Lq x Lk buffer. The window branch runs on the flash tiles with a causal
// window mask (o_swa and lse_swa for every head at once). Then per (batch, kv head), in chunks of
// query rows: the compressed branch is a small dense attention of the group's queries over the
// visible block means, whose group-mean probabilities pick each row's blocks; the selected branch
// gathers, per key block, the rows that chose it into one dense tile ("collect and densify", as
// MoBA's cpu.cpp and FlashMoBA) and merges each row's per-block partials by log-sum-exp.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "attnscope/merge.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "backends/cpu/flash.hpp"
#include "variants/nsa/nsa.hpp"

namespace attnscope::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kRowTile = 64;       // query positions per compressed/selection/merge task
constexpr int64_t kTileQueries = 256;  // gathered query rows (positions x heads) per block tile
constexpr int64_t kPartialBudget = int64_t(64) << 20;  // bytes of per-block partials per chunk

struct Dims {
  int64_t B, H, Hkv, G, Lq, Lk, Dk, Dv, bs, S, W, nb, off;
  explicit Dims(const AttentionProblem& p)
      : B(p.shape.batch),
        H(p.shape.heads),
        Hkv(p.shape.kv_heads),
        G(p.shape.heads / p.shape.kv_heads),
        Lq(p.shape.q_len),
        Lk(p.shape.kv_len),
        Dk(p.shape.head_dim),
        Dv(p.shape.v_head_dim),
        bs(p.nsa.block_size),
        S(p.nsa.block_count),
        W(p.nsa.window),
        nb((p.shape.kv_len - 1) / p.nsa.block_size + 1),
        off(p.shape.kv_len - p.shape.q_len) {}
};

// Where block `blk` sits in a row's selection (ascending ids, -1 padding at the end): a binary
// search, as thousands of selected blocks make a linear one per (row, head, block) quadratic.
int64_t slot_of(const int32_t* row, int64_t S, int64_t blk) {
  return std::lower_bound(row, row + S, blk, [](int32_t a, int64_t b) { return a >= 0 && a < b; }) -
         row;
}

// The group's block scores in float64 with the reference's arithmetic: each dot product adds
// q_e·k̄_ce in ascending e (here for all blocks at once, over the transposed means kmean_t
// [Dk, nb], which vectorizes across blocks without reordering any sum), then the same softmax and
// group mean. Used for rows whose fp32 scores leave the choice within rounding.
void score_f64(const Dims& d, const float* const* qg, const MatrixRd& kmean_t, double scale,
               int64_t visible, std::vector<double>& prob, std::vector<double>& score) {
  prob.resize(static_cast<size_t>(visible));
  score.assign(static_cast<size_t>(visible), 0.0);
  for (int64_t g = 0; g < d.G; ++g) {
    const float* qi = qg[g];
    double* dot = prob.data();
    std::fill(dot, dot + visible, 0.0);
    for (int64_t e = 0; e < d.Dk; ++e) {
      const double qe = qi[e];
      const double* kt = kmean_t.data() + e * d.nb;
      for (int64_t c = 0; c < visible; ++c) dot[c] += qe * kt[c];
    }
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < visible; ++c) {
      prob[c] = dot[c] * scale;
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
    }
  }
  for (int64_t c = 0; c < visible; ++c) score[c] /= double(d.G);
}

// One row's selection: blocks 0, own, own - 1, then the `room` best of the other visible blocks
// [1, own - 2] by the group-mean compressed probability, ties to the lower index. fp32 scores
// decide unless the last chosen and the first rejected are within fp32 rounding of each other.
void select_blocks(const Dims& d, int64_t pos, const float* score, float tol,
                   const float* const* qg, const MatrixRd& kmean_t, double scale,
                   std::vector<int64_t>& idx, std::vector<double>& prob_d,
                   std::vector<double>& score_d, int32_t* out) {
  const int64_t own = pos / d.bs;
  int64_t n = 0;
  out[n++] = 0;
  if (own >= 1) out[n++] = int32_t(own);
  if (own >= 2) out[n++] = int32_t(own - 1);
  const int64_t room = d.S - n, candidates = std::max<int64_t>(0, own - 2);
  idx.resize(static_cast<size_t>(candidates));
  std::iota(idx.begin(), idx.end(), int64_t{1});
  if (candidates > room && room > 0) {
    auto better = [&](int64_t a, int64_t b) {
      return score[a] > score[b] || (score[a] == score[b] && a < b);
    };
    std::nth_element(idx.begin(), idx.begin() + room, idx.end(), better);
    float worst = std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < room; ++t) worst = std::min(worst, score[idx[t]]);
    float best_rejected = score[idx[room]];
    for (int64_t t = room + 1; t < candidates; ++t) {
      best_rejected = std::max(best_rejected, score[idx[t]]);
    }
    // `tol` bounds the relative error of an fp32 score (see the caller); the absolute term
    // covers probabilities that fp32 rounds to (or near) zero.
    if (worst - best_rejected <= tol * worst + 1e-30f) {
      score_f64(d, qg, kmean_t, scale, (pos + 1) / d.bs, prob_d, score_d);
      std::iota(idx.begin(), idx.end(), int64_t{1});
      std::nth_element(idx.begin(), idx.begin() + room, idx.end(), [&](int64_t a, int64_t b) {
        return score_d[a] > score_d[b] || (score_d[a] == score_d[b] && a < b);
      });
    }
  }
  for (int64_t t = 0; t < std::min(room, candidates); ++t) out[n++] = int32_t(idx[t]);
  std::sort(out, out + n);
}

}  // namespace

RunResult run_nsa(const Context& c) {
  const AttentionProblem& p = c.problem;
  const Dims d(p);
  const float scale = static_cast<float>(p.effective_scale());
  const float* q = c.inputs.at("q").data();
  const float* k = c.inputs.at("k").data();
  const float* v = c.inputs.at("v").data();
  const float* g_cmp = c.inputs.at("g_cmp").data();
  const float* g_slc = c.inputs.at("g_slc").data();
  const float* g_swa = c.inputs.at("g_swa").data();
  ThreadPool& pool = ThreadPool::global();
  RunResult r;
  r.o = Tensor({d.B, d.H, d.Lq, d.Dv});
  Tensor lse_cmp({d.B, d.H, d.Lq}), lse_slc({d.B, d.H, d.Lq}), lse_swa({d.B, d.H, d.Lq});
  IndexTensor selection({d.B, d.Hkv, d.Lq, d.S}, -1);

  // 1. Window branch, straight into o (scaled by g_swa below).
  if (d.W > 0) {
    FlashArgs a;
    a.q = q, a.k = k, a.v = v, a.o = r.o.data(), a.lse = lse_swa.data();
    a.B = d.B, a.H = d.H, a.Hkv = d.Hkv, a.Lq = d.Lq, a.Lk = d.Lk, a.Dk = d.Dk, a.Dv = d.Dv;
    a.mask.causal = true;
    a.mask.offset = d.off;
    a.mask.window = d.W;
    a.mask.kv_len = d.Lk;
    a.scale = scale;
    a.threads = c.threads;
    flash_attention(a, c.cancel);
  } else {
    std::fill(lse_swa.data(), lse_swa.data() + lse_swa.numel(), kNegInf);
  }

  // Query positions per chunk: the per-(row, head, slot) partials of the selected branch stay
  // within the budget.
  const int64_t slots = std::min(d.S, d.nb);
  const int64_t per_row = d.G * slots * (d.Dv + 1) * int64_t(sizeof(float));
  // Whole row tiles when they fit; fewer rows (down to one) when a row's partials are large
  // (thousands of selected blocks), so the budget holds for any block_count.
  const int64_t fit = std::max<int64_t>(1, kPartialBudget / per_row);
  const int64_t chunk = std::min(d.Lq, fit >= kRowTile ? fit / kRowTile * kRowTile : fit);
  std::vector<float> part_o(static_cast<size_t>(chunk * d.G * slots * d.Dv));  // [row, g, slot, Dv]
  std::vector<float> part_lse(static_cast<size_t>(chunk * d.G * slots));
  const int64_t tile_rows = std::max<int64_t>(1, kTileQueries / d.G);  // positions per block tile
  std::vector<int64_t> count, start;
  std::vector<int32_t> members;  // chunk rows that chose each block as a complete past block
  std::vector<std::array<int64_t, 3>> tasks;

  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t kvh = 0; kvh < d.Hkv; ++kvh) {
      c.cancel.throw_if_cancelled();
      const float* kb = k + (b * d.Hkv + kvh) * d.Lk * d.Dk;
      const float* vb = v + (b * d.Hkv + kvh) * d.Lk * d.Dv;
      const int64_t h0 = kvh * d.G;
      int32_t* sel = selection.data() + (b * d.Hkv + kvh) * d.Lq * d.S;  // [Lq, S]
      // 2. Block means over each block's real length, float64 sums as the reference adds them
      // (the selection's float64 re-score needs the same k̄); fp32 copies for the GEMMs.
      MatrixRd kmean_d = MatrixRd::Zero(d.nb, d.Dk);
      MatrixR vmean(d.nb, d.Dv);
      pool.parallel_for(d.nb, c.threads, [&](int64_t blk, int) {
        const int64_t lo = blk * d.bs, hi = std::min(d.Lk, lo + d.bs);
        Eigen::RowVectorXd vs = Eigen::RowVectorXd::Zero(d.Dv);
        for (int64_t j = lo; j < hi; ++j) {
          kmean_d.row(blk) += view(kb + j * d.Dk, 1, d.Dk, d.Dk).cast<double>();
          vs += view(vb + j * d.Dv, 1, d.Dv, d.Dv).cast<double>();
        }
        kmean_d.row(blk) /= double(hi - lo);
        vmean.row(blk) = (vs / double(hi - lo)).cast<float>();
      });
      const MatrixR kmean = kmean_d.cast<float>();
      const MatrixRd kmean_t = kmean_d.transpose();
      const float kmean_norm = d.nb > 0 ? kmean.rowwise().norm().maxCoeff() : 0.0f;

      for (int64_t i0 = 0; i0 < d.Lq; i0 += chunk) {
        const int64_t i1 = std::min(d.Lq, i0 + chunk);
        // 3. Compressed branch and selection, kRowTile positions (x G heads) per task.
        pool.parallel_for((i1 - i0 + kRowTile - 1) / kRowTile, c.threads, [&](int64_t t, int) {
          c.cancel.throw_if_cancelled();
          const int64_t t0 = i0 + t * kRowTile, t1 = std::min(i1, t0 + kRowTile);
          const int64_t first = std::max(t0, -d.off);  // rows before it see no key
          for (int64_t i = t0; i < std::min(first, t1); ++i) {
            for (int64_t g = 0; g < d.G; ++g) {
              const int64_t row = (b * d.H + h0 + g) * d.Lq + i;
              lse_cmp.data()[row] = lse_slc.data()[row] = kNegInf;
            }
          }
          if (first >= t1) return;
          const int64_t n = (t1 - first) * d.G;  // query rows, position-major: (i - first)·G + g
          const int64_t nv = (t1 - 1 + d.off + 1) / d.bs;  // blocks visible to the last row
          thread_local AlignedVector q_buf, s_buf, o_buf, score_buf;
          thread_local std::vector<int64_t> idx;
          thread_local std::vector<double> prob_d, score_d;
          thread_local std::vector<const float*> qp;
          Eigen::Map<MatrixR> Qt(grow(q_buf, n * d.Dk), n, d.Dk);
          for (int64_t i = first; i < t1; ++i) {
            for (int64_t g = 0; g < d.G; ++g) {
              Qt.row((i - first) * d.G + g) =
                  view(q + ((b * d.H + h0 + g) * d.Lq + i) * d.Dk, 1, d.Dk, d.Dk) * scale;
            }
          }
          Eigen::Map<MatrixR> P(grow(s_buf, n * std::max<int64_t>(nv, 1)), n, nv);
          Eigen::Map<MatrixR> Oc(grow(o_buf, n * d.Dv), n, d.Dv);
          float* score = grow(score_buf, std::max<int64_t>(nv, 1));
          if (nv > 0) P.noalias() = Qt * kmean.topRows(nv).transpose();
          for (int64_t i = first; i < t1; ++i) {
            const int64_t pos = i + d.off, visible = (pos + 1) / d.bs;
            std::fill(score, score + nv, 0.0f);
            float s_abs = 0, q_norm = 0;  // largest |scaled score| and |scale·q| of the group
            for (int64_t g = 0; g < d.G; ++g) {
              const int64_t rr = (i - first) * d.G + g;
              const int64_t row = (b * d.H + h0 + g) * d.Lq + i;
              if (visible == 0) {
                P.row(rr).setZero();
                lse_cmp.data()[row] = kNegInf;
                continue;
              }
              auto x = P.row(rr).head(visible).array();
              const float m = x.maxCoeff();
              s_abs = std::max({s_abs, std::fabs(m), std::fabs(x.minCoeff())});
              q_norm = std::max(q_norm, Qt.row(rr).norm());
              x = (x - m).exp();
              const float l = x.sum();
              x /= l;
              P.row(rr).tail(nv - visible).setZero();
              lse_cmp.data()[row] = m + std::log(l);
              for (int64_t cb = 0; cb < visible; ++cb) score[cb] += P(rr, cb);
            }
            for (int64_t cb = 0; cb < visible; ++cb) score[cb] /= float(d.G);
            // Relative error bound of a group score: an fp32 dot product of Dk terms errs by at
            // most Dk·u·|q||k̄| (u = 2^-24, Cauchy-Schwarz); it enters each probability through its
            // score and the row max (twice), a difference of two scores twice again; exp, the sum
            // and the lse add a few ulps of the exponents' size.
            const float tol =
                4.0f * float(d.Dk) * 6e-8f * q_norm * kmean_norm +
                4e-6f * (1.0f + s_abs + std::log(float(std::max<int64_t>(visible, 1))));
            qp.resize(static_cast<size_t>(d.G));
            for (int64_t g = 0; g < d.G; ++g) qp[g] = q + ((b * d.H + h0 + g) * d.Lq + i) * d.Dk;
            select_blocks(d, pos, score, tol, qp.data(), kmean_t, p.effective_scale(), idx, prob_d,
                          score_d, sel + i * d.S);
          }
          if (nv > 0) {
            Oc.noalias() = P * vmean.topRows(nv);
          } else {
            Oc.setZero();
          }
          // o = g_swa·o_swa (already in o) + g_cmp·o_cmp; the selected branch comes in step 6.
          for (int64_t i = first; i < t1; ++i) {
            for (int64_t g = 0; g < d.G; ++g) {
              const int64_t row = (b * d.H + h0 + g) * d.Lq + i;
              auto o = view(r.o.data() + row * d.Dv, 1, d.Dv, d.Dv);
              o = o * g_swa[row] + Oc.row((i - first) * d.G + g) * g_cmp[row];
            }
          }
        });

        // 4. Collect: chunk rows that chose each block as a complete past block (counting sort).
        const int64_t first = std::max(i0, -d.off);
        count.assign(static_cast<size_t>(d.nb) + 1, 0);
        for (int64_t i = first; i < i1; ++i) {
          const int64_t own = (i + d.off) / d.bs;
          for (int64_t s = 0; s < d.S && sel[i * d.S + s] >= 0; ++s) {
            if (sel[i * d.S + s] != own) ++count[sel[i * d.S + s]];
          }
        }
        start.assign(static_cast<size_t>(d.nb) + 1, 0);
        std::partial_sum(count.begin(), count.end() - 1, start.begin() + 1);
        members.resize(static_cast<size_t>(start[d.nb]));
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t i = first; i < i1; ++i) {
          const int64_t own = (i + d.off) / d.bs;
          for (int64_t s = 0; s < d.S && sel[i * d.S + s] >= 0; ++s) {
            if (sel[i * d.S + s] != own) members[fill[sel[i * d.S + s]]++] = int32_t(i);
          }
        }
        // Tasks {block, first member, end member}, or {block, -1 - first row, end row} for rows
        // whose own block it is (causal inside the block).
        tasks.clear();
        for (int64_t blk = 0; blk < d.nb; ++blk) {
          for (int64_t m0 = start[blk]; m0 < start[blk + 1]; m0 += tile_rows) {
            tasks.push_back({blk, m0, std::min(start[blk + 1], m0 + tile_rows)});
          }
          const int64_t a = std::max(first, blk * d.bs - d.off);
          const int64_t e = std::min(i1, std::min(d.Lk, (blk + 1) * d.bs) - d.off);
          for (int64_t x = a; x < e; x += tile_rows) {
            tasks.push_back({blk, -1 - x, std::min(e, x + tile_rows)});
          }
        }
        // 5. Densify: attention of each tile's gathered queries over one block's keys; the
        // normalized partial lands in the row's slot (the block's place in its selection).
        pool.parallel_for(int64_t(tasks.size()), c.threads, [&](int64_t t, int) {
          c.cancel.throw_if_cancelled();
          const auto [blk, m0, m1] = tasks[static_cast<size_t>(t)];
          const bool own_rows = m0 < 0;
          const int64_t j0 = blk * d.bs, j1 = std::min(d.Lk, j0 + d.bs), w = j1 - j0;
          thread_local std::vector<int64_t> rows;
          rows.clear();
          if (own_rows) {
            for (int64_t i = -1 - m0; i < m1; ++i) rows.push_back(i);
          } else {
            for (int64_t m = m0; m < m1; ++m) rows.push_back(members[m]);
          }
          const int64_t n = int64_t(rows.size()) * d.G;
          thread_local AlignedVector q_buf, s_buf, o_buf;
          Eigen::Map<MatrixR> Qg(grow(q_buf, n * d.Dk), n, d.Dk);
          Eigen::Map<MatrixR> Sm(grow(s_buf, n * w), n, w);
          Eigen::Map<MatrixR> O(grow(o_buf, n * d.Dv), n, d.Dv);
          for (size_t x = 0; x < rows.size(); ++x) {
            for (int64_t g = 0; g < d.G; ++g) {
              Qg.row(int64_t(x) * d.G + g) =
                  view(q + ((b * d.H + h0 + g) * d.Lq + rows[x]) * d.Dk, 1, d.Dk, d.Dk) * scale;
            }
          }
          Sm.noalias() = Qg * view(kb + j0 * d.Dk, w, d.Dk, d.Dk).transpose();
          for (int64_t rr = 0; rr < n; ++rr) {
            // Own block: keys j <= pos only (pos >= j0 here, so at least one key).
            const int64_t see = own_rows ? std::min(w, rows[rr / d.G] + d.off - j0 + 1) : w;
            auto x = Sm.row(rr).head(see).array();
            const float m = x.maxCoeff();
            x = (x - m).exp();
            const float l = x.sum();
            x /= l;
            if (see < w) Sm.row(rr).tail(w - see).setZero();
            const int64_t i = rows[rr / d.G], g = rr % d.G;
            const int64_t slot = slot_of(sel + i * d.S, d.S, blk);
            part_lse[static_cast<size_t>(((i - i0) * d.G + g) * slots + slot)] = m + std::log(l);
          }
          O.noalias() = Sm * view(vb + j0 * d.Dv, w, d.Dv, d.Dv);
          for (int64_t rr = 0; rr < n; ++rr) {
            const int64_t i = rows[rr / d.G], g = rr % d.G;
            const int64_t slot = slot_of(sel + i * d.S, d.S, blk);
            std::copy(O.data() + rr * d.Dv, O.data() + (rr + 1) * d.Dv,
                      part_o.data() + (((i - i0) * d.G + g) * slots + slot) * d.Dv);
          }
        });
        // 6. Merge each row's partials in ascending block order; o += g_slc·o_slc.
        pool.parallel_for((i1 - first + kRowTile - 1) / kRowTile, c.threads, [&](int64_t t, int) {
          thread_local std::vector<float> acc;
          acc.resize(static_cast<size_t>(d.Dv));
          for (int64_t i = first + t * kRowTile; i < std::min(i1, first + (t + 1) * kRowTile);
               ++i) {
            for (int64_t g = 0; g < d.G; ++g) {
              const int64_t row = (b * d.H + h0 + g) * d.Lq + i;
              const int64_t base = ((i - i0) * d.G + g) * slots;
              std::fill(acc.begin(), acc.end(), 0.0f);
              float l = kNegInf;
              for (int64_t s = 0; s < d.S && sel[i * d.S + s] >= 0; ++s) {
                merge_row(acc, l,
                          std::span<const float>(part_o.data() + (base + s) * d.Dv,
                                                 static_cast<size_t>(d.Dv)),
                          part_lse[static_cast<size_t>(base + s)]);
              }
              lse_slc.data()[row] = l;
              float* o = r.o.data() + row * d.Dv;
              for (int64_t e = 0; e < d.Dv; ++e) o[e] += g_slc[row] * acc[e];
            }
          }
        });
      }
      c.cancel.report(double(b * d.Hkv + kvh + 1) / double(d.B * d.Hkv));
    }
  }
  r.extra.emplace("lse_cmp", std::move(lse_cmp));
  r.extra.emplace("lse_slc", std::move(lse_slc));
  r.extra.emplace("lse_swa", std::move(lse_swa));
  r.extra_index.emplace("selection", std::move(selection));
  return r;
}

}  // namespace attnscope::cpu
