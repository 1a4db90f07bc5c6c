// The value types that cross the UI <-> worker boundary: what a view asks for (ViewRequest) and
// what comes back (ViewResult). Results are immutable and shared, so queued signals copy a pointer.
#pragma once

#include <QMetaType>
#include <QString>
#include <QVector>
#include <algorithm>
#include <memory>

#include "attnscope/backend.hpp"
#include "attnscope/map_request.hpp"
#include "attnscope/variant.hpp"
#include "workload.hpp"

namespace attnscope::gui {

// `state`: the internals of a variant with a recurrent state (VariantInfo::has_state).
// `text`, `atlas`, `whatif`: a model's attention on a text (Workload::model).
enum class ViewKind {
  map,
  blocks,
  compare,
  state,
  learn,
  kv,
  throughput,
  benchmark,
  text,
  atlas,
  whatif
};
QString viewName(ViewKind v);
bool viewFromName(const QString& name, ViewKind& out);
const QVector<ViewKind>& allViews();

// Which head(s) a map shows: one head, an aggregate over heads, or a kv group's mean (GQA/MQA).
enum class HeadMode { single, mean, max, group };

// A comparison of the compare view, by the id presets and exports use: side A is dense attention at
// the workload's shape and side B changes one thing. "dense_vs_<variant>" for every variant that
// only hides keys of dense attention (a block selection or a window), "<counterpart>_vs_<variant>"
// for every sparse variant with its own dense counterpart (VariantInfo::sparse_of), then
// "mha_vs_gqa" and "causal_vs_bidirectional".
using ComparePair = QString;
const QVector<ComparePair>& comparePairs();  // in menu order; the first is the default
QString comparePairTitle(const ComparePair& p);
// Side B's variant of a "dense_vs_<variant>" pair; nullptr for the other pairs and unknown ids.
const VariantInfo* comparePairVariant(const ComparePair& p);
// Side B's variant of a "<dense counterpart>_vs_<sparse variant>" pair (VariantInfo::sparse_of:
// "dense_vs_nsa", "mla_vs_dsa"); nullptr for the other pairs.
const VariantInfo* sparsePairVariant(const ComparePair& p);

// Whether the selection view has something to show for a variant: MoBA's routing
// (VariantInfo::selection) or a selection of its own among its outputs (NSA, DSA).
bool showsSelection(const VariantInfo& v);

// A region of the full [q_len x kv_len] map, half-open.
struct Region {
  qint64 row0 = 0, row1 = 0, col0 = 0, col1 = 0;
  qint64 rows() const { return row1 - row0; }
  qint64 cols() const { return col1 - col0; }
  bool isEmpty() const { return rows() <= 0 || cols() <= 0; }
  bool operator==(const Region&) const = default;
};

struct ViewRequest {
  ViewKind view = ViewKind::map;
  int head = 0;
  HeadMode headMode = HeadMode::single;
  int group = 0;
  int batch = 0;      // which sequence of the batch (the map view; others show batch 0)
  bool grid = false;  // small multiples of every head
  Region region;      // empty: the whole map
  int outRows = 384, outCols = 384;
  ComparePair pair = comparePairs().front();
  // A model workload: the layer the map, text and compare views show (heads as above).
  int layer = 0;
  // Text view: the query token whose attention tints the text (-1: none yet); headMode single,
  // mean or max over the layer's heads, or with allLayers over every layer's heads.
  int token = -1;
  bool allLayers = false;
  // Head atlas: the statistic (head_stat_key: "entropy", "sink", ...).
  QString stat = QStringLiteral("entropy");
  // What-if: the variant replacing dense attention (its knobs; shape, mask and scale are each
  // layer's own), and an optional sweep of one knob over `sweepValues`.
  AttentionProblem whatIf;  // the What-if view always sets it
  QString sweepKey;
  QVector<qint64> sweepValues;
  // Selection view, a lightning indexer: the top_k its slider asks for (0: the workload's own).
  qint64 topK = 0;
};

// A pooled map: rows x cols values covering `region` of the full map. Each value pools (`pool`:
// max or mean, masked entries counting as 0) the full-map cells of its bin. Bins follow the
// probe's rule (MapRegion in map_request.hpp) unless explicit edges are given: a map served from
// the run's pyramid has bins that are unions of whole pyramid cells, so their extents differ by a
// cell and are listed (rowEdges: rows + 1 ascending full-map rows, colEdges likewise).
struct MapImage {
  int rows = 0, cols = 0;
  Region region;
  QVector<float> values;
  QString title;
  Pool pool = Pool::max;
  // Not pooled but sampled: a bin's value is that of one entry of it, its first (e.g. the block
  // view's gate scores take every n-th query row); hover, legend and exports then say "sample".
  bool sampled = false;
  QVector<qint64> rowEdges, colEdges;  // empty: the probe's uniform rule
  bool pooled() const { return region.rows() > rows || region.cols() > cols; }
  float at(int r, int c) const { return values[r * cols + c]; }
  // Full-map rows [rowBegin(r), rowEnd(r)) pool into output row r; columns likewise.
  qint64 rowBegin(int r) const { return edge(rowEdges, region.row0, region.rows(), rows, r); }
  qint64 rowEnd(int r) const { return edge(rowEdges, region.row0, region.rows(), rows, r + 1); }
  qint64 colBegin(int c) const { return edge(colEdges, region.col0, region.cols(), cols, c); }
  qint64 colEnd(int c) const { return edge(colEdges, region.col0, region.cols(), cols, c + 1); }

 private:
  static qint64 edge(const QVector<qint64>& edges, qint64 first, qint64 span, int bins, int b) {
    if (!edges.isEmpty()) return edges[b];
    return first + (qint64(b) * span + bins - 1) / std::max(1, bins);
  }
};

struct RunSummary {
  QString describe, backend, device;
  double seconds = 0, flops = 0, bytes = 0;
  qint64 visiblePairs = 0;
};

struct ViewResult {
  quint64 id = 0;
  ViewRequest request;
  Workload workload;
  RunSummary run;
  std::shared_ptr<const RunResult> runResult;  // the engine's own value (o, lse, selection, …)
  Qt::HANDLE workerThread = nullptr;  // which thread computed it (tests check it is not the GUI's)
  // A first, coarser frame of this request (from the run's map pyramid); the exact one follows.
  bool preview = false;

  // Attention map view (also: compare's two sides, Gated DeltaNet's two matrices).
  QVector<MapImage> maps;
  // The shown head's selection: [q_len x topK] ascending ids, -1 pad, of units selectionBlock keys
  // wide (a block selection's blocks; the indexer overlay bins its selected keys).
  QVector<qint32> selection;
  int topK = 0;
  qint64 selectionBlock = 0;

  // Block selection view.
  int qBlocks = 0, kBlocks = 0;
  QVector<float> blockCounts;     // [qBlocks x kBlocks]: how many queries of the block chose it
  QVector<float> gateScores;      // [q_len x kBlocks]: q_i . mean(k over block), -inf where masked
  QVector<float> recallPerQuery;  // dense mass captured by the selection, per query
  double recall = 0, sparsity = 0;
  // A mixture of branches (NSA): maps = {implicit map, each branch alone, block importance};
  // each branch's gate of the shown head per query (branchNames: the gate inputs' names), and the
  // dense mass on every key read at full resolution (selected blocks and window).
  QStringList branchNames;
  QVector<QVector<float>> branchGates;
  double recallWithWindow = 0;
  // A lightning indexer's selection (DSA): maps = {index scores, dense MLA attention}; the
  // selection's recall and its overlap with the true top-k (the keys holding the most dense
  // attention) at the run's top_k, and both as curves over top_k: the indexer's top-k and the true
  // top-k (an upper bound on recall).
  qint64 keyTopK = 0;
  double topKOverlap = 0;
  QVector<qint64> curveTopK;
  QVector<double> curveRecall, curveBestRecall, curveOverlap, curveSparsity;
  // Query rows behind recall (both pages) and the curves: those that see a key, or an even sample
  // of them on long maps.
  qint64 curveRows = 0;

  // Compare view.
  QString labelA, labelB;
  double relError = 0, massRecall = 0;
  QString note;  // why a view shows nothing, or how to read its numbers

  // Model workloads: the text's tokens as the maps' axes show them, the layer shown, and the
  // forward's perplexity on the text (NaN for one token).
  std::shared_ptr<const QStringList> tokens;
  int layer = 0, layers = 0;
  double perplexity = 0;

  // Text view: how much the selected token attends to each token [L] (NaN: not visible to it).
  QVector<float> tokenWeights;
  int token = -1;

  // Head atlas: [atlasLayers x atlasHeads] values of the statistic, row-major by layer.
  QVector<double> atlas;
  int atlasLayers = 0, atlasHeads = 0;
  QString atlasTitle;      // "attention entropy (nats)"
  qint64 atlasTokens = 0;  // the length of the sequence measured (its own for induction/retrieval)

  // What-if: the replacement measured against dense on the text; per point of a sweep.
  struct WhatIfPoint {
    qint64 knob = 0;  // the swept knob's value (the request's own when no sweep)
    QString variant;  // describe() of the replacement
    double ppl = 0, pplDense = 0, klMean = 0, sparsity = 0, meanRecall = 0;
    QVector<double> recall;  // [layers x heads]
  };
  QVector<WhatIfPoint> whatIf;

  // Gated DeltaNet view.
  QVector<double> stateT, stateNorm;  // ||S_t||_F at token t (after t tokens)
  QVector<float> gate, beta;          // exp(g_t) and beta_t of the shown head
};

using ViewResultPtr = std::shared_ptr<const ViewResult>;

// `r` as the views keep it once its model is closed: its numbers and pictures stay (drawn as a
// previous result), but it no longer holds the model's weights, its text or its captures. Results
// without a model come back as they are.
ViewResultPtr withoutModel(const ViewResultPtr& r);

}  // namespace attnscope::gui

Q_DECLARE_METATYPE(attnscope::gui::ViewResultPtr)
