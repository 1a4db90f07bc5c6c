// The selection view (and the map view's overlay) for NSA: its three branches and the block
// selection its kv groups share. Everything is the engine's: a branch's map is NSA's own map probe
// with that branch's gate at 1 and the others at 0 (the implicit map is linear in the gates and
// nothing else depends on them), the importance is the compressed branch's probability from the
// run's lse, recall is attention_tile of a real dense run.
#include <QObject>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "analyses.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::gui {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int64_t kScoreRows = 512;  // sampled query rows of the block-importance map
// Multiply-adds of dense rows (key x head dim) the recall may compute before it samples rows.
constexpr int64_t kDenseBudget = int64_t(1) << 31;

// The branches in the order the variant's specs list their gates (NSA: g_cmp, g_slc, g_swa).
const char* const kBranchTitles[] = {QT_TR_NOOP("compressed"), QT_TR_NOOP("selected"),
                                     QT_TR_NOOP("window")};

// The branch gates: the variant's [B, H, Lq] inputs, by the names its specs give (as the
// workload generator finds them).
std::vector<std::string> gateNames(const AttentionProblem& p) {
  std::vector<std::string> names;
  const Shape gate{p.shape.batch, p.shape.heads, p.shape.q_len};
  for (const TensorSpec& spec : variant_info(p.variant).inputs(p)) {
    if (spec.shape == gate) names.emplace_back(spec.name);
  }
  return names;
}

// Sets the gates of `in` (a copy of the workload's inputs) to keep one branch at weight 1 and
// silence the others.
void keepOneBranch(Inputs& in, const std::vector<std::string>& gates, size_t keep) {
  for (size_t n = 0; n < gates.size(); ++n) {
    Tensor& g = in.tensors.at(gates[n]);
    std::fill(g.data(), g.data() + g.numel(), n == keep ? 1.0f : 0.0f);
  }
}

double mean(const QVector<float>& v) {
  double sum = 0;
  for (float x : v) sum += x;
  return v.isEmpty() ? 0.0 : sum / double(v.size());
}

}  // namespace

void branchSelectionOverlay(const AnalysisContext& ctx, ViewResult& out) {
  const AttentionProblem& p = ctx.problem;
  const auto found = ctx.run.extra_index.find("selection");
  if (found == ctx.run.extra_index.end() || ctx.request.headMode != HeadMode::single) return;
  const IndexTensor& sel = found->second;  // [B, Hkv, Lq, S]: one choice per kv group
  const int64_t lq = sel.dim(2), k = sel.dim(3);
  const int64_t kvh = clampHead(ctx.request.head, p) / (p.shape.heads / p.shape.kv_heads);
  const int64_t b = std::clamp<int64_t>(ctx.request.batch, 0, p.shape.batch - 1);
  const int32_t* first = sel.data() + (b * p.shape.kv_heads + kvh) * lq * k;
  out.topK = static_cast<int>(k);
  out.selection = QVector<qint32>(first, first + lq * k);
  out.selectionBlock = p.nsa.block_size;
}

void analyzeBranchSelection(const AnalysisContext& ctx, ViewResult& out) {
  const AttentionProblem& p = ctx.problem;
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len, dk = p.shape.head_dim;
  const int64_t bs = p.nsa.block_size, S = p.nsa.block_count;
  const int64_t G = p.shape.heads / p.shape.kv_heads;
  const int64_t h = clampHead(ctx.request.head, p), kvh = h / G;
  const int64_t nb = (lk + bs - 1) / bs;
  const IndexTensor& sel = ctx.run.extra_index.at("selection");  // [B, Hkv, Lq, S]
  ViewRequest r = ctx.request;
  r.headMode = HeadMode::single;
  r.head = int(h);
  r.region = {};

  // 1. The implicit map, then each branch alone (its own softmax: rows sum to 1 where it sees
  // anything), on the probe's bins.
  ctx.phase(QObject::tr("implicit map"), 0.0, 0.1);
  out.maps.push_back(computeMap(ctx.backend, p, ctx.inputs, ctx.run, r, ctx.cancel, Pool::max,
                                MapDetail::probeOnly));
  out.maps.back().title = QObject::tr("implicit attention (gated sum), head %1").arg(h);
  const std::vector<std::string> gates = gateNames(p);
  Inputs only = ctx.inputs;  // one copy; its gates are rewritten per branch
  for (size_t n = 0; n < gates.size() && n < std::size(kBranchTitles); ++n) {
    const QString title = QObject::tr(kBranchTitles[n]);
    ctx.phase(QObject::tr("%1 branch").arg(title), 0.1 + 0.1 * double(n), 0.2 + 0.1 * double(n));
    const float* g = ctx.inputs.at(gates[n]).data() + h * lq;  // batch 0: [B, H, Lq]
    out.branchNames << QString::fromStdString(gates[n]);
    out.branchGates.push_back(QVector<float>(g, g + lq));
    keepOneBranch(only, gates, n);
    out.maps.push_back(
        computeMap(ctx.backend, p, only, ctx.run, r, ctx.cancel, Pool::max, MapDetail::probeOnly));
    out.maps.back().title = QObject::tr("%1 branch, mean gate %2")
                                .arg(title)
                                .arg(mean(out.branchGates.back()), 0, 'f', 2);
  }

  // 2. Block importance: the group mean of the compressed branch's probability per block (what
  // the selection ranks; blocks 0, own and previous are chosen without it), on sampled rows.
  ctx.phase(QObject::tr("block importance"), 0.4, 0.5);
  const float* q = ctx.inputs.at("q").data();                   // [B, H, Lq, Dk]
  const float* kb = ctx.inputs.at("k").data() + kvh * lk * dk;  // batch 0
  const float* lseCmp = ctx.run.extra.at("lse_cmp").data();     // [B, H, Lq]
  std::vector<double> kmean(static_cast<size_t>(nb * dk), 0.0);
  for (int64_t c = 0; c < lk / bs; ++c) {  // complete blocks only: the compressed branch's
    for (int64_t j = c * bs; j < (c + 1) * bs; ++j) {
      for (int64_t e = 0; e < dk; ++e) kmean[size_t(c * dk + e)] += kb[j * dk + e] / double(bs);
    }
  }
  // Fewer sampled rows when blocks are many (small blocks at long context): at most ~4M cells.
  const int64_t rowsOut = std::min(
      {lq, kScoreRows, std::max<int64_t>(16, (int64_t(4) << 20) / std::max<int64_t>(1, nb))});
  MapImage imp;
  imp.rows = int(rowsOut);
  imp.cols = int(nb);
  imp.region = {0, lq, 0, nb};
  imp.sampled = true;
  for (int64_t x = 0; x <= rowsOut; ++x) imp.rowEdges.push_back(x * lq / rowsOut);
  for (int64_t c = 0; c <= nb; ++c) imp.colEdges.push_back(c);
  imp.values.resize(rowsOut * nb);
  imp.title = QObject::tr("block importance of kv group %1 (heads %2-%3) and its %4 chosen blocks")
                  .arg(kvh)
                  .arg(kvh * G)
                  .arg(kvh * G + G - 1)
                  .arg(S);
  const double scale = p.effective_scale();
  for (int64_t x = 0; x < rowsOut; ++x) {
    if (x % 16 == 0) ctx.cancel.throw_if_cancelled();
    const int64_t i = x * lq / rowsOut, pos = p.query_position(i);
    const int64_t visible = pos < 0 ? 0 : (pos + 1) / bs;
    for (int64_t c = 0; c < nb; ++c) {
      if (c >= visible) {
        imp.values[x * nb + c] = kNaN;
        continue;
      }
      double total = 0;
      for (int64_t hh = kvh * G; hh < (kvh + 1) * G; ++hh) {
        const float* qi = q + (hh * lq + i) * dk;
        double dot = 0;
        for (int64_t e = 0; e < dk; ++e) dot += double(qi[e]) * kmean[size_t(c * dk + e)];
        total += std::exp(dot * scale - double(lseCmp[hh * lq + i]));
      }
      imp.values[x * nb + c] = float(total / double(G));
    }
  }
  out.maps.push_back(imp);
  const int32_t* groupSel = sel.data() + kvh * lq * S;
  out.selection = QVector<qint32>(groupSel, groupSel + lq * S);
  out.topK = int(S);
  out.selectionBlock = 1;  // the importance map's columns are blocks
  out.qBlocks = int((lq + bs - 1) / bs);
  out.kBlocks = int(nb);

  // 3. Recall: the dense causal attention mass of the shown head on the selected blocks, and on
  // everything NSA reads at full resolution (those blocks and the window), over the rows that see
  // a key: every one, or an even sample when the rows' dense maps exceed the budget.
  AttentionProblem dense = AttentionProblem::defaults(VariantId::dense);
  dense.shape = p.shape;
  dense.scale = p.scale;
  dense.causal = true;
  ctx.phase(QObject::tr("dense reference for recall"), 0.5, 0.8);
  // The workload's own inputs (dense reads q, k, v of them): the worker's run cache knows them.
  const auto denseRun = ctx.runProblem(dense, ctx.inputsPtr, true);
  ctx.phase(QObject::tr("recall over the dense map"), 0.8, 1.0);
  const int64_t first = std::clamp<int64_t>(lq - lk, 0, lq);  // rows before it see no key
  const int64_t valid = lq - first;
  const int64_t rows = std::clamp<int64_t>(kDenseBudget / std::max<int64_t>(1, lk * dk),
                                           std::min<int64_t>(valid, 64), valid);
  out.recallPerQuery.fill(kNaN, lq);
  std::vector<float> row(static_cast<size_t>(lk));
  std::vector<char> full(static_cast<size_t>(lk));
  double total = 0, totalWindow = 0;
  for (int64_t x = 0; x < rows; ++x) {
    if (x % 16 == 0) {
      ctx.cancel.throw_if_cancelled();
      ctx.cancel.report(double(x) / double(rows));
    }
    const int64_t i = first + (rows == valid ? x : x * valid / rows);
    const int64_t pos = p.query_position(i);
    attention_tile(dense, ctx.inputs, *denseRun, 0, h, i, i + 1, 0, lk, row.data());
    std::fill(full.begin(), full.end(), 0);
    double captured = 0, withWindow = 0;
    for (int64_t t = 0; t < S; ++t) {
      const int32_t c = groupSel[i * S + t];
      if (c < 0) continue;
      for (int64_t j = c * bs; j < std::min({lk, (c + 1) * bs, pos + 1}); ++j) {
        captured += row[size_t(j)];
        full[size_t(j)] = 1;
      }
    }
    if (p.nsa.window > 0) {
      for (int64_t j = std::max<int64_t>(0, pos - p.nsa.window + 1); j <= pos && j < lk; ++j)
        full[size_t(j)] = 1;
    }
    for (int64_t j = 0; j < lk; ++j) withWindow += full[size_t(j)] ? row[size_t(j)] : 0.0f;
    out.recallPerQuery[i] = float(captured);
    total += captured;
    totalWindow += withWindow;
  }
  out.curveRows = rows;
  out.recall = rows > 0 ? total / double(rows) : 0.0;
  out.recallWithWindow = rows > 0 ? totalWindow / double(rows) : 0.0;
  // Sparsity: the share of causal pairs NSA does not read at full resolution (the selected
  // blocks and the window; the compressed branch reads block means), exactly, over every row.
  double read = 0, causal = 0;
  for (int64_t i = first; i < lq; ++i) {
    const int64_t pos = p.query_position(i);
    const int64_t w0 = p.nsa.window > 0 ? std::max<int64_t>(0, pos - p.nsa.window + 1) : pos + 1;
    double n = double(pos + 1 - w0);  // the window, then each block's part outside it
    for (int64_t t = 0; t < S; ++t) {
      const int32_t c = groupSel[i * S + t];
      if (c < 0) continue;
      const int64_t a = c * bs, e = std::min({lk, (c + 1) * bs, pos + 1});
      n += double(std::max<int64_t>(0, e - a) -
                  std::max<int64_t>(0, std::min(e, pos + 1) - std::max(a, w0)));
    }
    read += n;
    causal += double(pos + 1);
  }
  out.sparsity = causal > 0 ? 1.0 - read / causal : 0.0;
}

}  // namespace attnscope::gui
