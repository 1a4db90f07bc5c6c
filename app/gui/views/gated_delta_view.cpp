// Gated DeltaNet view. The implicit matrix is signed (the delta rule subtracts old associations),
// so it uses the diverging colormap; the softmax side keeps the sequential one.
#include "gated_delta_view.hpp"

#include "state_view.hpp"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QValueAxis>

namespace attnscope::gui {
namespace {
QChartView* makeChart(const QString& xTitle, const QString& yTitle, QList<QLineSeries*> series,
                      QValueAxis*& x, QValueAxis*& y) {
  auto* chart = new QChart;
  x = new QValueAxis;
  y = new QValueAxis;
  x->setTitleText(xTitle);
  x->setLabelFormat("%d");
  y->setTitleText(yTitle);
  chart->addAxis(x, Qt::AlignBottom);
  chart->addAxis(y, Qt::AlignLeft);
  for (QLineSeries* s : series) {
    chart->addSeries(s);
    s->attachAxis(x);
    s->attachAxis(y);
  }
  chart->legend()->setAlignment(Qt::AlignTop);
  chart->setMargins(QMargins(4, 4, 4, 4));
  auto* view = new QChartView(chart);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumHeight(150);
  return view;
}
}  // namespace

ViewBase* makeStateView(QWidget* parent) {
  return new GatedDeltaView(parent);
}

GatedDeltaView::GatedDeltaView(QWidget* parent) : ResultView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  headCombo_ = new QComboBox;
  bar->addWidget(new QLabel(tr("Head:")));
  bar->addWidget(headCombo_);
  note_ = new QLabel;
  note_->setWordWrap(true);
  bar->addWidget(note_, 1);
  layout->addLayout(bar);

  auto* grid = new QGridLayout;
  implicit_ = new HeatmapWidget;
  implicit_->setDiverging(true);
  implicit_->setAxisTitles(tr("query t"), tr("key s"), tr("weight"));
  softmax_ = new HeatmapWidget;
  softmax_->setScaleMode(ScaleMode::log);  // early rows have few keys and would dominate linearly
  for (auto* h : {implicit_, softmax_}) {
    h->setInteractive(false);
    connect(h, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  }
  grid->addWidget(implicit_, 0, 0);
  grid->addWidget(softmax_, 0, 1);

  normSeries_ = new QLineSeries;
  normSeries_->setName(tr("‖S_t‖_F, state norm after t tokens"));
  QValueAxis* dummyY = nullptr;
  grid->addWidget(makeChart(tr("token t"), tr("‖S_t‖_F"), {normSeries_}, normX_, normY_), 1, 0);
  gateSeries_ = new QLineSeries;
  gateSeries_->setName(tr("exp(g_t)"));
  betaSeries_ = new QLineSeries;
  betaSeries_->setName(tr("β_t"));
  retainedSeries_ = new QLineSeries;
  retainedSeries_->setName(tr("Π α (token 0 kept)"));
  grid->addWidget(makeChart(tr("token t"), tr("value"), {gateSeries_, betaSeries_, retainedSeries_},
                            gateX_, dummyY),
                  1, 1);
  dummyY->setRange(0, 1.02);
  grid->setRowStretch(0, 3);
  grid->setRowStretch(1, 2);
  layout->addLayout(grid, 1);
  connect(headCombo_, &QComboBox::currentIndexChanged, this, [this] { emit requestChanged(); });
  stale_ = new StaleOverlay(this);
}

void GatedDeltaView::setWorkload(const Workload& w) {
  refillHeads(headCombo_, w.problem.shape.heads);
  ViewBase::setWorkload(w);
}

void GatedDeltaView::fillRequest(ViewRequest& r) const {
  r.view = kind();
  r.headMode = HeadMode::single;
  r.head = std::max(0, headCombo_->currentData().toInt());
  r.region = {};
  const QSize px = implicit_->plotPixels();
  r.outRows = r.outCols = std::clamp(std::min(px.width(), px.height()), 64, 384);
}

void GatedDeltaView::setColormap(ColormapId id) {
  softmax_->setColormap(id);
}

void GatedDeltaView::showResult(const ViewResultPtr& result) {
  ViewBase::showResult(result);
  stale_->setLabel({});
  normSeries_->clear();
  gateSeries_->clear();
  betaSeries_->clear();
  retainedSeries_->clear();
  if (result->maps.size() < 2) {
    implicit_->clearMap(result->note);
    softmax_->clearMap(result->note);
    note_->setText(result->note);
    return;
  }
  const AttentionProblem& p = result->workload.problem;
  note_->setText(
      tr("o_t = S_tᵀ q_t with S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ, "
         "α_t = exp(g_t). Left: the weight of v_s in o_t; right: softmax attention on "
         "the same q, k, v."));
  for (auto* h : {implicit_, softmax_}) h->setExtent(p.shape.q_len, p.shape.kv_len);
  implicit_->setTitle(result->maps[0].title);
  softmax_->setTitle(result->maps[1].title);
  implicit_->setMap(result->maps[0]);
  softmax_->setMap(result->maps[1]);

  QList<QPointF> pts;
  double maxNorm = 0;
  for (qsizetype i = 0; i < result->stateT.size(); ++i) {
    pts.append({result->stateT[i], result->stateNorm[i]});
    maxNorm = std::max(maxNorm, result->stateNorm[i]);
  }
  normSeries_->replace(pts);
  normX_->setRange(0, double(p.shape.q_len));
  normY_->setRange(0, maxNorm > 0 ? maxNorm * 1.05 : 1.0);
  QList<QPointF> g, b, kept;
  const qsizetype n = result->gate.size();
  const qsizetype step = std::max<qsizetype>(1, n / 1024);
  double retained = 1.0;  // forgetting compounds: after t steps the gate has scaled token 0 by Π α
  for (qsizetype t = 0; t < n; ++t) {
    retained *= result->gate[t];
    if (t % step != 0) continue;
    g.append({double(t), double(result->gate[t])});
    b.append({double(t), double(result->beta[t])});
    kept.append({double(t), retained});
  }
  gateSeries_->replace(g);
  betaSeries_->replace(b);
  retainedSeries_->replace(kept);
  gateX_->setRange(0, double(std::max<qsizetype>(1, n - 1)));
}

void GatedDeltaView::applySettings(const QJsonObject& s) {
  if (s.contains("head")) {
    const int idx = headCombo_->findData(s.value("head").toInt());
    if (idx >= 0) headCombo_->setCurrentIndex(idx);
  }
}

QJsonObject GatedDeltaView::exportData() const {
  QJsonObject o{{"view", stateViewName()}};
  if (!last_ || last_->maps.size() < 2) return o;
  o["head"] = last_->request.head;
  o["implicit_attention"] = mapToJson(last_->maps[0]);
  o["softmax_attention"] = mapToJson(last_->maps[1]);
  QJsonArray t, norm, gate, beta;
  for (double v : last_->stateT) t.append(v);
  for (double v : last_->stateNorm) norm.append(v);
  for (float v : last_->gate) gate.append(double(v));
  for (float v : last_->beta) beta.append(double(v));
  o["state_t"] = t;
  o["state_norm"] = norm;
  o["gate_exp_g"] = gate;
  o["beta"] = beta;
  return o;
}

QString GatedDeltaView::exportCsv() const {
  if (!last_ || last_->maps.size() < 2) return {};
  QString s = QStringLiteral("token,exp_g,beta\n");
  for (qsizetype t = 0; t < last_->gate.size(); ++t) {
    s += QStringLiteral("%1,%2,%3\n")
             .arg(t)
             .arg(double(last_->gate[t]), 0, 'g', 8)
             .arg(double(last_->beta[t]), 0, 'g', 8);
  }
  s += QStringLiteral("# state norm\ntoken,state_norm\n");
  for (qsizetype i = 0; i < last_->stateT.size(); ++i) {
    s += QStringLiteral("%1,%2\n").arg(last_->stateT[i]).arg(last_->stateNorm[i], 0, 'g', 10);
  }
  return s + mapToCsv(last_->maps[0]);
}

}  // namespace attnscope::gui
