// Block selection view. Recall is computed by the worker against a dense causal run on the same
// inputs, so "routing found the needle" is a number (and a dip in the per-query curve), not a
// guess.
#include "block_selection_view.hpp"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QValueAxis>

#include "attnscope/registry.hpp"

namespace attnscope::gui {

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

  auto* grid = new QGridLayout;
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
  layout->addLayout(grid, 1);

  connect(headCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  connect(counts_, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  connect(gates_, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  stale_ = new StaleOverlay(this);
}

void BlockSelectionView::setWorkload(const Workload& w) {
  refillHeads(headCombo_, w.problem.shape.heads, tr("all heads (counts)"));
  ViewBase::setWorkload(w);
}

void BlockSelectionView::fillRequest(ViewRequest& r) const {
  r.view = kind();
  const int h = headCombo_->currentData().toInt();
  r.headMode = h < 0 ? HeadMode::mean : HeadMode::single;
  r.head = std::max(0, h);
  r.region = {};
}

void BlockSelectionView::setColormap(ColormapId id) {
  counts_->setColormap(id);
  gates_->setColormap(id);
}

void BlockSelectionView::showResult(const ViewResultPtr& result) {
  ViewBase::showResult(result);
  stale_->setLabel({});
  recallSeries_->clear();
  if (result->maps.size() < 2) {
    counts_->clearMap(result->note);
    gates_->clearMap(result->note);
    summary_->setText(result->note);
    return;
  }
  const AttentionProblem& p = result->workload.problem;
  counts_->setExtent(result->qBlocks, result->kBlocks);
  counts_->setTitle(result->maps[0].title);
  counts_->setMap(result->maps[0]);
  gates_->setExtent(p.shape.q_len, result->kBlocks);
  gates_->setTitle(tr("gate scores and chosen top-%1 (red), head %2")
                       .arg(result->topK)
                       .arg(result->request.head));
  gates_->setMap(result->maps[1]);
  MapOverlays o;
  o.blockSize = 1;
  o.qLen = p.shape.q_len;
  o.kvLen = result->kBlocks;
  o.selection = result->selection;
  o.topK = result->topK;
  gates_->setOverlays(o);

  QList<QPointF> points;
  const qsizetype n = result->recallPerQuery.size();
  const qsizetype step = std::max<qsizetype>(1, n / 1024);
  for (qsizetype i = 0; i < n; i += step)
    points.append(QPointF(double(i), result->recallPerQuery[i]));
  recallSeries_->replace(points);
  axisX_->setRange(0, double(std::max<qsizetype>(1, n - 1)));
  const BlockSelection routing = variant_info(p.variant).selection(p);
  summary_->setText(tr("<b>recall</b> %1% of the dense causal attention mass (head %2) &nbsp; "
                       "<b>sparsity</b> %3% of causal (query, key) pairs skipped &nbsp; "
                       "block %4, top-%5, %6 key blocks")
                        .arg(100 * result->recall, 0, 'f', 1)
                        .arg(result->request.head)
                        .arg(100 * result->sparsity, 0, 'f', 1)
                        .arg(routing.block_size)
                        .arg(routing.top_k)
                        .arg(result->kBlocks));
}

void BlockSelectionView::applySettings(const QJsonObject& s) {
  if (s.contains("head")) {
    const int idx = headCombo_->findData(s.value("head").toInt());
    if (idx >= 0) headCombo_->setCurrentIndex(idx);
  }
}

QJsonObject BlockSelectionView::exportData() const {
  QJsonObject o{{"view", "blocks"}};
  if (!last_ || last_->maps.size() < 2) return o;
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
