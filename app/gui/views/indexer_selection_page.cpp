// The indexer page of the selection view (indexer_selection_page.hpp).
#include "indexer_selection_page.hpp"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "attnscope/registry.hpp"
#include "selection_parts.hpp"

namespace attnscope::gui {

IndexerSelectionPage::IndexerSelectionPage(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("top_k:")));
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setTracking(false);  // one run per release, not one per pixel of the drag
  slider_->setPageStep(1);
  slider_->setToolTip(
      tr("Keys each query keeps. Moving it reruns DSA on the same inputs at that top_k (the "
         "workload's own stays as it is)."));
  sliderLabel_ = new QLabel;
  sliderLabel_->setMinimumWidth(90);
  bar->addWidget(slider_, 1);
  bar->addWidget(sliderLabel_);
  layout->addLayout(bar);

  auto* grid = new QGridLayout;
  index_ = selectionMap(tr("query i"), tr("key j"), tr("I"));
  index_->setMaskZeros(false);  // ReLU's exact zeros are scores, not masked entries
  attention_ = weightsMap(tr("P"));
  selected_ = weightsMap(tr("P"));
  selected_->setToolTip(
      tr("Red: every bin of keys the query selected a key in (a key is narrower than a pixel)."));
  grid->addWidget(index_, 0, 0);
  grid->addWidget(attention_, 0, 1);
  grid->addWidget(selected_, 0, 2);

  auto* chart = new QChart;
  recall_ = new QLineSeries;
  recall_->setName(tr("recall of the indexer's top-k"));
  best_ = new QLineSeries;
  best_->setName(tr("recall of the true top-k (best any k keys can do)"));
  overlap_ = new QLineSeries;
  overlap_->setName(tr("overlap with the true top-k"));
  marker_ = new QScatterSeries;
  marker_->setName(tr("this run"));
  marker_->setMarkerSize(11);
  axisX_ = new QLogValueAxis;
  axisX_->setBase(2);
  axisX_->setLabelFormat("%d");
  axisX_->setMinorTickCount(0);
  axisX_->setTitleText(tr("top_k (keys per query)"));
  auto* axisY = new QValueAxis;
  axisY->setRange(0, 1.0);
  axisY->setTickCount(6);
  axisY->setTitleText(tr("share"));
  chart->addAxis(axisX_, Qt::AlignBottom);
  chart->addAxis(axisY, Qt::AlignLeft);
  for (QXYSeries* s : std::initializer_list<QXYSeries*>{recall_, best_, overlap_, marker_}) {
    chart->addSeries(s);
    s->attachAxis(axisX_);
    s->attachAxis(axisY);
  }
  grid->addWidget(selectionChart(chart), 1, 0, 1, 3);
  grid->setRowStretch(0, 3);
  grid->setRowStretch(1, 2);
  layout->addLayout(grid, 1);

  connect(slider_, &QSlider::valueChanged, this, [this](int v) {
    if (v < 0 || v >= steps_.size()) return;
    requested_ = steps_[v] == workloadTopK_ ? 0 : steps_[v];
    sliderLabel_->setText(QString::number(steps_[v]));
    emit topKChanged();
  });
  connect(slider_, &QSlider::sliderMoved, this, [this](int v) {
    if (v >= 0 && v < steps_.size()) sliderLabel_->setText(QString::number(steps_[v]));
  });
  for (HeatmapWidget* w : {index_, attention_, selected_})
    connect(w, &HeatmapWidget::hoverText, this, &IndexerSelectionPage::hoverText);
}

void IndexerSelectionPage::setColormap(ColormapId id) {
  for (HeatmapWidget* w : {index_, attention_, selected_}) w->setColormap(id);
}

void IndexerSelectionPage::clear(const QString& note) {
  for (HeatmapWidget* w : {index_, attention_, selected_}) w->clearMap(note);
  for (QXYSeries* s : std::initializer_list<QXYSeries*>{recall_, best_, overlap_, marker_})
    s->clear();
}

void IndexerSelectionPage::setWorkload(const AttentionProblem& p) {
  QVector<qint64> steps;
  for (qint64 k = 1;; k *= 2) {
    steps.push_back(std::min<qint64>(k, p.shape.kv_len));
    if (k >= p.shape.kv_len) break;
  }
  // The variant's own top_k knob, through the registry.
  qint64 own = p.shape.kv_len;
  for (const ParamSpec& spec : variant_info(p.variant).params) {
    if (spec.key == "top_k") own = spec.get(p);
  }
  own = std::clamp<qint64>(own, 1, p.shape.kv_len);
  if (!steps.contains(own)) steps.insert(std::lower_bound(steps.begin(), steps.end(), own), own);
  if (steps == steps_ && own == workloadTopK_) return;
  steps_ = steps;
  workloadTopK_ = own;
  requested_ = 0;
  showSteps(own);
}

void IndexerSelectionPage::setRequestedTopK(qint64 k) {
  if (steps_.isEmpty()) return;
  const qint64 want = k > 0 ? k : workloadTopK_;
  const auto it = std::lower_bound(steps_.begin(), steps_.end(), want);
  const qint64 shown = it == steps_.end() ? steps_.back() : *it;
  requested_ = shown == workloadTopK_ ? 0 : shown;
  showSteps(shown);
}

void IndexerSelectionPage::showSteps(qint64 selected) {
  const QSignalBlocker block(slider_);
  slider_->setRange(0, int(steps_.size()) - 1);
  slider_->setValue(int(steps_.indexOf(selected)));
  sliderLabel_->setText(QString::number(selected));
}

void IndexerSelectionPage::showResult(const ViewResult& r) {
  if (r.maps.size() < 2) return clear(r.note);
  const AttentionProblem& p = r.workload.problem;
  MapOverlays o;
  o.causal = true;
  o.qLen = p.shape.q_len;
  o.kvLen = p.shape.kv_len;
  index_->setExtent(p.shape.q_len, p.shape.kv_len);
  index_->setTitle(r.maps[0].title);
  index_->setMap(r.maps[0]);
  index_->setOverlays(o);
  attention_->setExtent(p.shape.q_len, p.shape.kv_len);
  attention_->setTitle(r.maps[1].title);
  attention_->setMap(r.maps[1]);
  attention_->setOverlays(o);
  selected_->setExtent(p.shape.q_len, p.shape.kv_len);
  selected_->setTitle(tr("the same, the top-%1 keys in red").arg(r.keyTopK));
  selected_->setMap(r.maps[1]);
  o.blockSize = r.selectionBlock;
  o.selection = r.selection;
  o.topK = r.topK;
  o.tint = 110;  // scattered keys, not blocks: a faint tint would vanish into the map
  selected_->setOverlays(o);

  QList<QPointF> recall, best, overlap;
  for (qsizetype n = 0; n < r.curveTopK.size(); ++n) {
    const double k = double(r.curveTopK[n]);
    recall.append({k, r.curveRecall[n]});
    best.append({k, r.curveBestRecall[n]});
    overlap.append({k, r.curveOverlap[n]});
  }
  recall_->replace(recall);
  best_->replace(best);
  overlap_->replace(overlap);
  marker_->replace(QList<QPointF>{{double(r.keyTopK), r.recall}});
  axisX_->setRange(1, double(std::max<qint64>(2, p.shape.kv_len)));
}

QString IndexerSelectionPage::summary(const ViewResult& r) {
  QString rows;
  if (r.curveRows < r.workload.problem.shape.q_len)
    rows = tr(" (over %1 evenly spaced queries)").arg(r.curveRows);
  return tr("<b>recall</b> %1% of the dense attention mass on the selected keys &nbsp; "
            "<b>overlap</b> %2% of them among the true top-%3 &nbsp; <b>sparsity</b> %4% of "
            "causal pairs skipped%5")
      .arg(100 * r.recall, 0, 'f', 1)
      .arg(100 * r.topKOverlap, 0, 'f', 1)
      .arg(r.keyTopK)
      .arg(100 * r.sparsity, 0, 'f', 1)
      .arg(rows);
}

}  // namespace attnscope::gui
