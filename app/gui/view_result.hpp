// The value types that cross the UI <-> worker boundary: what a view asks for (ViewRequest) and
// what comes back (ViewResult). Results are immutable and shared, so queued signals copy a pointer.
#pragma once

#include <QMetaType>
#include <QString>
#include <QVector>
#include <memory>

#include "attnscope/backend.hpp"
#include "attnscope/variant.hpp"
#include "workload.hpp"

namespace attnscope::gui {

// `state`: the internals of a variant with a recurrent state (VariantInfo::has_state).
enum class ViewKind { map, blocks, compare, state, learn, kv, throughput, benchmark };
QString viewName(ViewKind v);
bool viewFromName(const QString& name, ViewKind& out);
const QVector<ViewKind>& allViews();

// Which head(s) a map shows: one head, an aggregate over heads, or a kv group's mean (GQA/MQA).
enum class HeadMode { single, mean, max, group };

// A comparison of the compare view, by the id presets and exports use: side A is dense attention at
// the workload's shape and side B changes one thing. "dense_vs_<variant>" for every variant that
// only hides keys of dense attention (a block selection or a window), then "mha_vs_gqa" and
// "causal_vs_bidirectional".
using ComparePair = QString;
const QVector<ComparePair>& comparePairs();  // in menu order; the first is the default
QString comparePairTitle(const ComparePair& p);
// Side B's variant of a "dense_vs_<variant>" pair; nullptr for the other pairs and unknown ids.
const VariantInfo* comparePairVariant(const ComparePair& p);

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
};

// A pooled map: rows x cols values covering `region` of the full map.
struct MapImage {
  int rows = 0, cols = 0;
  Region region;
  QVector<float> values;
  QString title;
  bool pooled() const { return region.rows() > rows || region.cols() > cols; }
  float at(int r, int c) const { return values[r * cols + c]; }
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

  // Attention map view (also: compare's two sides, Gated DeltaNet's two matrices).
  QVector<MapImage> maps;
  // MoBA selection of the shown head: [q_len x topK] ascending block ids, -1 pad.
  QVector<qint32> selection;
  int topK = 0;

  // Block selection view.
  int qBlocks = 0, kBlocks = 0;
  QVector<float> blockCounts;     // [qBlocks x kBlocks]: how many queries of the block chose it
  QVector<float> gateScores;      // [q_len x kBlocks]: q_i . mean(k over block), -inf where masked
  QVector<float> recallPerQuery;  // dense mass captured by the selection, per query
  double recall = 0, sparsity = 0;

  // Compare view.
  QString labelA, labelB;
  double relError = 0, massRecall = 0;
  QString note;  // why a view shows nothing, or how to read its numbers

  // Gated DeltaNet view.
  QVector<double> stateT, stateNorm;  // ||S_t||_F at token t (after t tokens)
  QVector<float> gate, beta;          // exp(g_t) and beta_t of the shown head
};

using ViewResultPtr = std::shared_ptr<const ViewResult>;

}  // namespace attnscope::gui

Q_DECLARE_METATYPE(attnscope::gui::ViewResultPtr)
