// The selection view for DSA: the lightning indexer's scores next to the dense MLA attention it
// stands in for, the selected keys over it, and recall and top-k overlap, at the run's top_k and as
// curves over every top_k. Everything is the engine's: index scores are index_score_tile, dense
// masses attention_tile of a real dense run, the selection the run's own.
#include <QObject>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "analyses.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::gui {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// What one analysis may compute before it samples query rows instead of taking all: dense
// attention entries (head, query, key) and indexer multiply-adds (query, key, index head, dim).
constexpr int64_t kDenseBudget = int64_t(48) << 20;
constexpr int64_t kIndexBudget = int64_t(8) << 30;
constexpr int64_t kBandRows = 32;  // query rows per index_score_tile call where rows run together
// The dense attention row of query i (batch 0) for one head, or the mean over all heads.
void denseRow(const AttentionProblem& p, const Inputs& in, const RunResult& run, int64_t head,
              int64_t i, std::vector<float>& row, std::vector<float>& tmp) {
  const int64_t lk = p.shape.kv_len;
  row.assign(static_cast<size_t>(lk), 0.0f);
  if (head >= 0) {
    attention_tile(p, in, run, 0, head, i, i + 1, 0, lk, row.data());
    return;
  }
  tmp.resize(static_cast<size_t>(lk));
  for (int64_t h = 0; h < p.shape.heads; ++h) {
    attention_tile(p, in, run, 0, h, i, i + 1, 0, lk, tmp.data());
    for (int64_t j = 0; j < lk; ++j) row[size_t(j)] += tmp[size_t(j)];
  }
  for (float& x : row) x /= float(p.shape.heads);
}

// Pools [rows x lk] row-major values (NaN: masked) into the probe's uniform bins over the
// columns; each output row is one input row.
void poolColumns(const float* rowValues, int64_t lk, int cols, float* out) {
  for (int c = 0; c < cols; ++c) {
    const int64_t a = (int64_t(c) * lk + cols - 1) / cols;
    const int64_t e = (int64_t(c + 1) * lk + cols - 1) / cols;
    float m = kNaN;
    for (int64_t j = a; j < e; ++j) {
      if (!std::isnan(rowValues[j])) m = std::isnan(m) ? rowValues[j] : std::max(m, rowValues[j]);
    }
    out[c] = m;
  }
}

}  // namespace

void analyzeIndexerSelection(const AnalysisContext& ctx, ViewResult& out) {
  const AttentionProblem& w = ctx.problem;
  const int64_t lq = w.shape.q_len, lk = w.shape.kv_len;
  // The slider's top_k runs the variant again on the same inputs; the workload's is its own run.
  AttentionProblem p = w;
  if (ctx.request.topK > 0) p.dsa.top_k = std::clamp<int64_t>(ctx.request.topK, 1, lk);
  std::shared_ptr<const RunResult> own;
  if (p.dsa.top_k != w.dsa.top_k) {
    ctx.phase(QObject::tr("DSA at top-%1").arg(p.dsa.top_k), 0.0, 0.2);
    own = ctx.runProblem(p, ctx.inputsPtr, false);
  }
  const RunResult& run = own ? *own : ctx.run;
  const int64_t K = p.dsa.top_k;  // the selection's stride; a query keeps at most lk keys
  out.keyTopK = std::min(K, lk);
  const IndexTensor& sel = run.extra_index.at("selection");  // [B, Lq, top_k]
  const bool allHeads = ctx.request.headMode != HeadMode::single;
  const int64_t h = allHeads ? -1 : clampHead(ctx.request.head, p);

  // 1. Dense MLA on the same latent: the attention DSA stands in for (from the workload's problem,
  // so a slider's top_k does not make it another run).
  AttentionProblem dense = w;
  dense.variant = *variant_info(p.variant).sparse_of;
  dense.causal = true;
  normalize_shape(dense);
  // On the workload's own inputs (the counterpart reads its subset of them), so the worker's run
  // cache finds this run again for the next head or top_k.
  const InputsPtr& denseInPtr = ctx.inputsPtr;
  const VariantInfo& counterpart = variant_info(dense.variant);
  const QString denseTitle = QObject::tr("dense %1")
                                 .arg(QString::fromUtf8(counterpart.short_title.data(),
                                                        qsizetype(counterpart.short_title.size())));
  ctx.phase(denseTitle, 0.2, 0.45);
  const auto denseRun = ctx.runProblem(dense, denseInPtr, true);

  // 2. The two maps on the probe's bins: the indexer's scores (one set for all heads) and MLA's.
  ctx.phase(QObject::tr("index scores"), 0.45, 0.6);
  ViewRequest r = ctx.request;
  r.region = {};
  MapImage attention = computeMap(ctx.backend, dense, *denseInPtr, *denseRun, r, ctx.cancel,
                                  Pool::max, MapDetail::probeOnly);
  attention.title = allHeads
                        ? QObject::tr("%1, mean of %2 heads").arg(denseTitle).arg(p.shape.heads)
                        : QObject::tr("%1, head %2").arg(denseTitle).arg(h);
  MapImage index;
  index.cols = std::min<int>(r.outCols, int(lk));
  index.region = {0, lq, 0, lk};
  index.pool = Pool::max;
  index.title = QObject::tr("indexer scores I (one set for all heads)");
  // Every row when the map is small enough, else one row per output bin (sampled).
  const int64_t rowsOut = std::min<int64_t>(r.outRows, lq);
  const int64_t indexWork = p.dsa.index_heads * p.dsa.index_head_dim;
  const bool everyRow = lq * lk / 2 <= kIndexBudget / indexWork;
  index.rows = int(rowsOut);
  index.sampled = !everyRow;
  if (!everyRow) {
    for (int64_t x = 0; x <= rowsOut; ++x) index.rowEdges.push_back(x * lq / rowsOut);
    for (int c = 0; c <= index.cols; ++c)
      index.colEdges.push_back((int64_t(c) * lk + index.cols - 1) / index.cols);
  }
  index.values.fill(kNaN, index.rows * index.cols);
  {
    // Rows in bands (one index_score_tile call each), or the sampled rows one by one; each row is
    // max-pooled into its bin (the probe's rule: row i is in bin floor(i * rows / lq)).
    const int64_t band = everyRow ? kBandRows : 1;
    std::vector<float> tile(static_cast<size_t>(band * lk)), pooled(size_t(index.cols));
    for (int64_t x = 0; x < (everyRow ? lq : rowsOut); x += band) {
      ctx.cancel.throw_if_cancelled();
      const int64_t i0 = everyRow ? x : x * lq / rowsOut;
      const int64_t i1 = everyRow ? std::min(lq, x + band) : i0 + 1;
      const int64_t n = std::clamp<int64_t>(p.query_position(i1 - 1) + 1, 0, lk);
      std::fill(tile.begin(), tile.end(), kNaN);  // keys after every row of the band
      if (n > 0) {
        index_score_tile(p, ctx.inputs, 0, i0, i1, 0, n, tile.data());
        // The tile is [rows, n]: spread it to rows of lk.
        for (int64_t i = i1 - 1; i >= i0; --i) {
          std::copy_backward(tile.begin() + (i - i0) * n, tile.begin() + (i - i0 + 1) * n,
                             tile.begin() + (i - i0) * lk + n);
          std::fill(tile.begin() + (i - i0) * lk + n, tile.begin() + (i - i0 + 1) * lk, kNaN);
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        poolColumns(tile.data() + (i - i0) * lk, lk, index.cols, pooled.data());
        float* dst = index.values.data() + (everyRow ? i * rowsOut / lq : x) * index.cols;
        for (int c = 0; c < index.cols; ++c) {
          if (!std::isnan(pooled[size_t(c)]))
            dst[c] = std::isnan(dst[c]) ? pooled[size_t(c)] : std::max(dst[c], pooled[size_t(c)]);
        }
      }
    }
  }
  out.maps = {index, attention};

  // The selection overlay at display resolution: a bin of keys (about three of the map's pixels)
  // is marked for a row when the row selected any key in it; one key is narrower than a pixel on
  // any long map.
  const int64_t binKeys = std::max<int64_t>(1, (3 * lk + r.outCols - 1) / std::max(1, r.outCols));
  const int64_t units = (lk + binKeys - 1) / binKeys, perRow = std::min(K, units);
  out.selectionBlock = binKeys;
  out.topK = int(perRow);
  out.selection.fill(-1, lq * perRow);
  for (int64_t i = 0; i < lq; ++i) {
    const int32_t* s = sel.data() + i * K;
    qint32* dst = out.selection.data() + i * perRow;
    int64_t n = 0;
    for (int64_t t = 0; t < K && s[t] >= 0; ++t) {
      const qint32 unit = qint32(s[t] / binKeys);
      if (n == 0 || dst[n - 1] != unit) dst[n++] = unit;  // ascending keys: ascending units
    }
  }

  // 3. Recall and the overlap with the true top-k, over every row or an even sample, and both as
  // curves over top_k: sorting a row's keys by index score (ties to the lower key, as the
  // selection) and by dense mass gives every top_k's answer at once.
  const int64_t headsRead = allHeads ? p.shape.heads : 1;
  const int64_t affordable = std::min(kDenseBudget / std::max<int64_t>(1, headsRead * lk),
                                      kIndexBudget / std::max<int64_t>(1, indexWork * lk / 2));
  // Rows before the first key's (q_len > kv_len, bottom-right aligned) see nothing: left out.
  const int64_t first = std::clamp<int64_t>(lq - lk, 0, lq), valid = lq - first;
  const int64_t rows = std::clamp<int64_t>(affordable, std::min<int64_t>(valid, 64), valid);
  out.curveRows = rows;
  const int64_t Kc = out.keyTopK;
  for (int64_t k = 1;; k *= 2) {
    out.curveTopK.push_back(std::min(k, lk));
    if (k >= lk) break;
  }
  if (!out.curveTopK.contains(Kc)) {
    out.curveTopK.insert(std::lower_bound(out.curveTopK.begin(), out.curveTopK.end(), Kc), Kc);
  }
  const int64_t points = out.curveTopK.size();
  std::vector<double> recallAt(size_t(points), 0.0), bestAt(size_t(points), 0.0),
      overlapAt(size_t(points), 0.0);
  std::vector<float> mass, tmp, scores(static_cast<size_t>(kBandRows * lk));
  int64_t band0 = 0, band1 = 0, bandWidth = 0;  // `scores` holds rows [band0, band1) x bandWidth
  std::vector<int64_t> byIndex, byMass;
  std::vector<int64_t> rankOfMass(static_cast<size_t>(lk)), rankOfIndex(static_cast<size_t>(lk));
  out.recallPerQuery.fill(kNaN, lq);
  double recall = 0, overlap = 0;
  int64_t counted = 0;
  ctx.phase(QObject::tr("recall and top-k overlap"), 0.6, 1.0);
  for (int64_t x = 0; x < rows; ++x) {
    ctx.cancel.throw_if_cancelled();
    ctx.cancel.report(double(x) / double(rows));
    const int64_t i = first + (rows == valid ? x : x * valid / rows);
    const int64_t pos = p.query_position(i), n = std::min(pos + 1, lk);
    denseRow(dense, ctx.inputs, *denseRun, h, i, mass, tmp);
    if (i < band0 || i >= band1) {  // every row: a band at once; a sample: its row
      band0 = i;
      band1 = rows == valid ? std::min(lq, i + kBandRows) : i + 1;
      const int64_t width = std::min(p.query_position(band1 - 1) + 1, lk);
      index_score_tile(p, ctx.inputs, 0, band0, band1, 0, width, scores.data());
      // Rows of `width` values; row r starts at r * width.
      bandWidth = width;
    }
    const float* I = scores.data() + (i - band0) * bandWidth;
    byIndex.resize(size_t(n));
    std::iota(byIndex.begin(), byIndex.end(), 0);
    byMass = byIndex;
    std::stable_sort(byIndex.begin(), byIndex.end(),
                     [&](int64_t a, int64_t b) { return I[a] > I[b]; });
    std::stable_sort(byMass.begin(), byMass.end(),
                     [&](int64_t a, int64_t b) { return mass[size_t(a)] > mass[size_t(b)]; });
    for (int64_t t = 0; t < n; ++t) {
      rankOfMass[size_t(byMass[size_t(t)])] = t;
      rankOfIndex[size_t(byIndex[size_t(t)])] = t;
    }
    // The run's own selection: its recall, and how many of its keys are among the true top-k.
    const int32_t* s = sel.data() + i * K;
    const int64_t kept = std::min(K, n);
    double captured = 0;
    int64_t common = 0;
    for (int64_t t = 0; t < kept && s[t] >= 0; ++t) {
      captured += mass[size_t(s[t])];
      common += rankOfMass[size_t(s[t])] < kept;
    }
    out.recallPerQuery[i] = float(captured);
    recall += captured;
    overlap += double(common) / double(kept);
    ++counted;
    // The curves: cumulative mass along each order, and the overlap of the two prefixes.
    double cumIndex = 0, cumMass = 0;
    int64_t inBoth = 0, done = 0;
    for (int64_t t = 0; t < n && done < points; ++t) {
      cumIndex += mass[size_t(byIndex[size_t(t)])];
      cumMass += mass[size_t(byMass[size_t(t)])];
      // Prefix t + 1 of each order: count keys in both (each key joins the count once, when
      // the second of its two ranks enters the prefix).
      const int64_t a = byIndex[size_t(t)], b = byMass[size_t(t)];
      if (rankOfMass[size_t(a)] <= t) ++inBoth;
      if (b != a && rankOfIndex[size_t(b)] < t) ++inBoth;
      while (done < points && (out.curveTopK[done] == t + 1 || t + 1 == n)) {
        // At the run's top_k, its own selection (whose near ties the run broke in float64, and
        // in e4m3 with index_fp8): the curve passes through the numbers the summary reports.
        const bool own = out.curveTopK[done] == Kc;
        recallAt[size_t(done)] += own ? captured : cumIndex;
        bestAt[size_t(done)] += cumMass;
        overlapAt[size_t(done)] +=
            own ? double(common) / double(kept) : double(inBoth) / double(t + 1);
        ++done;
      }
    }
  }
  const double c = std::max<int64_t>(1, counted);
  out.recall = recall / c;
  out.topKOverlap = overlap / c;
  // Sparsity: the share of causal (query, key) pairs a top-k skips, exactly, over every row.
  double causal = 0;
  for (int64_t i = 0; i < lq; ++i)
    causal += double(std::clamp<int64_t>(p.query_position(i) + 1, 0, lk));
  for (int64_t n = 0; n < points; ++n) {
    out.curveRecall.push_back(recallAt[size_t(n)] / c);
    out.curveBestRecall.push_back(bestAt[size_t(n)] / c);
    out.curveOverlap.push_back(overlapAt[size_t(n)] / c);
    double kept = 0;
    for (int64_t i = 0; i < lq; ++i)
      kept += double(
          std::clamp<int64_t>(p.query_position(i) + 1, 0, std::min<int64_t>(lk, out.curveTopK[n])));
    out.curveSparsity.push_back(causal > 0 ? 1.0 - kept / causal : 0.0);
    if (out.curveTopK[n] == Kc) out.sparsity = out.curveSparsity.back();
  }
}

}  // namespace attnscope::gui
