// The CPU backend's decode through the paged KV cache: for each sequence, the query heads that
// share a kv head walk the visible token ranges page by page with an online softmax; long contexts
// are split across threads and merged by log-sum-exp. A variant with a selection routes each head
// (VariantInfo::route); a latent or state cache brings its own step (VariantInfo::cpu_decode, in
// its module), built on run_units where it pages.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/kv_cache.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/merge.hpp"
#include "attnscope/parallel.hpp"
#include "attnscope/variant.hpp"
#include "backends/cpu/eigen_types.hpp"
#include "backends/cpu/few_rows.hpp"
#include "backends/cpu/paged_decode.hpp"

namespace attnscope::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kSmallGroup = 16;  // query rows per unit below which pages skip the GEMM path
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using CMap = Eigen::Map<const RowMat, 0, Stride>;

int64_t range_tokens(const std::vector<Range>& r) {
  int64_t n = 0;
  for (const Range& x : r) n += x.j1 - x.j0;
  return n;
}

// Tokens [skip, skip + count) of the concatenated ranges.
std::vector<Range> sub_ranges(const std::vector<Range>& r, int64_t skip, int64_t count) {
  std::vector<Range> out;
  for (const Range& x : r) {
    const int64_t n = x.j1 - x.j0;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    const int64_t take = std::min(n - skip, count);
    if (take <= 0) break;
    out.push_back({x.j0 + skip, x.j0 + skip + take});
    count -= take;
    skip = 0;
  }
  return out;
}

struct Scratch {
  AlignedVector s, m, l;
};

// Online softmax over `ranges`. Tokens are taken in tiles of up to kTile (several pages): scores
// are computed page segment by page segment into one S tile, the softmax update (vectorized exp,
// one rescale of O) runs once per tile, then P·V again per segment. Writes the normalized o [G, dv]
// and lse [G] of this part (lse = -inf and o = 0 where nothing was visible).
void attend(const PagedKvCache& cache, const Unit& u, const std::vector<Range>& ranges, float scale,
            float* o, int64_t o_ld, float* lse, int64_t lse_ld, Scratch& sc) {
  constexpr int64_t kTile = 256;
  const int64_t G = u.G, dv = u.layout.dv, ps = cache.page_size();
  const PageLayout& L = u.layout;
  float* m = grow(sc.m, G);
  float* l = grow(sc.l, G);
  float* sbuf = grow(sc.s, G * kTile);
  std::fill(m, m + G, kNegInf);
  std::fill(l, l + G, 0.0f);
  for (int64_t g = 0; g < G; ++g) std::fill(o + g * o_ld, o + g * o_ld + dv, 0.0f);
  Eigen::Map<RowMat, 0, Stride> O(o, G, dv, Stride(o_ld));

  struct Segment {
    const float* k[2];  // first visible row of each key part
    const float* v;     // first visible value row
    int64_t n, col;
  };
  std::vector<Segment> segs;
  auto flush = [&](int64_t cols) {
    if (cols == 0) return;
    Eigen::Map<RowMat, 0, Stride> S(sbuf, G, cols, Stride(cols));
    for (const Segment& sg : segs) {
      if (G <= kSmallGroup) {
        // A GQA group is a handful of rows: each key row is loaded once and dotted with every
        // query row; a GEMM per 16-token page would cost more in dispatch than in arithmetic.
        // Rows are prefetched within a segment only: the next one may lie anywhere (with pages in
        // order, prefetching on into the next segment measured no faster).
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
        for (int p = 0; p < L.parts; ++p) {
          const float* q = u.q + L.q_off[p];
          if (p == 0) {
            few_rows_dots<false>(q, u.q_ld, G, sg.k[p], L.width[p], sg.n, L.width[p], sbuf + sg.col,
                                 cols, Readahead{sg.n});
          } else {
            few_rows_dots<true>(q, u.q_ld, G, sg.k[p], L.width[p], sg.n, L.width[p], sbuf + sg.col,
                                cols, Readahead{sg.n});
          }
        }
#else
        for (int64_t t = 0; t < sg.n; ++t) {
          for (int64_t g = 0; g < G; ++g) {
            float acc = 0;
            for (int p = 0; p < L.parts; ++p) {
              const int64_t w = L.width[p];
              acc += Eigen::Map<const Eigen::VectorXf>(u.q + g * u.q_ld + L.q_off[p], w)
                         .dot(Eigen::Map<const Eigen::VectorXf>(sg.k[p] + t * w, w));
            }
            S(g, sg.col + t) = acc;
          }
        }
#endif
      } else {
        for (int p = 0; p < L.parts; ++p) {
          const CMap Q(u.q + L.q_off[p], G, L.width[p], Stride(u.q_ld));
          const CMap K(sg.k[p], sg.n, L.width[p], Stride(L.width[p]));
          if (p == 0) {
            S.middleCols(sg.col, sg.n).noalias() = Q * K.transpose();
          } else {
            S.middleCols(sg.col, sg.n).noalias() += Q * K.transpose();
          }
        }
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      auto row = S.row(g).array();
      row *= scale;
      const float mx = std::max(m[g], row.maxCoeff());
      const float corr = std::exp(m[g] - mx);  // m = -inf on the first tile: corr = 0
      row = (row - mx).exp();
      l[g] = l[g] * corr + row.sum();
      m[g] = mx;
      if (corr != 1.0f) O.row(g) *= corr;
    }
    for (const Segment& sg : segs) {
      const float* vbase = sg.v;
      if (G <= kSmallGroup) {
#ifdef ATTNSCOPE_HAVE_MICROKERNEL
        few_rows_pv(sbuf + sg.col, cols, G, vbase, dv, sg.n, dv, o, o_ld, Readahead{sg.n});
#else
        for (int64_t t = 0; t < sg.n; ++t) {
          const Eigen::Map<const Eigen::RowVectorXf> vrow(vbase + t * dv, dv);
          for (int64_t g = 0; g < G; ++g) O.row(g).noalias() += S(g, sg.col + t) * vrow;
        }
#endif
      } else {
        O.noalias() += S.middleCols(sg.col, sg.n) * CMap(vbase, sg.n, dv, Stride(dv));
      }
    }
    segs.clear();
  };

  int64_t cols = 0;
  for (const Range& r : ranges) {
    for (int64_t j = r.j0; j < r.j1;) {
      const int64_t lp = j / ps, slot = j % ps;
      const int64_t n = std::min({r.j1 - j, ps - slot, kTile - cols});
      const int32_t phys = u.pages[size_t(lp)];
      if (phys < 0) throw Error("paged decode: a visible token's page was evicted (cache bug)");
      Segment sg{};
      for (int p = 0; p < L.parts; ++p) {
        sg.k[p] = cache.rows(phys, L.k_part[p], L.head) + slot * L.width[p];
      }
      sg.v = cache.rows(phys, L.v_part, L.head) + slot * dv;
      sg.n = n;
      sg.col = cols;
      // The cache stores a head's rows of consecutive physical pages back to back, so a sequence
      // whose pages were taken in order reads as one long run: extend the previous segment.
      bool joined = false;
      if (!segs.empty()) {
        Segment& last = segs.back();
        joined = last.v + last.n * dv == sg.v;
        for (int p = 0; p < L.parts; ++p)
          joined = joined && last.k[p] + last.n * L.width[p] == sg.k[p];
        if (joined) last.n += n;
      }
      if (!joined) segs.push_back(sg);
      cols += n;
      j += n;
      if (cols == kTile) {
        flush(cols);
        cols = 0;
      }
    }
  }
  flush(cols);
  for (int64_t g = 0; g < G; ++g) {
    if (l[g] > 0) {
      O.row(g) /= l[g];
      lse[g * lse_ld] = m[g] + std::log(l[g]);
    } else {
      lse[g * lse_ld] = kNegInf;
    }
  }
}

}  // namespace

// Runs every unit, splitting long ones across threads (FlashDecoding): each split writes a partial
// (o, lse) and the splits merge by log-sum-exp, so the result does not depend on the split count.
void run_units(const PagedKvCache& cache, std::vector<Unit>& units, float scale, int threads,
               const CancelToken& cancel) {
  constexpr int64_t kMinSplitTokens = 512;
  int64_t max_tokens = 0;
  for (const Unit& u : units) max_tokens = std::max(max_tokens, range_tokens(u.ranges));
  const int64_t want = std::max<int64_t>(
      1, (4 * threads + int64_t(units.size()) - 1) / std::max<int64_t>(1, int64_t(units.size())));
  const int64_t splits =
      std::clamp<int64_t>(want, 1, std::max<int64_t>(1, max_tokens / kMinSplitTokens));

  struct Part {
    std::vector<float> o, lse;
  };
  std::vector<Part> parts(units.size() * size_t(splits));
  ThreadPool::global().parallel_for(
      int64_t(units.size()) * splits, threads, [&](int64_t task, int) {
        cancel.throw_if_cancelled();
        const Unit& u = units[size_t(task / splits)];
        const int64_t split = task % splits;
        const int64_t total = range_tokens(u.ranges);
        const int64_t lo = total * split / splits, hi = total * (split + 1) / splits;
        const std::vector<Range> mine = sub_ranges(u.ranges, lo, hi - lo);
        // Per pool thread and kept across steps: a decode loop allocates no scratch per step.
        thread_local Scratch sc;
        if (splits == 1) {
          attend(cache, u, mine, scale, u.o, u.o_ld, u.lse, u.lse_ld, sc);
          return;
        }
        Part& p = parts[size_t(task)];
        p.o.assign(size_t(u.G * u.layout.dv), 0.0f);
        p.lse.assign(size_t(u.G), kNegInf);
        attend(cache, u, mine, scale, p.o.data(), u.layout.dv, p.lse.data(), 1, sc);
      });
  if (splits == 1) return;
  for (size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    const int64_t dv = u.layout.dv;
    for (int64_t g = 0; g < u.G; ++g) {
      float* o = u.o + g * u.o_ld;
      float& lse = u.lse[g * u.lse_ld];
      std::fill(o, o + dv, 0.0f);
      lse = kNegInf;
      for (int64_t s = 0; s < splits; ++s) {
        const Part& p = parts[i * size_t(splits) + size_t(s)];
        merge_row({o, size_t(dv)}, lse, {p.o.data() + g * dv, size_t(dv)}, p.lse[size_t(g)]);
      }
    }
  }
}

namespace {

// Keys a decode query at position L - 1 sees under the variant's mask (a selection routes per
// head and is handled apart).
std::vector<Range> visible_ranges(const AttentionProblem& p, int64_t L) {
  const KeyMask m = KeyMask::of(p);
  if (m.window <= 0) return {{0, L}};
  const int64_t sinks = std::min(m.sinks, L);
  const int64_t from = std::max(sinks, L - m.window);
  std::vector<Range> r;
  if (sinks > 0) r.push_back({0, sinks});
  if (from < L) r.push_back({from, L});
  return r;
}

PageLayout dense_layout(const AttentionProblem& p, int64_t g) {
  const ProblemShape& s = p.shape;
  PageLayout L;
  L.width[0] = s.head_dim;
  L.head = g;
  L.dv = s.v_head_dim;
  return L;
}

RunResult decode_softmax(const PagedKvCache& cache, const DecodeStep& step, int threads,
                         const CancelToken& cancel) {
  const AttentionProblem& p = cache.problem();
  const ProblemShape& s = p.shape;
  const int64_t B = int64_t(step.sequences.size()), H = s.heads, Hkv = s.kv_heads;
  const int64_t G = H / Hkv, Dk = s.head_dim, Dv = s.v_head_dim;
  const float scale = float(p.effective_scale());
  const float* q = step.inputs.at("q").data();  // [B, H, 1, Dk]
  RunResult r;
  r.o = Tensor({B, H, 1, Dv});
  r.lse = Tensor({B, H, 1});
  std::vector<Unit> units;
  const VariantInfo& info = variant_info(p.variant);
  if (info.has_selection()) {
    const BlockSelection selection = info.selection(p);
    const int64_t top_k = selection.top_k, bs = selection.block_size;
    IndexTensor sel({B, H, 1, top_k}, -1);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t seq = step.sequences[size_t(b)];
      const int64_t L = cache.length(seq);
      const auto pages = cache.page_table(seq);
      const auto means = cache.block_means(seq);
      for (int64_t h = 0; h < H; ++h) {
        const float* qh = q + (b * H + h) * Dk;
        const std::vector<int64_t> blocks = info.route(cache, p, pages, means, qh, h / G, L);
        Unit u;
        u.q = qh;
        u.G = 1;
        u.q_ld = Dk;
        u.layout = dense_layout(p, h / G);
        u.pages = pages;
        for (size_t i = 0; i < blocks.size(); ++i) {
          sel.data()[(b * H + h) * top_k + int64_t(i)] = int32_t(blocks[i]);
          u.ranges.push_back({blocks[i] * bs, std::min(L, (blocks[i] + 1) * bs)});
        }
        u.o = r.o.data() + (b * H + h) * Dv;
        u.o_ld = Dv;
        u.lse = r.lse.data() + b * H + h;
        units.push_back(std::move(u));
      }
    }
    r.selection = std::move(sel);
  } else {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t seq = step.sequences[size_t(b)];
      const std::vector<Range> ranges = visible_ranges(p, cache.length(seq));
      for (int64_t g = 0; g < Hkv; ++g) {
        Unit u;
        u.q = q + (b * H + g * G) * Dk;
        u.G = G;
        u.q_ld = Dk;
        u.layout = dense_layout(p, g);
        u.pages = cache.page_table(seq);
        u.ranges = ranges;
        u.o = r.o.data() + (b * H + g * G) * Dv;
        u.o_ld = Dv;
        u.lse = r.lse.data() + b * H + g * G;
        units.push_back(std::move(u));
      }
    }
  }
  run_units(cache, units, scale, threads, cancel);
  return r;
}

}  // namespace

RunResult decode_paged(PagedKvCache& cache, const DecodeStep& step, int threads,
                       const CancelToken& cancel) {
  if (auto own = variant_info(cache.variant()).cpu_decode) return own(cache, step, threads, cancel);
  return decode_softmax(cache, step, threads, cancel);
}

}  // namespace attnscope::cpu
