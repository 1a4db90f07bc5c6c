// Block selection view. Recall is computed by the worker against a dense causal run on the same
// inputs, so "routing found the needle" is a number (and a dip in the per-query curve), not a
// guess.
#include "block_selection_view.hpp"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "attnscope/registry.hpp"

namespace attnscope::gui {
namespace {

// Which page shows a problem's selection (the stack's order).
enum class Page { routing, branches, indexer };
Page pageFor(const AttentionProblem& p) {
  const VariantInfo& info = variant_info(p.variant);
  if (info.map_kind == MapKind::mixture) return Page::branches;
  if (info.input_family == InputFamily::latent_indexed) return Page::indexer;
  return Page::routing;
}

QJsonArray toJson(const QVector<double>& values) {
  QJsonArray a;
  for (double v : values) a.append(v);
  return a;
}

// NSA's and DSA's numbers (their maps are the analysis's; recall per query with NaN for rows a
// long DSA map did not measure is written as null).
QJsonObject exportOwn(const ViewResult& r, QJsonObject o) {
  o["recall"] = r.recall;
  o["sparsity"] = r.sparsity;
  QJsonArray recall;
  for (float v : r.recallPerQuery) recall.append(std::isnan(v) ? QJsonValue() : QJsonValue(v));
  o["recall_per_query"] = recall;
  if (!r.branchNames.isEmpty()) {
    o["recall_with_window"] = r.recallWithWindow;
    o["kv_head_selection_row_major"] = [&] {
      QJsonArray a;
      for (qint32 v : r.selection) a.append(v);
      return a;
    }();
    o["block_count"] = r.topK;
    return o;
  }
  o["top_k"] = r.keyTopK;
  o["top_k_overlap"] = r.topKOverlap;
  o["rows_measured"] = r.curveRows;
  QJsonArray ks;
  for (qint64 k : r.curveTopK) ks.append(k);
  o["curve_top_k"] = ks;
  o["curve_recall"] = toJson(r.curveRecall);
  o["curve_best_recall"] = toJson(r.curveBestRecall);
  o["curve_overlap"] = toJson(r.curveOverlap);
  o["curve_sparsity"] = toJson(r.curveSparsity);
  return o;
}

}  // namespace

BlockSelectionView::BlockSelectionView(QWidget* parent) : ResultView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  headCombo_ = new QComboBox;
  headCombo_->setToolTip(
      tr("Head whose gate scores and recall are shown; the selection counts "
         "can also aggregate all heads."));
  bar->addWidget(new QLabel(tr("Head:")));
  bar->addWidget(headCombo_);
  summary_ = new QLabel;
  summary_->setTextFormat(Qt::RichText);
  summary_->setWordWrap(true);
  bar->addWidget(summary_, 1);
  layout->addLayout(bar);

  pages_ = new QStackedWidget;
  auto* routing = new QWidget;
  auto* grid = new QGridLayout(routing);
  grid->setContentsMargins(0, 0, 0, 0);
  counts_ = new HeatmapWidget;
  counts_->setAxisTitles(tr("query block"), tr("key block"), tr("share"));
  counts_->setInteractive(false);
  counts_->setMaskZeros(false);  // zero = never chosen, a real value
  gates_ = new HeatmapWidget;
  gates_->setAxisTitles(tr("query i"), tr("key block"), tr("gate"));
  gates_->setInteractive(false);
  gates_->setKeepAspect(false);  // hundreds of queries by a few blocks
  grid->addWidget(counts_, 0, 0);
  grid->addWidget(gates_, 0, 1);

  auto* chart = new QChart;
  recallSeries_ = new QLineSeries;
  recallSeries_->setName(tr("dense attention mass inside the selected blocks, per query"));
  chart->addSeries(recallSeries_);
  axisX_ = new QValueAxis;
  axisX_->setTitleText(tr("query i"));
  axisX_->setLabelFormat("%d");
  auto* axisY = new QValueAxis;
  axisY->setRange(0, 1.0);
  axisY->setTickCount(6);
  axisY->setTitleText(tr("recall"));
  chart->addAxis(axisX_, Qt::AlignBottom);
  chart->addAxis(axisY, Qt::AlignLeft);
  recallSeries_->attachAxis(axisX_);
  recallSeries_->attachAxis(axisY);
  chart->legend()->setAlignment(Qt::AlignTop);
  chart->setMargins(QMargins(4, 4, 4, 4));
  chartView_ = new QChartView(chart);
  chartView_->setRenderHint(QPainter::Antialiasing);
  chartView_->setMinimumHeight(160);
  grid->addWidget(chartView_, 1, 0, 1, 2);
  grid->setRowStretch(0, 3);
  grid->setRowStretch(1, 2);
  branches_ = new BranchSelectionPage;
  indexer_ = new IndexerSelectionPage;
  pages_->addWidget(routing);  // in the order of Page
  pages_->addWidget(branches_);
  pages_->addWidget(indexer_);
  layout->addWidget(pages_, 1);

  connect(headCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  connect(indexer_, &IndexerSelectionPage::topKChanged, this, [this] { emit requestChanged(); });
  connect(branches_, &BranchSelectionPage::hoverText, this, &ViewBase::hoverText);
  connect(indexer_, &IndexerSelectionPage::hoverText, this, &ViewBase::hoverText);
  connect(counts_, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  connect(gates_, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  stale_ = new StaleOverlay(this);
}

void BlockSelectionView::setWorkload(const Workload& w) {
  const Page page = pageFor(w.problem);
  // A router's counts cover every head; an indexer's one selection serves all heads, measured
  // against their mean attention; a mixture's is per kv group, so a head picks its group.
  const QString extra = page == Page::indexer    ? tr("mean over heads")
                        : page == Page::branches ? QString()
                                                 : tr("all heads (counts)");
  const int want = int(w.problem.shape.heads) + (extra.isEmpty() ? 0 : 1);
  const bool hasExtra = headCombo_->findData(-1) >= 0;
  const bool fresh = headCombo_->count() != want || hasExtra == extra.isEmpty() ||
                     (hasExtra && headCombo_->itemText(want - 1) != extra);
  if (fresh) {
    const int head = headCombo_->currentData().toInt();
    const QSignalBlocker block(headCombo_);
    headCombo_->clear();
    refillHeads(headCombo_, w.problem.shape.heads, extra);
    // An indexer's target is the heads' mean (DSA's is trained on their summed attention).
    const int keep = page == Page::indexer ? -1 : head;
    headCombo_->setCurrentIndex(std::max(0, headCombo_->findData(keep)));
  }
  pages_->setCurrentIndex(int(page));
  if (page == Page::indexer) indexer_->setWorkload(w.problem);
  ViewBase::setWorkload(w);
}

void BlockSelectionView::fillRequest(ViewRequest& r) const {
  r.view = kind();
  const int h = headCombo_->currentData().toInt();
  r.headMode = h < 0 ? HeadMode::mean : HeadMode::single;
  r.head = std::max(0, h);
  r.region = {};
  r.topK = indexer_->requestedTopK();
  if (pages_->currentWidget() == indexer_) {
    const QSize px = indexer_->plotPixels();
    r.outRows = std::max(96, px.height());
    r.outCols = std::max(96, px.width());
  }
}

void BlockSelectionView::setColormap(ColormapId id) {
  counts_->setColormap(id);
  gates_->setColormap(id);
  branches_->setColormap(id);
  indexer_->setColormap(id);
}

void BlockSelectionView::showResult(const ViewResultPtr& result) {
  ViewBase::showResult(result);
  stale_->setLabel({});
  const Page page = result->maps.size() >= 2 ? pageFor(result->workload.problem) : Page::routing;
  pages_->setCurrentIndex(int(page));
  switch (page) {
    case Page::branches:
      branches_->showResult(*result);
      summary_->setText(BranchSelectionPage::summary(*result));
      return;
    case Page::indexer:
      indexer_->showResult(*result);
      summary_->setText(IndexerSelectionPage::summary(*result));
      return;
    case Page::routing:
      showRouting(*result);
      return;
  }
}

void BlockSelectionView::showRouting(const ViewResult& r) {
  recallSeries_->clear();
  if (r.maps.size() < 2) {
    counts_->clearMap(r.note);
    gates_->clearMap(r.note);
    summary_->setText(r.note);
    return;
  }
  const AttentionProblem& p = r.workload.problem;
  counts_->setExtent(r.qBlocks, r.kBlocks);
  counts_->setTitle(r.maps[0].title);
  counts_->setMap(r.maps[0]);
  gates_->setExtent(p.shape.q_len, r.kBlocks);
  gates_->setTitle(
      tr("gate scores and chosen top-%1 (red), head %2").arg(r.topK).arg(r.request.head));
  gates_->setMap(r.maps[1]);
  MapOverlays o;
  o.blockSize = 1;
  o.qLen = p.shape.q_len;
  o.kvLen = r.kBlocks;
  o.selection = r.selection;
  o.topK = r.topK;
  gates_->setOverlays(o);

  QList<QPointF> points;
  const qsizetype n = r.recallPerQuery.size();
  const qsizetype step = std::max<qsizetype>(1, n / 1024);
  for (qsizetype i = 0; i < n; i += step) points.append(QPointF(double(i), r.recallPerQuery[i]));
  recallSeries_->replace(points);
  axisX_->setRange(0, double(std::max<qsizetype>(1, n - 1)));
  const BlockSelection routing = variant_info(p.variant).selection(p);
  summary_->setText(tr("<b>recall</b> %1% of the dense causal attention mass (head %2) &nbsp; "
                       "<b>sparsity</b> %3% of causal (query, key) pairs skipped &nbsp; "
                       "block %4, top-%5, %6 key blocks")
                        .arg(100 * r.recall, 0, 'f', 1)
                        .arg(r.request.head)
                        .arg(100 * r.sparsity, 0, 'f', 1)
                        .arg(routing.block_size)
                        .arg(routing.top_k)
                        .arg(r.kBlocks));
}

void BlockSelectionView::applySettings(const QJsonObject& s) {
  if (s.contains("head")) {
    const int idx = headCombo_->findData(s.value("head").toInt());
    if (idx >= 0) headCombo_->setCurrentIndex(idx);
  }
  if (s.contains("top_k")) indexer_->setRequestedTopK(s.value("top_k").toInteger());
}

QJsonObject BlockSelectionView::exportData() const {
  QJsonObject o{{"view", "blocks"}};
  if (!last_ || last_->maps.size() < 2) return o;
  if (pageFor(last_->workload.problem) != Page::routing) return exportOwn(*last_, o);
  o["recall"] = last_->recall;
  o["sparsity"] = last_->sparsity;
  o["query_blocks"] = last_->qBlocks;
  o["key_blocks"] = last_->kBlocks;
  o["selection_share"] = mapToJson(last_->maps[0]);
  o["gate_scores"] = mapToJson(last_->maps[1]);
  QJsonArray recall;
  for (float v : last_->recallPerQuery) recall.append(double(v));
  o["recall_per_query"] = recall;
  QJsonArray sel;
  for (qint32 v : last_->selection) sel.append(v);
  o["selection_head"] = last_->request.head;
  o["selection_top_k"] = last_->topK;
  o["selection_row_major"] = sel;
  return o;
}

QString BlockSelectionView::exportCsv() const {
  if (!last_ || last_->maps.size() < 2) return {};
  const Page page = pageFor(last_->workload.problem);
  if (page == Page::indexer) {
    QString s = QStringLiteral("# recall=%1 overlap=%2 sparsity=%3 top_k=%4 rows=%5\n")
                    .arg(last_->recall)
                    .arg(last_->topKOverlap)
                    .arg(last_->sparsity)
                    .arg(last_->keyTopK)
                    .arg(last_->curveRows);
    s += QStringLiteral("top_k,recall,best_recall,overlap,sparsity\n");
    for (qsizetype n = 0; n < last_->curveTopK.size(); ++n) {
      s += QStringLiteral("%1,%2,%3,%4,%5\n")
               .arg(last_->curveTopK[n])
               .arg(last_->curveRecall[n], 0, 'g', 8)
               .arg(last_->curveBestRecall[n], 0, 'g', 8)
               .arg(last_->curveOverlap[n], 0, 'g', 8)
               .arg(last_->curveSparsity[n], 0, 'g', 8);
    }
    return s;
  }
  if (page == Page::branches) {
    QString s = QStringLiteral("# recall=%1 recall_with_window=%2 sparsity=%3\nquery,recall")
                    .arg(last_->recall)
                    .arg(last_->recallWithWindow)
                    .arg(last_->sparsity);
    for (const QString& name : last_->branchNames) s += ',' + name;
    s += '\n';
    for (qsizetype i = 0; i < last_->recallPerQuery.size(); ++i) {
      s += QStringLiteral("%1,%2").arg(i).arg(double(last_->recallPerQuery[i]), 0, 'g', 8);
      for (const QVector<float>& g : last_->branchGates)
        s += QStringLiteral(",%1").arg(double(g[i]), 0, 'g', 8);
      s += '\n';
    }
    return s;
  }
  QString s = QStringLiteral("# recall=%1 sparsity=%2\nquery,recall")
                  .arg(last_->recall)
                  .arg(last_->sparsity);
  for (int t = 0; t < last_->topK; ++t) s += QStringLiteral(",block_%1").arg(t);
  s += '\n';
  for (qsizetype i = 0; i < last_->recallPerQuery.size(); ++i) {
    s += QStringLiteral("%1,%2").arg(i).arg(double(last_->recallPerQuery[i]), 0, 'g', 8);
    for (int t = 0; t < last_->topK; ++t)
      s += QStringLiteral(",%1").arg(last_->selection[i * last_->topK + t]);
    s += '\n';
  }
  return s + mapToCsv(last_->maps[0]);
}

}  // namespace attnscope::gui
