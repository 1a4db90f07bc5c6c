// The branch-mixture page of the selection view (branch_selection_page.hpp).
#include "branch_selection_page.hpp"

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

BranchSelectionPage::BranchSelectionPage(QWidget* parent) : QWidget(parent) {
  auto* grid = new QGridLayout(this);
  grid->setContentsMargins(0, 0, 0, 0);
  const QString names[3] = {tr("compressed"), tr("selected"), tr("window")};
  for (int n = 0; n < 3; ++n) {
    branches_[n] = weightsMap(tr("P"));
    branches_[n]->setCompact(true);
    branches_[n]->setTitle(tr("%1 branch").arg(names[n]));
    grid->addWidget(branches_[n], 0, n);
  }
  implicit_ = weightsMap(tr("weight"));
  importance_ = selectionMap(tr("query i"), tr("key block"), tr("importance"));
  importance_->setKeepAspect(false);  // hundreds of queries by a few blocks
  grid->addWidget(implicit_, 1, 0);
  grid->addWidget(importance_, 1, 1, 1, 2);

  auto* chart = new QChart;
  recall_ = new QLineSeries;
  recall_->setName(tr("recall: dense mass on the selected blocks"));
  chart->addSeries(recall_);
  QPen pen(QColor(32, 119, 180), 2.0);
  recall_->setPen(pen);
  const QColor gateColours[3] = {QColor(44, 160, 44), QColor(214, 39, 40), QColor(255, 127, 14)};
  for (int n = 0; n < 3; ++n) {
    gates_[n] = new QLineSeries;
    gates_[n]->setPen(QPen(gateColours[n], 1.2));
    chart->addSeries(gates_[n]);
  }
  axisX_ = new QValueAxis;
  axisX_->setTitleText(tr("query i"));
  axisX_->setLabelFormat("%d");
  auto* axisY = new QValueAxis;
  axisY->setRange(0, 1.0);
  axisY->setTickCount(6);
  axisY->setTitleText(tr("share"));
  chart->addAxis(axisX_, Qt::AlignBottom);
  chart->addAxis(axisY, Qt::AlignLeft);
  for (QLineSeries* s : {recall_, gates_[0], gates_[1], gates_[2]}) {
    s->attachAxis(axisX_);
    s->attachAxis(axisY);
  }
  grid->addWidget(selectionChart(chart), 2, 0, 1, 3);
  grid->setRowStretch(0, 2);
  grid->setRowStretch(1, 3);
  grid->setRowStretch(2, 2);
  for (HeatmapWidget* w : {branches_[0], branches_[1], branches_[2], implicit_, importance_})
    connect(w, &HeatmapWidget::hoverText, this, &BranchSelectionPage::hoverText);
}

void BranchSelectionPage::setColormap(ColormapId id) {
  for (HeatmapWidget* w : {branches_[0], branches_[1], branches_[2], implicit_, importance_})
    w->setColormap(id);
}

void BranchSelectionPage::clear(const QString& note) {
  for (HeatmapWidget* w : {branches_[0], branches_[1], branches_[2], implicit_, importance_})
    w->clearMap(note);
  recall_->clear();
  for (QLineSeries* s : gates_) s->clear();
}

void BranchSelectionPage::showResult(const ViewResult& r) {
  if (r.maps.size() < 5) return clear(r.note);
  const AttentionProblem& p = r.workload.problem;
  HeatmapWidget* order[5] = {implicit_, branches_[0], branches_[1], branches_[2], importance_};
  for (int n = 0; n < 4; ++n) {
    order[n]->setExtent(p.shape.q_len, p.shape.kv_len);
    order[n]->setTitle(r.maps[n].title);
    order[n]->setMap(r.maps[n]);
    MapOverlays o;
    o.causal = true;
    o.qLen = p.shape.q_len;
    o.kvLen = p.shape.kv_len;
    order[n]->setOverlays(o);
  }
  importance_->setExtent(p.shape.q_len, r.kBlocks);
  importance_->setTitle(r.maps[4].title);
  importance_->setMap(r.maps[4]);
  MapOverlays o;
  o.blockSize = 1;  // columns are blocks
  o.qLen = p.shape.q_len;
  o.kvLen = r.kBlocks;
  o.selection = r.selection;
  o.topK = r.topK;
  importance_->setOverlays(o);

  recall_->replace(perQuery(r.recallPerQuery));
  // Gates drawn per token are noise at this width: their running mean over ~1/64 of the queries.
  const qsizetype smooth = std::max<qsizetype>(1, p.shape.q_len / 64);
  for (int n = 0; n < 3; ++n) {
    if (n >= r.branchGates.size() || n >= r.branchNames.size()) {
      gates_[n]->clear();
      continue;
    }
    const QString& name = r.branchNames[n];
    gates_[n]->setName(smooth > 1 ? tr("%1, mean of %2 queries").arg(name).arg(smooth) : name);
    gates_[n]->replace(perQuery(r.branchGates[n], smooth));
  }
  axisX_->setRange(0, double(std::max<qint64>(1, p.shape.q_len - 1)));
}

QString BranchSelectionPage::summary(const ViewResult& r) {
  QString rows;
  if (r.curveRows < r.workload.problem.shape.q_len)
    rows = tr(" (recall over %1 evenly spaced queries)").arg(r.curveRows);
  return tr("<b>recall</b> %1% of the dense causal attention mass in the selected blocks "
            "(%2% with the window) &nbsp; <b>sparsity</b> %3% of causal pairs not read at full "
            "resolution &nbsp; %4%5")
      .arg(100 * r.recall, 0, 'f', 1)
      .arg(100 * r.recallWithWindow, 0, 'f', 1)
      .arg(100 * r.sparsity, 0, 'f', 1)
      .arg(QString::fromStdString(describe_params(r.workload.problem)).trimmed())
      .arg(rows);
}

}  // namespace attnscope::gui
