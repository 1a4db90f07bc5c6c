// View analyses over the engine, on the worker thread. Everything large stays bounded: maps are
// pooled by the probe, recall and overlap stream the dense map in row bands of one head.
#include "analyses.hpp"

#include <QObject>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "attnscope/cost.hpp"
#include "attnscope/error.hpp"
#include "attnscope/mask.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::gui {
namespace {

constexpr int64_t kBandRows = 32;  // rows per tile when streaming a full map

Region fullRegion(const AttentionProblem& p) {
  return {0, p.shape.q_len, 0, p.shape.kv_len};
}

Region clampRegion(Region r, const AttentionProblem& p) {
  if (r.isEmpty()) return fullRegion(p);
  r.row0 = std::clamp<qint64>(r.row0, 0, p.shape.q_len - 1);
  r.row1 = std::clamp<qint64>(r.row1, r.row0 + 1, p.shape.q_len);
  r.col0 = std::clamp<qint64>(r.col0, 0, p.shape.kv_len - 1);
  r.col1 = std::clamp<qint64>(r.col1, r.col0 + 1, p.shape.kv_len);
  return r;
}

// Streams rows [0, q_len) of one head's full map in bands; fn(i, row pointer, kv_len).
template <class F>
void forEachRow(const AttentionProblem& p, const Inputs& in, const RunResult& run, int64_t head,
                const CancelToken& cancel, F&& fn) {
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len;
  std::vector<float> band(static_cast<size_t>(kBandRows * lk));
  for (int64_t i0 = 0; i0 < lq; i0 += kBandRows) {
    cancel.throw_if_cancelled();
    const int64_t i1 = std::min(lq, i0 + kBandRows);
    attention_tile(p, in, run, 0, head, i0, i1, 0, lk, band.data());
    for (int64_t i = i0; i < i1; ++i) fn(i, band.data() + (i - i0) * lk, lk);
    cancel.report(double(i1) / double(lq));
  }
}

}  // namespace

int clampHead(int h, const AttentionProblem& p) {
  return std::clamp<int>(h, 0, static_cast<int>(p.shape.heads) - 1);
}

Inputs subset(const Inputs& in, std::initializer_list<const char*> names) {
  Inputs out;
  for (const char* n : names) out.set(n, in.at(n));
  return out;
}

MapImage computeMap(Backend& backend, const AttentionProblem& problem, const Inputs& inputs,
                    const RunResult& run, const ViewRequest& request, const CancelToken& cancel,
                    Pool pool, MapDetail detail) {
  const Region reg = clampRegion(request.region, problem);
  const int64_t heads = problem.shape.heads;
  const int64_t groupSize = heads / problem.shape.kv_heads;
  std::vector<int64_t> which;
  QString title;
  switch (request.headMode) {
    case HeadMode::single:
      which = {clampHead(request.head, problem)};
      title = QObject::tr("head %1").arg(which.front());
      break;
    case HeadMode::mean:
    case HeadMode::max:
      for (int64_t h = 0; h < heads; ++h) which.push_back(h);
      title = request.headMode == HeadMode::mean ? QObject::tr("mean over %1 heads").arg(heads)
                                                 : QObject::tr("max over %1 heads").arg(heads);
      break;
    case HeadMode::group: {
      const int64_t g = std::clamp<int64_t>(request.group, 0, problem.shape.kv_heads - 1);
      for (int64_t h = g * groupSize; h < (g + 1) * groupSize; ++h) which.push_back(h);
      title = QObject::tr("kv group %1 (heads %2-%3), mean")
                  .arg(g)
                  .arg(which.front())
                  .arg(which.back());
      break;
    }
  }
  MapImage img;
  img.region = reg;
  img.title = title;
  img.pool = pool;
  for (size_t n = 0; n < which.size(); ++n) {
    MapRequest mr;
    mr.batch = std::clamp<int64_t>(request.batch, 0, problem.shape.batch - 1);
    mr.head = which[n];
    mr.row0 = reg.row0;
    mr.row1 = reg.row1;
    mr.col0 = reg.col0;
    mr.col1 = reg.col1;
    mr.out_rows = request.outRows;
    mr.out_cols = request.outCols;
    mr.pool = pool;
    // The run's pyramid answers whole-map views and any zoom no finer than its cells at once;
    // finer zooms go to the backend's probe, which recomputes only the visible region.
    Tensor t;
    std::optional<PyramidMap> served;
    if (run.pyramid && detail != MapDetail::probeOnly) {
      served = map_from_pyramid(*run.pyramid, mr, resolve_map_request(problem, mr),
                                detail == MapDetail::pyramidOnly);
    }
    if (served) {
      t = std::move(served->values);
      if (n == 0) {
        img.region = {served->region.row0, served->region.row1, served->region.col0,
                      served->region.col1};
        img.rowEdges = QVector<qint64>(served->row_edges.begin(), served->row_edges.end());
        img.colEdges = QVector<qint64>(served->col_edges.begin(), served->col_edges.end());
      }
    } else if (detail == MapDetail::pyramidOnly) {
      return {};
    } else {
      t = backend.attention_map(problem, inputs, run, mr, cancel);
    }
    if (n == 0) {
      img.rows = static_cast<int>(t.dim(0));
      img.cols = static_cast<int>(t.dim(1));
      img.values = QVector<float>(t.data(), t.data() + t.numel());
      continue;
    }
    for (qsizetype x = 0; x < img.values.size(); ++x) {
      const float v = t.data()[x];
      img.values[x] =
          request.headMode == HeadMode::max ? std::max(img.values[x], v) : img.values[x] + v;
    }
  }
  if (request.headMode == HeadMode::mean || request.headMode == HeadMode::group) {
    const float inv = 1.0f / static_cast<float>(which.size());
    for (float& v : img.values) v *= inv;
  }
  return img;
}

void analyzeMap(const AnalysisContext& ctx, ViewResult& out) {
  const AttentionProblem& p = ctx.problem;
  // The shown head's selection first: a preview frame carries the MoBA outlines too.
  if (ctx.run.selection && ctx.request.headMode == HeadMode::single) {
    const IndexTensor& sel = *ctx.run.selection;
    const int64_t lq = sel.dim(2), k = sel.dim(3);
    const int64_t h = clampHead(ctx.request.head, p);
    const int64_t b = std::clamp<int64_t>(ctx.request.batch, 0, p.shape.batch - 1);
    const int32_t* first = sel.data() + (b * p.shape.heads + h) * lq * k;
    out.topK = static_cast<int>(k);
    out.selection = QVector<qint32>(first, first + lq * k);
    out.selectionBlock = block_selection(p)->block_size;
  }
  // A mixture's blocks are chosen per kv group: the shown head's group's.
  if (variant_info(p.variant).map_kind == MapKind::mixture) branchSelectionOverlay(ctx, out);
  if (ctx.request.grid) {
    // Small multiples: every head (up to 16) over the full map at thumbnail resolution.
    if (p.shape.heads > 16) out.note = QObject::tr("first 16 of %1 heads").arg(p.shape.heads);
    const int n = static_cast<int>(std::min<int64_t>(p.shape.heads, 16));
    for (int h = 0; h < n; ++h) {
      ctx.phase(QObject::tr("map of head %1").arg(h), double(h) / n, double(h + 1) / n);
      ViewRequest r = ctx.request;
      r.headMode = HeadMode::single;
      r.head = h;
      r.region = {};
      r.outRows = r.outCols = 160;
      out.maps.push_back(computeMap(ctx.backend, p, ctx.inputs, ctx.run, r, ctx.cancel));
    }
  } else {
    if (ctx.preview && ctx.run.pyramid) {
      // A zoom finer than the pyramid: its cells now, the probe's exact frame when it is done.
      ViewResult first = out;
      first.preview = true;
      first.maps.push_back(computeMap(ctx.backend, p, ctx.inputs, ctx.run, ctx.request, ctx.cancel,
                                      Pool::max, MapDetail::pyramidOnly));
      const MapImage& coarse = first.maps.front();
      const Region reg = clampRegion(ctx.request.region, p);
      const bool coarser = coarse.rows < std::min<qint64>(ctx.request.outRows, reg.rows()) ||
                           coarse.cols < std::min<qint64>(ctx.request.outCols, reg.cols());
      if (!coarse.values.isEmpty() && coarser) ctx.preview(first);
    }
    ctx.phase(QObject::tr("attention map"), 0.0, 1.0);
    out.maps.push_back(computeMap(ctx.backend, p, ctx.inputs, ctx.run, ctx.request, ctx.cancel));
  }
}

void analyzeBlocks(const AnalysisContext& ctx, ViewResult& out) {
  const AttentionProblem& p = ctx.problem;
  const VariantInfo& info = variant_info(p.variant);
  if (ctx.run.extra_index.count("selection") > 0) {
    if (info.map_kind == MapKind::mixture) return analyzeBranchSelection(ctx, out);
    if (info.input_family == InputFamily::latent_indexed) return analyzeIndexerSelection(ctx, out);
  }
  const std::optional<BlockSelection> routing = block_selection(p);
  if (!routing || !ctx.run.selection) {
    QStringList sparse;
    for (const VariantInfo& v : variants()) {
      if (showsSelection(v)) sparse << QString::fromUtf8(v.name.data(), qsizetype(v.name.size()));
    }
    out.note = QObject::tr(
                   "The selection view shows how a sparse variant chooses the keys each query "
                   "reads: choose %1 (or its demo in the Learn tab) to see it.")
                   .arg(sparse.join(QObject::tr(", ")));
    return;
  }
  const int64_t lq = p.shape.q_len, lk = p.shape.kv_len, dk = p.shape.head_dim;
  const int64_t bs = routing->block_size;
  const int64_t nkb = (lk + bs - 1) / bs, nqb = (lq + bs - 1) / bs;
  const IndexTensor& sel = *ctx.run.selection;
  const int64_t topk = sel.dim(3);
  const int64_t h = clampHead(ctx.request.head, p);
  const bool allHeads = ctx.request.headMode != HeadMode::single;
  out.qBlocks = static_cast<int>(nqb);
  out.kBlocks = static_cast<int>(nkb);
  out.topK = static_cast<int>(topk);

  // 1. How often each key block is chosen by the queries of each query block.
  std::vector<double> counts(static_cast<size_t>(nqb * nkb), 0.0);
  const int64_t h0 = allHeads ? 0 : h, h1 = allHeads ? p.shape.heads : h + 1;
  for (int64_t hh = h0; hh < h1; ++hh) {
    const int32_t* s = sel.data() + hh * lq * topk;
    for (int64_t i = 0; i < lq; ++i) {
      for (int64_t t = 0; t < topk; ++t) {
        const int32_t b = s[i * topk + t];
        if (b >= 0 && b < nkb) counts[static_cast<size_t>((i / bs) * nkb + b)] += 1;
      }
    }
  }
  MapImage countMap;
  countMap.rows = static_cast<int>(nqb);
  countMap.cols = static_cast<int>(nkb);
  countMap.region = {0, nqb, 0, nkb};
  countMap.title = QObject::tr("share of queries choosing each block (%1)")
                       .arg(allHeads ? QObject::tr("all heads") : QObject::tr("head %1").arg(h));
  countMap.values.resize(nqb * nkb);
  for (int64_t qb = 0; qb < nqb; ++qb) {
    const double queries = double(std::min(lq, (qb + 1) * bs) - qb * bs) * double(h1 - h0);
    for (int64_t kb = 0; kb < nkb; ++kb) {
      countMap.values[qb * nkb + kb] = static_cast<float>(counts[size_t(qb * nkb + kb)] / queries);
    }
  }
  out.blockCounts = countMap.values;
  out.maps.push_back(countMap);

  // 2. Gate scores of the shown head: s_ib = scale * q_i . mean_{j in block b} k_j, future masked.
  const int64_t kvh = h / (p.shape.heads / p.shape.kv_heads);
  const Tensor& q = ctx.inputs.at("q");
  const Tensor& k = ctx.inputs.at("k");
  std::vector<double> kbar(static_cast<size_t>(nkb * dk), 0.0);
  const float* kh = k.data() + kvh * lk * dk;
  for (int64_t j = 0; j < lk; ++j) {
    for (int64_t d = 0; d < dk; ++d) kbar[size_t((j / bs) * dk + d)] += kh[j * dk + d];
  }
  for (int64_t b = 0; b < nkb; ++b) {
    const double n = double(std::min(lk, (b + 1) * bs) - b * bs);
    for (int64_t d = 0; d < dk; ++d) kbar[size_t(b * dk + d)] /= n;
  }
  const int64_t rowsOut = std::min<int64_t>(lq, 512);  // sample rows; never more than 512 x nkb
  MapImage gateMap;
  gateMap.rows = static_cast<int>(rowsOut);
  gateMap.cols = static_cast<int>(nkb);
  gateMap.region = {0, lq, 0, nkb};
  gateMap.title = QObject::tr("gate scores q·mean(k) per query and block (head %1)").arg(h);
  gateMap.values.resize(rowsOut * nkb);
  // Sampled, not pooled: output row r is query r * lq / rowsOut, standing for the rows up to the
  // next sample; the edges say which rows each stands for.
  gateMap.sampled = true;
  for (int64_t r = 0; r <= rowsOut; ++r) gateMap.rowEdges.push_back(r * lq / rowsOut);
  for (int64_t b = 0; b <= nkb; ++b) gateMap.colEdges.push_back(b);
  const float* qh = q.data() + h * lq * dk;
  const double scale = p.effective_scale();
  for (int64_t r = 0; r < rowsOut; ++r) {
    const int64_t i = r * lq / rowsOut;
    const int64_t pos = p.query_position(i);
    for (int64_t b = 0; b < nkb; ++b) {
      float v = std::numeric_limits<float>::quiet_NaN();  // future blocks: not eligible
      if (b * bs <= pos) {
        double dot = 0;
        for (int64_t d = 0; d < dk; ++d) dot += double(qh[i * dk + d]) * kbar[size_t(b * dk + d)];
        v = static_cast<float>(dot * scale);
      }
      gateMap.values[r * nkb + b] = v;
    }
  }
  out.maps.push_back(gateMap);
  out.selection = QVector<qint32>(sel.data() + h * lq * topk, sel.data() + (h + 1) * lq * topk);

  // 3. Recall: the dense causal attention mass of the shown head that the selected blocks hold.
  AttentionProblem dense = p;
  dense.variant = VariantId::dense;
  dense.causal = true;
  ctx.phase(QObject::tr("dense reference for recall"), 0.3, 0.8);
  const auto denseRun = ctx.runProblem(dense, ctx.inputsPtr, true);
  ctx.phase(QObject::tr("recall over dense map"), 0.8, 1.0);
  out.recallPerQuery.resize(lq);
  double total = 0;
  const int32_t* s = sel.data() + h * lq * topk;
  forEachRow(dense, ctx.inputs, *denseRun, h, ctx.cancel,
             [&](int64_t i, const float* row, int64_t) {
               double captured = 0;
               for (int64_t t = 0; t < topk; ++t) {
                 const int32_t b = s[i * topk + t];
                 if (b < 0) continue;
                 for (int64_t j = b * bs; j < std::min(lk, (b + 1) * bs); ++j) captured += row[j];
               }
               out.recallPerQuery[i] = static_cast<float>(captured);
               total += captured;
             });
  out.recall = total / double(lq);
  const double densePairs = double(visible_pairs_dense(dense));
  out.sparsity = densePairs > 0 ? 1.0 - double(visible_pairs(p)) / densePairs : 0.0;
}

Inputs meanPoolKv(const Inputs& mha, int64_t heads, int64_t kvHeads) {
  Inputs out;
  out.set("q", mha.at("q"));
  const int64_t group = heads / kvHeads;
  for (const char* name : {"k", "v"}) {
    const Tensor& t = mha.at(name);
    const int64_t b = t.dim(0), l = t.dim(2), d = t.dim(3);
    Tensor pooled({b, kvHeads, l, d});
    for (int64_t bb = 0; bb < b; ++bb) {
      for (int64_t g = 0; g < kvHeads; ++g) {
        float* dst = pooled.data() + (bb * kvHeads + g) * l * d;
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const float* src = t.data() + (bb * heads + h) * l * d;
          for (int64_t x = 0; x < l * d; ++x) dst[x] += src[x] / static_cast<float>(group);
        }
      }
    }
    out.set(name, std::move(pooled));
  }
  return out;
}

void compareRuns(const AnalysisContext& ctx, const AttentionProblem& a,
                 const std::shared_ptr<const Inputs>& inA, const AttentionProblem& b,
                 const std::shared_ptr<const Inputs>& inB, ViewResult& out);

// A sparse variant against its dense counterpart (VariantInfo::sparse_of): both at the workload's
// shape and knobs, on the sparse side's inputs (the workload's own when it is that variant); the
// counterpart reads the subset of them its tensor specs name.
void analyzeSparseCompare(const AnalysisContext& ctx, const VariantInfo& v, ViewResult& out) {
  const AttentionProblem& w = ctx.problem;
  AttentionProblem b = w;
  if (w.variant != v.id) {
    b = AttentionProblem::defaults(v.id);
    b.shape = w.shape;
    b.scale = w.scale;
    for (const ParamSpec& spec : v.params) spec.set(b, spec.get(w));
    normalize_shape(b);
  }
  b.shape.batch = 1;
  b.causal = true;
  AttentionProblem a = b;
  a.variant = *v.sparse_of;
  normalize_shape(a);
  // The workload's own inputs when they fit (this variant, batch 1); else the pattern's, said so.
  const bool own = w.variant == v.id && w.shape.batch == 1;
  const std::shared_ptr<const Inputs> inB = own ? ctx.inputsPtr : ctx.inputsFor(b);
  Inputs sideA;
  for (const TensorSpec& t : variant_info(a.variant).inputs(a)) sideA.set(t.name, inB->at(t.name));
  const auto inA = std::make_shared<const Inputs>(std::move(sideA));
  const VariantInfo& dense = variant_info(a.variant);
  out.labelA = QObject::tr("%1 causal").arg(midSentence(dense.short_title));
  out.labelB = QString::fromUtf8(v.short_title.data(), qsizetype(v.short_title.size())) +
               QString::fromStdString(describe_params(b));
  compareRuns(ctx, a, inA, b, inB, out);
  out.note = v.map_kind == MapKind::mixture
                 ? QObject::tr(
                       "B's map is its implicit attention, a gated sum of branches whose rows sum "
                       "to the gates' total; the overlap Σ_j min(P_A, B) is the share of A's "
                       "attention mass B's mixture also puts on the same keys.")
                 : QObject::tr(
                       "B attends to a subset of the keys A sees, so the overlap Σ_j min(P_A, "
                       "P_B) is the share of A's attention mass B's selection keeps (recall).");
  if (!own) {
    out.note += QObject::tr(
                    " The workload's inputs are not %1's at batch 1, so both sides ran on "
                    "inputs generated from its pattern and seed.")
                    .arg(QString::fromUtf8(v.short_title.data(), qsizetype(v.short_title.size())));
  }
}

void analyzeCompare(const AnalysisContext& ctx, ViewResult& out) {
  if (const VariantInfo* v = sparsePairVariant(ctx.request.pair)) {
    analyzeSparseCompare(ctx, *v, out);
    return;
  }
  const AttentionProblem& w = ctx.problem;
  // Side A is dense multi-head attention at the workload's shape; side B changes one thing.
  AttentionProblem a = AttentionProblem::defaults(VariantId::dense);
  a.shape = w.shape;
  a.shape.kv_heads = w.shape.heads;
  a.scale = w.scale;
  a.causal = true;
  AttentionProblem b = a;
  const int64_t heads = w.shape.heads;
  if (const VariantInfo* v = comparePairVariant(ctx.request.pair)) {
    // Dense attention restricted to the variant's keys, with the workload's knobs.
    b.variant = v->id;
    for (const ParamSpec& spec : v->params) spec.set(b, spec.get(w));
    out.labelA = QObject::tr("dense causal");
    const QString title =
        QString::fromUtf8(v->short_title.data(), qsizetype(v->short_title.size()));
    if (const auto routing = block_selection(b)) {
      out.labelB = QObject::tr("%1 (block %2, top-%3)")
                       .arg(title)
                       .arg(routing->block_size)
                       .arg(routing->top_k);
    } else {
      const KeyMask mask = KeyMask::of(b);
      out.labelB = QObject::tr("%1 %2, sinks %3")
                       .arg(midSentence(v->short_title))
                       .arg(mask.window)
                       .arg(mask.sinks);
    }
  } else if (ctx.request.pair == QLatin1String("mha_vs_gqa")) {
    a.causal = b.causal = w.causal;
    int64_t g = w.shape.kv_heads;
    if (g >= heads || heads % g != 0) g = heads % 4 == 0 ? heads / 4 : 1;
    b.shape.kv_heads = g;
    out.labelA = QObject::tr("MHA (%1 kv heads)").arg(heads);
    out.labelB = g == 1 ? QObject::tr("MQA (1 kv head, mean-pooled K/V)")
                        : QObject::tr("GQA (%1 kv heads, mean-pooled K/V)").arg(g);
  } else {  // causal_vs_bidirectional
    a.causal = false;
    b.causal = true;
    out.labelA = QObject::tr("bidirectional");
    out.labelB = QObject::tr("causal");
  }
  // Inputs: the workload's file when it has MHA-shaped q/k/v, else the pattern at A's shape.
  std::shared_ptr<const Inputs> inA;
  if (!ctx.inputs.has("q") || !ctx.inputs.has("k") || !ctx.inputs.has("v") ||
      ctx.inputs.at("k").rank() != 4 || ctx.inputs.at("k").dim(1) != heads ||
      ctx.inputs.at("q").dim(3) != ctx.inputs.at("k").dim(3)) {
    inA = ctx.inputsFor(a);
  } else if (ctx.inputs.tensors.size() == 3) {
    // Exactly q, k, v: the same object, so the run cache (keyed by its address) finds side A.
    inA = ctx.inputsPtr;
  } else {
    inA = std::make_shared<const Inputs>(subset(ctx.inputs, {"q", "k", "v"}));
  }
  std::shared_ptr<const Inputs> inB = inA;
  if (b.shape.kv_heads != a.shape.kv_heads) {
    inB = std::make_shared<const Inputs>(meanPoolKv(*inA, heads, b.shape.kv_heads));
  }
  compareRuns(ctx, a, inA, b, inB, out);
  out.note = ctx.request.pair == QLatin1String("mha_vs_gqa")
                 ? QObject::tr(
                       "GQA/MQA keys and values are the mean of each group's MHA heads, so "
                       "both sides see the same tokens; overlap = mean over queries of "
                       "Σ_j min(P_A, P_B).")
                 : QObject::tr(
                       "B masks keys that A sees, so the overlap Σ_j min(P_A, P_B) is "
                       "the share of A's attention mass B keeps (recall).");
}

// Runs both sides on their inputs and fills the maps (A, B, B - A on the probe's bins), the
// relative output error and the attention-mass overlap Σ_j min(A_ij, B_ij) of the shown head.
void compareRuns(const AnalysisContext& ctx, const AttentionProblem& a,
                 const std::shared_ptr<const Inputs>& inA, const AttentionProblem& b,
                 const std::shared_ptr<const Inputs>& inB, ViewResult& out) {
  const AttentionProblem& w = ctx.problem;
  ctx.phase(QObject::tr("run %1").arg(out.labelA), 0.0, 0.35);
  const auto runA = ctx.runProblem(a, inA, true);
  ctx.phase(QObject::tr("run %1").arg(out.labelB), 0.35, 0.7);
  const auto runB = ctx.runProblem(b, inB, true);

  ctx.phase(QObject::tr("maps"), 0.7, 0.8);
  ViewRequest r = ctx.request;
  r.headMode = HeadMode::single;
  r.region = {};
  // The same bins on both sides (the difference is taken bin by bin): the probe's.
  MapImage ma =
      computeMap(ctx.backend, a, *inA, *runA, r, ctx.cancel, Pool::mean, MapDetail::probeOnly);
  MapImage mb =
      computeMap(ctx.backend, b, *inB, *runB, r, ctx.cancel, Pool::mean, MapDetail::probeOnly);
  MapImage diff = mb;
  diff.title = QObject::tr("difference B - A");
  for (qsizetype x = 0; x < diff.values.size(); ++x) diff.values[x] -= ma.values[x];
  out.maps = {ma, mb, diff};

  // Relative output error over the whole output tensor.
  double num = 0, den = 0;
  const Tensor& oa = runA->o;
  const Tensor& ob = runB->o;
  for (int64_t x = 0; x < oa.numel(); ++x) {
    const double d = double(ob.data()[x]) - double(oa.data()[x]);
    num += d * d;
    den += double(oa.data()[x]) * double(oa.data()[x]);
  }
  out.relError = den > 0 ? std::sqrt(num / den) : 0.0;

  // Mass overlap Σ_j min(P_A, P_B), averaged over the shown head's queries. When B only masks A
  // (a block selection, a window, causal), B's row is A's row renormalized on B's keys, so this is
  // exactly recall.
  ctx.phase(QObject::tr("attention-mass overlap"), 0.8, 1.0);
  const int64_t h = clampHead(ctx.request.head, w);
  const int64_t lq = a.shape.q_len, lk = a.shape.kv_len;
  std::vector<float> rowsA(static_cast<size_t>(kBandRows * lk)), rowsB(rowsA.size());
  double overlap = 0;
  for (int64_t i0 = 0; i0 < lq; i0 += kBandRows) {
    ctx.cancel.throw_if_cancelled();
    const int64_t i1 = std::min(lq, i0 + kBandRows);
    attention_tile(a, *inA, *runA, 0, h, i0, i1, 0, lk, rowsA.data());
    attention_tile(b, *inB, *runB, 0, h, i0, i1, 0, lk, rowsB.data());
    for (int64_t x = 0; x < (i1 - i0) * lk; ++x) {
      overlap += std::min(rowsA[size_t(x)], rowsB[size_t(x)]);
    }
  }
  out.massRecall = overlap / double(lq);
}

void analyze(const AnalysisContext& ctx, ViewResult& out) {
  switch (ctx.request.view) {
    case ViewKind::map:
      analyzeMap(ctx, out);
      break;
    case ViewKind::blocks:
      analyzeBlocks(ctx, out);
      break;
    case ViewKind::compare:
      analyzeCompare(ctx, out);
      break;
    case ViewKind::state:
      analyzeState(ctx, out);
      break;
    case ViewKind::learn:
    case ViewKind::kv:  // the KV, throughput and benchmark views run their own work
    case ViewKind::throughput:
    case ViewKind::benchmark:
    case ViewKind::text:  // a model's views (engine_worker_model.cpp)
    case ViewKind::atlas:
    case ViewKind::whatif:
      break;
  }
}

}  // namespace attnscope::gui
