// Tiled online-softmax attention (FlashAttention, Dao et al. 2022, Algorithm 1) on Eigen GEMMs.
// A task owns (batch, kv head, query block, key split); its query rows stack the whole GQA group,
// so each K/V tile is loaded once for all G heads. Only tiles crossing a mask edge are masked.
#include "backends/cpu/flash.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "attnscope/merge.hpp"
#include "attnscope/parallel.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "backends/cpu/few_rows.hpp"
#include "backends/cpu/microkernel.hpp"
#include "backends/cpu/pyramid_pool.hpp"

namespace attnscope::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kKeyTile = 256;  // keys per tile: the S tile (<= 256 x 256 floats) fits L2
constexpr int64_t kMinTasks = 64;  // below this, split the key range (decode, few heads)
constexpr int64_t kMinSplitKeys = 512;
constexpr int64_t kFewRows = 16;  // at most this many stacked rows: unpacked products
// P V walks keys in chunks: a chunk of a packed 32-column V panel (16 KiB) plus the P columns it
// meets stay in the 48 KiB L1 for all row blocks (2-4 % over 256 keys at once, Run 7).
constexpr int64_t kPvChunk = 128;

// Per-thread scratch, grown on demand and reused across calls (no per-call big allocations).
struct Scratch {
  AlignedVector q, qt, s, o, m, l, alpha, colsum, part, vp;
};
thread_local Scratch tls;
thread_local PyramidPool tls_pool;

// Keys a block of query rows [i0, i1) may need: the sinks [0, sink_hi) and the band [lo, hi).
struct KeyRanges {
  int64_t sink_hi = 0, lo = 0, hi = 0;
};

KeyRanges key_ranges(const KeyMask& m, int64_t i0, int64_t i1, int64_t Lk) {
  if (!m.causal) return {0, 0, Lk};
  KeyRanges r;
  r.hi = std::clamp<int64_t>(i1 - 1 + m.offset + 1, 0, Lk);
  r.lo = m.window > 0 ? std::clamp<int64_t>(i0 + m.offset - m.window + 1, 0, r.hi) : 0;
  r.sink_hi = m.window > 0 ? std::min(m.sinks, r.lo) : 0;
  return r;
}

struct Plan {
  int64_t G, rows_per_head, q_blocks, splits;
};

Plan make_plan(const FlashArgs& a) {
  Plan p;
  p.G = a.H / a.Hkv;
  // About 256 stacked query rows per task: big enough GEMMs, small enough tiles.
  p.rows_per_head = std::clamp<int64_t>(256 / p.G, 16, 256);
  p.rows_per_head = std::min(p.rows_per_head, a.Lq);
  p.q_blocks = (a.Lq + p.rows_per_head - 1) / p.rows_per_head;
  const int64_t base = a.B * a.Hkv * p.q_blocks;
  // Depends on the shape only, never on the thread count, so results are thread-independent.
  p.splits = 1;
  if (base < kMinTasks) {
    p.splits = std::min((kMinTasks + base - 1) / base, std::max<int64_t>(1, a.Lk / kMinSplitKeys));
  }
  return p;
}

// The pyramid's cells: about `cells` per axis, a cell's rows dividing the task's rows (a task must
// own whole cell rows: it alone knows their lse at its end), coarser until it fits the budget.
std::shared_ptr<MapPyramid> make_pyramid(const FlashArgs& a, const Plan& plan) {
  const PyramidRequest& want = a.pyramid;
  if (want.cells <= 0 || plan.splits > 1 || a.Lq <= 0 || a.Lk <= 0) return nullptr;
  auto p = std::make_shared<MapPyramid>();
  p->batch = a.B, p->heads = a.H, p->q_len = a.Lq, p->kv_len = a.Lk;
  int64_t target_rows = (a.Lq + want.cells - 1) / want.cells;
  p->cell_cols = (a.Lk + want.cells - 1) / want.cells;
  for (;;) {
    p->cell_rows = 1;
    for (int64_t d = std::min(target_rows, plan.rows_per_head); d >= 1; --d) {
      if (plan.rows_per_head % d == 0) {
        p->cell_rows = d;
        break;
      }
    }
    p->rows = (a.Lq + p->cell_rows - 1) / p->cell_rows;
    p->cols = (a.Lk + p->cell_cols - 1) / p->cell_cols;
    const double bytes = 8.0 * double(a.B) * double(a.H) * double(p->rows) * double(p->cols);
    if (bytes <= double(want.max_bytes)) break;
    if (p->cell_cols >= a.Lk && target_rows >= a.Lq) return nullptr;  // not even one cell fits
    p->cell_cols = std::min(a.Lk, p->cell_cols * 2);
    target_rows = std::min(a.Lq, target_rows * 2);
  }
  const size_t n = static_cast<size_t>(a.B * a.H * p->rows * p->cols);
  p->max.assign(n, 0.0f);
  p->sum.assign(n, 0.0f);
  return p;
}

// One task: rows of query block qb of kv head kvh (all G heads), keys of split `split`.
// Writes normalized o and lse for its rows to (o_out, lse_out) with row r at r * o_ld.
void run_task(const FlashArgs& a, const Plan& plan, int64_t b, int64_t kvh, int64_t qb,
              int64_t split, float* o_out, float* lse_out, bool direct, MapPyramid* pyramid) {
  const int64_t i0 = qb * plan.rows_per_head, i1 = std::min(a.Lq, i0 + plan.rows_per_head);
  const int64_t nr = i1 - i0, R = plan.G * nr;
  const int64_t q_ld = a.q_ld ? a.q_ld : a.Dk, k_ld = a.k_ld ? a.k_ld : a.Dk;
  const int64_t v_ld = a.v_ld ? a.v_ld : a.Dv;
  const int64_t k_hs = a.k_head_stride ? a.k_head_stride : a.Lk * k_ld;
  const int64_t v_hs = a.v_head_stride ? a.v_head_stride : a.Lk * v_ld;
  const float* kb = a.k + (b * a.Hkv + kvh) * k_hs;
  const float* vb = a.v + (b * a.Hkv + kvh) * v_hs;

  // Stacked, pre-scaled queries of the group: row g * nr + (i - i0).
  Eigen::Map<MatrixR> Q(grow(tls.q, R * a.Dk), R, a.Dk);
  for (int64_t g = 0; g < plan.G; ++g) {
    const int64_t h = kvh * plan.G + g;
    Q.middleRows(g * nr, nr) =
        view(a.q + ((b * a.H + h) * a.Lq + i0) * q_ld, nr, a.Dk, q_ld) * a.scale;
  }
  Eigen::Map<MatrixR> O(grow(tls.o, R * a.Dv), R, a.Dv);
  Eigen::Map<VectorF> m(grow(tls.m, R), R), l(grow(tls.l, R), R);
  Eigen::Map<VectorF> alpha(grow(tls.alpha, R), R);
  O.setZero();
  m.setConstant(kNegInf);
  l.setZero();
  float* sbuf = grow(tls.s, R * kKeyTile);
  PyramidPool& pool = tls_pool;
  if (pyramid) pool.begin(*pyramid, R);

  const KeyMask& mask = a.mask;
  int64_t sweep_end = 0;  // the key range being swept ends here: K/V rows up to it are read next
  const int64_t p_lo = i0 + mask.offset, p_hi = i1 - 1 + mask.offset;
  auto tile = [&](int64_t j0, int64_t j1) {
    const int64_t n = j1 - j0;
    Eigen::Map<MatrixR> S(sbuf, R, n);
    // Few rows (decode): a packed GEMM would copy the whole K/V tile to compute a handful of
    // rows, so stream the tile once with row dots and row axpys instead.
    const bool few_rows = R <= kFewRows;
    if (few_rows) {
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
      few_rows_dots(Q.data(), a.Dk, R, kb + j0 * k_ld, k_ld, n, a.Dk, sbuf, n,
                    Readahead{sweep_end - j0});
#else
      for (int64_t c = 0; c < n; ++c) {  // each key row loaded once, dotted with every query row
        const Eigen::Map<const Eigen::RowVectorXf> kj(kb + (j0 + c) * k_ld, a.Dk);
        for (int64_t r = 0; r < R; ++r) S(r, c) = Q.row(r).dot(kj);
      }
#endif
    } else {
      S.noalias() = Q * view(kb + j0 * k_ld, n, a.Dk, k_ld).transpose();
    }
    const bool full =
        !mask.causal ||
        (j1 - 1 <= p_lo && (mask.window <= 0 || j0 > p_hi - mask.window || j1 <= mask.sinks));
    if (!full) {
      for (int64_t r = 0; r < R; ++r) {
        const int64_t i = i0 + r % nr;
        float* row = sbuf + r * n;
        for (int64_t c = 0; c < n; ++c) {
          if (!mask.visible(i, j0 + c)) row[c] = kNegInf;
        }
      }
    }
    // Online softmax: rescale what was accumulated by exp(m_old - m_new).
    for (int64_t r = 0; r < R; ++r) {
      float mx = m[r];
      if (pyramid) {  // the row's maximum cell by cell, each cell's part kept for the map
        for (int64_t j = j0; j < j1;) {
          const int64_t cell = pool.cell_of(j), e = std::min(j1, pool.cell_end(cell));
          const float t = S.row(r).segment(j - j0, e - j).maxCoeff();
          pool.merge_max(cell, r, t);
          mx = std::max(mx, t);
          j = e;
        }
      } else {
        mx = std::max(mx, S.row(r).maxCoeff());
      }
      if (mx == kNegInf) {  // nothing visible yet in this row: keep zeros, avoid -inf - -inf
        alpha[r] = 1.0f;
        S.row(r).setZero();
        continue;
      }
      alpha[r] = std::exp(m[r] - mx);
      S.row(r) = (S.row(r).array() - mx).exp().matrix();
      m[r] = mx;
      if (pyramid) {
        for (int64_t j = j0; j < j1;) {
          const int64_t cell = pool.cell_of(j), e = std::min(j1, pool.cell_end(cell));
          pool.merge_sum(cell, r, S.row(r).segment(j - j0, e - j).sum(), mx);
          j = e;
        }
      }
    }
    l = l.cwiseProduct(alpha) + S.rowwise().sum();
    O = alpha.asDiagonal() * O;
    if (few_rows) {
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
      few_rows_pv(sbuf, n, R, vb + j0 * v_ld, v_ld, n, a.Dv, O.data(), a.Dv,
                  Readahead{sweep_end - j0});
#else
      for (int64_t c = 0; c < n; ++c) {  // each value row loaded once, axpy into every output row
        const Eigen::Map<const Eigen::RowVectorXf> vj(vb + (j0 + c) * v_ld, a.Dv);
        for (int64_t r = 0; r < R; ++r) O.row(r).noalias() += S(r, c) * vj;
      }
#endif
    } else {
      O.noalias() += S * view(vb + j0 * v_ld, n, a.Dv, v_ld);
    }
  };

#ifdef ATTNSCOPE_HAVE_MICROKERNEL
  // Many rows on AVX-512: the register-blocked kernel computes Sᵀ = K Qᵀ straight from K's rows
  // (only Q is packed, once per task) and O += P V from Sᵀ; the softmax runs down Sᵀ's columns,
  // vectorized across query rows. Same math and masking as tile() above.
  const bool use_microkernel = R > kFewRows;
  // Qᵀ and Sᵀ rows are padded by one cache line: at a stride of R = 256 floats (1 KiB) the
  // kernels' column walks touch only 4 of the L1's 64 sets and evict each other.
  const int64_t ld = (R + 15) / 16 * 16 + 16;
  float* qt = nullptr;
  if (use_microkernel) {
    qt = grow(tls.qt, a.Dk * ld);
    Eigen::Map<MatrixR, 0, Eigen::OuterStride<>>(qt, a.Dk, R, Eigen::OuterStride<>(ld)) =
        Q.transpose();
    sbuf = grow(tls.s, kKeyTile * ld);
  }
  Eigen::Map<Eigen::RowVectorXf> m_row(m.data(), R), l_row(l.data(), R), a_row(alpha.data(), R);
  Eigen::Map<Eigen::RowVectorXf> colsum(grow(tls.colsum, R), R);
  auto tile_transposed = [&](int64_t j0, int64_t j1) {
    const int64_t n = j1 - j0;
    Eigen::Map<MatrixR, 0, Eigen::OuterStride<>> St(sbuf, n, R, Eigen::OuterStride<>(ld));
    gemm_strided<false>(kb + j0 * k_ld, k_ld, 1, qt, ld, sbuf, ld, n, R, a.Dk);
    const bool full =
        !mask.causal ||
        (j1 - 1 <= p_lo && (mask.window <= 0 || j0 > p_hi - mask.window || j1 <= mask.sinks));
    if (!full) {
      // Key j is visible to a contiguous run of query rows: i >= j - offset, and within the
      // window i <= j - offset + window - 1 (unless j is a sink). Each group's rows outside that
      // run are filled, instead of testing every (row, key) pair.
      for (int64_t c = 0; c < n; ++c) {
        float* row = sbuf + c * ld;
        const int64_t j = j0 + c;
        const int64_t first = std::clamp<int64_t>(j - mask.offset - i0, 0, nr);
        const int64_t end = mask.window > 0 && j >= mask.sinks
                                ? std::clamp<int64_t>(j - mask.offset + mask.window - i0, first, nr)
                                : nr;
        for (int64_t g = 0; g < plan.G; ++g) {
          std::fill(row + g * nr, row + g * nr + first, kNegInf);
          std::fill(row + g * nr + end, row + (g + 1) * nr, kNegInf);
        }
      }
    }
    colsum = m_row;  // running column max, starting from the previous max
    if (pyramid) {   // the same maxima cell by cell, each cell's kept for the map
      for (int64_t j = j0; j < j1;) {
        const int64_t cell = pool.cell_of(j), e = std::min(j1, pool.cell_end(cell));
        PyramidPool::Row smax = pool.smax(cell);
        for (int64_t c = j - j0; c < e - j0; ++c) smax = smax.max(St.row(c).array());
        colsum = colsum.cwiseMax(smax.matrix());  // smax holds earlier tiles too: all <= m_row
        j = e;
      }
    } else {
      for (int64_t c = 0; c < n; ++c) colsum = colsum.cwiseMax(St.row(c));
    }
    for (int64_t r = 0; r < R; ++r) {
      const float mx = colsum[r];
      a_row[r] = mx == kNegInf ? 1.0f : std::exp(m_row[r] - mx);  // -inf - -inf never computed
      m_row[r] = mx;
      colsum[r] = mx == kNegInf ? 0.0f : mx;  // subtracting 0 from an all -inf column keeps 0s
    }
    for (int64_t c = 0; c < n; ++c) St.row(c) = (St.row(c) - colsum).array().exp().matrix();
    colsum.setZero();
    if (pyramid) {
      Eigen::Map<Eigen::RowVectorXf> part(grow(tls.part, R), R);
      for (int64_t j = j0; j < j1;) {
        const int64_t cell = pool.cell_of(j), e = std::min(j1, pool.cell_end(cell));
        part.setZero();
        for (int64_t c = j - j0; c < e - j0; ++c) {
          colsum += St.row(c);  // l in the same order as without the pyramid: the same bits
          part += St.row(c);
        }
        pool.merge_sums(cell, part.data(), m_row.data());
        j = e;
      }
    } else {
      for (int64_t c = 0; c < n; ++c) colsum += St.row(c);
    }
    l_row = l_row.cwiseProduct(a_row) + colsum;
    O = alpha.asDiagonal() * O;
    float* vp = grow(tls.vp, (a.Dv + 31) / 32 * 32 * n);
    pack_b_panels(vb + j0 * v_ld, v_ld, n, a.Dv, vp);
    gemm_packed_b(sbuf, 1, ld, vp, O.data(), a.Dv, R, a.Dv, n, kPvChunk);
  };
#endif

  const KeyRanges kr = key_ranges(mask, i0, i1, a.Lk);
  auto sweep = [&](int64_t lo, int64_t hi) {
    sweep_end = hi;
    for (int64_t j0 = lo; j0 < hi; j0 += kKeyTile) {
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
      if (use_microkernel) {
        tile_transposed(j0, std::min(hi, j0 + kKeyTile));
        continue;
      }
#endif
      tile(j0, std::min(hi, j0 + kKeyTile));
    }
  };
  // The band [lo, hi) is cut into plan.splits equal, tile-aligned parts; sinks go with split 0.
  const int64_t band = kr.hi - kr.lo;
  const int64_t per = ((band + plan.splits - 1) / plan.splits + kKeyTile - 1) / kKeyTile * kKeyTile;
  if (split == 0) sweep(0, kr.sink_hi);
  sweep(std::min(kr.hi, kr.lo + split * per), std::min(kr.hi, kr.lo + (split + 1) * per));

  // Normalize and write out; rows that saw nothing give o = 0, lse = -inf.
  for (int64_t r = 0; r < R; ++r) {
    const int64_t g = r / nr, i = i0 + r % nr, h = kvh * plan.G + g;
    const int64_t row = direct ? (b * a.H + h) * a.Lq + i : r;
    float* orow = o_out + row * a.Dv;
    if (l[r] > 0) {
      Eigen::Map<Eigen::RowVectorXf>(orow, a.Dv) = O.row(r) / l[r];
      lse_out[row] = m[r] + std::log(l[r]);
    } else {
      std::fill(orow, orow + a.Dv, 0.0f);
      lse_out[row] = kNegInf;
    }
  }
  if (pyramid) {
    // The rows' final lse, stacked like the task's rows.
    float* lse_rows = grow(tls.part, R);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t g = r / nr, i = i0 + r % nr, h = kvh * plan.G + g;
      lse_rows[r] = lse_out[direct ? (b * a.H + h) * a.Lq + i : r];
    }
    pool.finish(*pyramid, b, kvh, plan.G, i0, nr, lse_rows);
  }
}

}  // namespace

std::shared_ptr<const MapPyramid> flash_attention(const FlashArgs& a, const CancelToken& cancel) {
  const Plan plan = make_plan(a);
  const std::shared_ptr<MapPyramid> pyramid = make_pyramid(a, plan);
  const int64_t base = a.B * a.Hkv * plan.q_blocks;
  const int64_t tasks = base * plan.splits;
  // Heaviest query blocks first (causal: the last block sees the most keys) for load balance.
  auto decode = [&](int64_t t, int64_t& b, int64_t& kvh, int64_t& qb, int64_t& split) {
    split = t % plan.splits;
    t /= plan.splits;
    kvh = t % a.Hkv;
    t /= a.Hkv;
    b = t % a.B;
    qb = plan.q_blocks - 1 - t / a.B;
  };
  const int64_t R = plan.G * plan.rows_per_head;
  std::vector<float> part_o, part_lse;  // split partials, [tasks, R, Dv] and [tasks, R]
  if (plan.splits > 1) {
    part_o.resize(static_cast<size_t>(tasks * R * a.Dv));
    part_lse.resize(static_cast<size_t>(tasks * R));
  }
  std::atomic<int64_t> done{0};
  ThreadPool::global().parallel_for(tasks, a.threads, [&](int64_t t, int worker) {
    cancel.throw_if_cancelled();
    int64_t b, kvh, qb, split;
    decode(t, b, kvh, qb, split);
    if (plan.splits == 1) {
      run_task(a, plan, b, kvh, qb, 0, a.o, a.lse, true, pyramid.get());
    } else {
      run_task(a, plan, b, kvh, qb, split, part_o.data() + t * R * a.Dv, part_lse.data() + t * R,
               false, nullptr);
    }
    const int64_t finished = done.fetch_add(1) + 1;
    if (worker == 0) cancel.report(double(finished) / double(tasks));
  });
  if (plan.splits == 1) return pyramid;

  // Merge the key splits of every (batch, kv head, query block) by log-sum-exp, in split order.
  ThreadPool::global().parallel_for(base, a.threads, [&](int64_t u, int) {
    int64_t b, kvh, qb, split;
    decode(u * plan.splits, b, kvh, qb, split);
    const int64_t i0 = qb * plan.rows_per_head, nr = std::min(a.Lq, i0 + plan.rows_per_head) - i0;
    for (int64_t r = 0; r < plan.G * nr; ++r) {
      const int64_t h = kvh * plan.G + r / nr, i = i0 + r % nr;
      const int64_t row = (b * a.H + h) * a.Lq + i;
      std::span<float> o(a.o + row * a.Dv, static_cast<size_t>(a.Dv));
      float& lse = a.lse[row];
      std::fill(o.begin(), o.end(), 0.0f);
      lse = kNegInf;
      for (int64_t s = 0; s < plan.splits; ++s) {
        const int64_t t = u * plan.splits + s;
        merge_row(
            o, lse,
            std::span<const float>(part_o.data() + (t * R + r) * a.Dv, static_cast<size_t>(a.Dv)),
            part_lse[static_cast<size_t>(t * R + r)]);
      }
    }
  });
  return nullptr;
}

}  // namespace attnscope::cpu
