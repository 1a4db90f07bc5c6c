// Compare view. Maps are mean-pooled so that the difference map is the exact pooled difference
// (max pooling of two maps does not subtract).
#include "compare_view.hpp"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QVBoxLayout>

namespace attnscope::gui {

CompareView::CompareView(QWidget* parent) : ResultView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  pairCombo_ = new QComboBox;
  for (const ComparePair& p : comparePairs()) pairCombo_->addItem(comparePairTitle(p), p);
  pairCombo_->setToolTip(
      tr("A and B see the same q, k, v. MHA vs GQA builds each group's K/V as "
         "the mean of its heads' K/V; the other pairs only change the mask."));
  headCombo_ = new QComboBox;
  scaleCombo_ = new QComboBox;
  scaleCombo_->addItems({tr("linear"), tr("log")});
  bar->addWidget(new QLabel(tr("Compare:")));
  bar->addWidget(pairCombo_);
  bar->addWidget(new QLabel(tr("Head:")));
  bar->addWidget(headCombo_);
  bar->addWidget(new QLabel(tr("Scale:")));
  bar->addWidget(scaleCombo_);
  bar->addStretch();
  layout->addLayout(bar);
  summary_ = new QLabel;
  summary_->setWordWrap(true);
  summary_->setTextFormat(Qt::RichText);
  summary_->setAlignment(Qt::AlignLeft | Qt::AlignVCenter);
  summary_->setMargin(12);
  auto* grid = new QGridLayout;
  a_ = new HeatmapWidget;
  b_ = new HeatmapWidget;
  diff_ = new HeatmapWidget;
  diff_->setDiverging(true);
  diff_->setAxisTitles(tr("query i"), tr("key j"), tr("Δp"));
  for (auto* h : {a_, b_, diff_}) {
    h->setInteractive(false);
    connect(h, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  }
  // 2 x 2: the two sides on top, their difference and the numbers below, so every map stays big.
  grid->addWidget(a_, 0, 0);
  grid->addWidget(b_, 0, 1);
  grid->addWidget(diff_, 1, 0);
  grid->addWidget(summary_, 1, 1);
  layout->addLayout(grid, 1);

  connect(pairCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  connect(headCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  connect(scaleCombo_, &QComboBox::currentIndexChanged, this, [this](int i) {
    a_->setScaleMode(i == 1 ? ScaleMode::log : ScaleMode::linear);
    b_->setScaleMode(i == 1 ? ScaleMode::log : ScaleMode::linear);
  });
  stale_ = new StaleOverlay(this);
}

void CompareView::setWorkload(const Workload& w) {
  refillHeads(headCombo_, w.problem.shape.heads);
  ViewBase::setWorkload(w);
}

void CompareView::setPair(const ComparePair& pair) {
  const int idx = pairCombo_->findData(pair);
  if (idx >= 0) pairCombo_->setCurrentIndex(idx);
}

void CompareView::fillRequest(ViewRequest& r) const {
  r.view = kind();
  r.pair = pairCombo_->currentData().toString();
  r.headMode = HeadMode::single;
  r.head = std::max(0, headCombo_->currentData().toInt());
  r.region = {};
  const QSize px = a_->plotPixels();
  r.outRows = r.outCols = std::clamp(std::min(px.width(), px.height()), 64, 384);
}

void CompareView::setColormap(ColormapId id) {
  a_->setColormap(id);
  b_->setColormap(id);
}

void CompareView::showResult(const ViewResultPtr& result) {
  ViewBase::showResult(result);
  stale_->setLabel({});
  if (result->maps.size() < 3) {
    for (auto* h : {a_, b_, diff_}) h->clearMap(result->note);
    return;
  }
  const AttentionProblem& p = result->workload.problem;
  for (auto* h : {a_, b_, diff_}) h->setExtent(p.shape.q_len, p.shape.kv_len);
  a_->setTitle(tr("A: %1").arg(result->labelA));
  b_->setTitle(tr("B: %1").arg(result->labelB));
  diff_->setTitle(tr("B − A (blue: B lower, red: B higher)"));
  a_->setMap(result->maps[0]);
  b_->setMap(result->maps[1]);
  diff_->setMap(result->maps[2]);
  summary_->setText(tr("<p><b>A</b>: %1<br><b>B</b>: %2</p>"
                       "<p><b>relative output error</b><br>‖o<sub>B</sub> − o<sub>A</sub>‖ / "
                       "‖o<sub>A</sub>‖ = <b>%3</b> (all heads)</p>"
                       "<p><b>attention-mass recall</b><br><b>%4%</b> of A's mass, head %5</p>"
                       "<p><small>%6</small></p>")
                        .arg(result->labelA, result->labelB)
                        .arg(result->relError, 0, 'g', 4)
                        .arg(100 * result->massRecall, 0, 'f', 1)
                        .arg(result->request.head)
                        .arg(result->note));
}

void CompareView::applySettings(const QJsonObject& s) {
  if (s.contains("pair")) setPair(s.value("pair").toString());  // an unknown pair changes nothing
  if (s.contains("head")) {
    const int idx = headCombo_->findData(s.value("head").toInt());
    if (idx >= 0) headCombo_->setCurrentIndex(idx);
  }
  if (s.contains("scale")) scaleCombo_->setCurrentIndex(s.value("scale").toString() == "log");
}

QJsonObject CompareView::exportData() const {
  QJsonObject o{{"view", "compare"}};
  if (!last_ || last_->maps.size() < 3) return o;
  o["pair"] = last_->request.pair;
  o["a"] = last_->labelA;
  o["b"] = last_->labelB;
  o["relative_output_error"] = last_->relError;
  o["attention_mass_recall"] = last_->massRecall;
  o["head"] = last_->request.head;
  o["map_a"] = mapToJson(last_->maps[0]);
  o["map_b"] = mapToJson(last_->maps[1]);
  o["difference"] = mapToJson(last_->maps[2]);
  return o;
}

QString CompareView::exportCsv() const {
  if (!last_ || last_->maps.size() < 3) return {};
  QString s = QStringLiteral("# A=%1 B=%2 relative_output_error=%3 attention_mass_recall=%4\n")
                  .arg(last_->labelA, last_->labelB)
                  .arg(last_->relError)
                  .arg(last_->massRecall);
  s += QStringLiteral("row_start,col_start,p_a,p_b,difference\n");
  const MapImage& a = last_->maps[0];
  for (int r = 0; r < a.rows; ++r) {
    for (int c = 0; c < a.cols; ++c) {
      s += QStringLiteral("%1,%2,%3,%4,%5\n")
               .arg(a.region.row0 + r * a.region.rows() / a.rows)
               .arg(a.region.col0 + c * a.region.cols() / a.cols)
               .arg(double(a.at(r, c)), 0, 'g', 8)
               .arg(double(last_->maps[1].at(r, c)), 0, 'g', 8)
               .arg(double(last_->maps[2].at(r, c)), 0, 'g', 8);
    }
  }
  return s;
}

}  // namespace attnscope::gui
