// The what-if view. The worker runs the model twice per point (dense, then with the replacement in
// every layer) through attnscope::what_if, the function the CLI reports from, so the numbers here
// are the CLI's; this file only chooses the request and draws the answer.
#include "views/whatif_view.hpp"

#include <QHBoxLayout>
#include <QJsonArray>
#include <QSignalBlocker>
#include <QSplitter>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <climits>
#include <cmath>

#include "attnscope/whatif.hpp"

namespace attnscope::gui {
namespace {
QString qs(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

// Shape knobs (MLA's widths) are the model's own and form knobs do not change the answer, so
// neither is offered.
bool offered(const ParamSpec& p) {
  return !p.shape && !p.form;
}

const ParamSpec* findParam(VariantId id, const QString& key) {
  for (const ParamSpec& p : variant_info(id).params) {
    if (qs(p.key) == key) return &p;
  }
  return nullptr;
}

// The engine's defaults suit the synthetic explorer's short maps (a window of a few dozen keys);
// on text the knobs start where long-context papers do (resources/explorer/defaults.json).
AttentionProblem textDefaults(VariantId id) {
  return whatIfDefaults(id);
}

// "SWA", "MoBA": a short title that is one word is the variant's usual name; otherwise its
// registry name in capitals (when the short title is a phrase such as "Sliding window").
QString variantLabel(VariantId id) {
  const VariantInfo& info = variant_info(id);
  const QString shortTitle = qs(info.short_title);
  if (!shortTitle.isEmpty() && !shortTitle.contains(QLatin1Char(' '))) return shortTitle;
  return qs(info.name).toUpper();
}

QString knobName(const ParamSpec& p) {
  return qs(p.key).replace(QLatin1Char('_'), QLatin1Char(' '));
}

// "window 256, sinks 4"
QString knobText(const AttentionProblem& p) {
  QStringList parts;
  for (const ParamSpec& s : variant_info(p.variant).params) {
    if (!offered(s)) continue;
    const qint64 v = s.get(p);
    parts << (s.type == ParamSpec::Type::boolean
                  ? QStringLiteral("%1 %2").arg(knobName(s),
                                                v ? QStringLiteral("on") : QStringLiteral("off"))
                  : QStringLiteral("%1 %2").arg(knobName(s)).arg(v));
  }
  return parts.join(QStringLiteral(", "));
}

// The point's own knobs: the request's, with the swept one at the point's value.
AttentionProblem pointProblem(const ViewResult& r, int i) {
  AttentionProblem p = r.request.whatIf;
  if (const ParamSpec* s = findParam(p.variant, r.request.sweepKey)) s->set(p, r.whatIf[i].knob);
  return p;
}

QJsonValue jsonNumber(double v) {
  return std::isfinite(v) ? QJsonValue(v) : QJsonValue();
}

QString csvNumber(double v) {
  return std::isfinite(v) ? QString::number(v, 'g', 10) : QString();
}

QString pplText(double v) {
  if (!std::isfinite(v)) return QStringLiteral("–");
  return QString::number(v, 'f', v < 100 ? 2 : 1);
}

const QColor kLine(0x00, 0x72, 0xB2);  // the sweep chart's first colour (Okabe-Ito blue)
const QColor kMuted(0x55, 0x55, 0x55);
}  // namespace

WhatIfView::WhatIfView(QWidget* parent) : ResultView(parent) {
  for (const VariantInfo* v : what_if_variants()) problems_[int(v->id)] = textDefaults(v->id);

  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  variantCombo_ = new QComboBox;
  for (const VariantInfo* v : what_if_variants()) {
    variantCombo_->addItem(qs(v->title), qs(v->name));
    variantCombo_->setItemData(variantCombo_->count() - 1, qs(v->summary), Qt::ToolTipRole);
  }
  variantCombo_->setToolTip(
      tr("The attention that replaces dense attention in every layer, on each layer's own q, k "
         "and v. Nothing is retrained."));
  knobBox_ = new QWidget;
  knobLayout_ = new QHBoxLayout(knobBox_);
  knobLayout_->setContentsMargins(0, 0, 0, 0);
  sweepCombo_ = new QComboBox;
  sweepCombo_->setToolTip(
      tr("Run the model once per value of one knob and plot perplexity against sparsity. Each "
         "value is two forwards of the model."));
  valuesEdit_ = new QLineEdit;
  valuesEdit_->setPlaceholderText(tr("values, e.g. 64,128,256"));
  valuesEdit_->setToolTip(tr("Comma-separated whole numbers; press Enter to run them."));
  valuesEdit_->setMinimumWidth(160);
  bar->addWidget(new QLabel(tr("Attention:")));
  bar->addWidget(variantCombo_);
  bar->addWidget(knobBox_);
  bar->addSpacing(12);
  bar->addWidget(new QLabel(tr("Sweep:")));
  bar->addWidget(sweepCombo_);
  bar->addWidget(valuesEdit_, 1);
  layout->addLayout(bar);
  valuesNote_ = new QLabel;
  valuesNote_->setObjectName("whatIfValuesNote");
  valuesNote_->setStyleSheet(QStringLiteral("color: #c62828;"));
  valuesNote_->setWordWrap(true);
  valuesNote_->hide();
  layout->addWidget(valuesNote_);

  stack_ = new QStackedWidget;
  needModel_ = new NeedModelPage(
      tr("<b>The what-if view</b> runs your model with another attention (a sliding window, "
         "MoBA) in every layer and measures what it loses against dense attention."));
  resultPage_ = new QWidget;
  auto* page = new QVBoxLayout(resultPage_);
  page->setContentsMargins(0, 0, 0, 0);
  auto* top = new QHBoxLayout;
  summary_ = new QLabel;
  summary_->setObjectName("whatIfSummary");
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  pointCombo_ = new QComboBox;
  pointCombo_->setToolTip(tr("Which sweep point's numbers and recall the view shows."));
  top->addWidget(summary_, 1);
  top->addWidget(new QLabel(tr("Point:")));
  top->addWidget(pointCombo_);
  page->addLayout(top);

  figure_ = new QWidget;
  figure_->setObjectName("whatIfFigure");
  auto* figureLayout = new QHBoxLayout(figure_);
  figureLayout->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Horizontal);
  chart_ = new QChart;
  chart_->setTheme(QChart::ChartThemeLight);
  chart_->setAnimationOptions(QChart::NoAnimation);
  chart_->setLocalizeNumbers(false);
  chart_->setBackgroundRoundness(0);
  chart_->legend()->setAlignment(Qt::AlignBottom);
  chartView_ = new QChartView(chart_);
  chartView_->setRenderHint(QPainter::Antialiasing);
  chartView_->setMinimumSize(240, 200);
  chartView_->setToolTip(
      tr("Sparsity: the share of dense attention's query-key pairs the replacement skips on "
         "this text. Click a point to show its numbers and recall per head."));
  heatmap_ = new HeatmapWidget;
  heatmap_->setDiverging(false);
  heatmap_->setScaleMode(ScaleMode::linear);
  // Recall 0 is a head that lost all its mass, a value like any other, not a masked entry.
  heatmap_->setMaskZeros(false);
  heatmap_->setAxisTitles(tr("layer"), tr("head"), tr("recall"));
  heatmap_->setKeepAspect(false);
  heatmap_->setInteractive(false);
  heatmap_->setToolTip(
      tr("Per head, the share of its dense attention probability on keys the replacement still "
         "lets each query see, averaged over the text's queries; measured on each layer's own "
         "dense q, k, v."));
  split->addWidget(chartView_);
  split->addWidget(heatmap_);
  // Half each: the heatmap's size hint alone would squeeze the chart to a sliver.
  split->setSizes({500, 500});
  figureLayout->addWidget(split);
  page->addWidget(figure_, 1);
  stack_->addWidget(needModel_);
  stack_->addWidget(resultPage_);
  layout->addWidget(stack_, 1);

  connect(needModel_, &NeedModelPage::openModelRequested, this, &WhatIfView::openModelRequested);
  connect(heatmap_, &HeatmapWidget::hoverText, this, &ViewBase::hoverText);
  connect(variantCombo_, &QComboBox::currentIndexChanged, this, [this] {
    rebuildKnobs();
    refillSweep();
    changed();
  });
  connect(sweepCombo_, &QComboBox::currentIndexChanged, this, [this] {
    const QString key = sweepCombo_->currentData().toString();
    valuesEdit_->setEnabled(!key.isEmpty());
    valuesNote_->hide();
    for (const Knob& k : knobs_) {
      // The swept knob's value comes from the list; its field would only mislead.
      if (k.spin) k.spin->setEnabled(k.key != key);
    }
    sweepValues_.clear();
    if (const ParamSpec* p = findParam(currentVariant(), key)) {
      const QString text =
          defaultValues(key, p->min, p->max, p->get(problems_[int(currentVariant())]));
      valuesEdit_->setText(text);
      parseValues(text, p->min, p->max, sweepValues_);
    } else {
      valuesEdit_->clear();
    }
    changed();
  });
  connect(valuesEdit_, &QLineEdit::editingFinished, this, &WhatIfView::commitValues);
  connect(pointCombo_, &QComboBox::currentIndexChanged, this, [this] { showPoint(); });

  rebuildKnobs();
  refillSweep();
  stale_ = new StaleOverlay(this);
  setWorkload(workload_);
}

VariantId WhatIfView::currentVariant() const {
  VariantId id = what_if_variants().front()->id;
  variantFromName(variantCombo_->currentData().toString(), id);
  return id;
}

QSpinBox* WhatIfView::knobSpin(const QString& key) const {
  for (const Knob& k : knobs_) {
    if (k.key == key) return k.spin;
  }
  return nullptr;
}

QCheckBox* WhatIfView::knobCheck(const QString& key) const {
  for (const Knob& k : knobs_) {
    if (k.key == key) return k.check;
  }
  return nullptr;
}

QScatterSeries* WhatIfView::pointSeries(int i) const {
  return i >= 0 && i < pointSeries_.size() ? pointSeries_[i] : nullptr;
}

void WhatIfView::selectPoint(int i) {
  if (i >= 0 && i < pointCombo_->count()) pointCombo_->setCurrentIndex(i);
}

void WhatIfView::rebuildKnobs() {
  while (QLayoutItem* item = knobLayout_->takeAt(0)) {
    delete item->widget();
    delete item;
  }
  knobs_.clear();
  const VariantId id = currentVariant();
  const QString swept = sweepCombo_ ? sweepCombo_->currentData().toString() : QString();
  for (const ParamSpec& p : variant_info(id).params) {
    if (!offered(p)) continue;
    Knob k;
    k.key = qs(p.key);
    const qint64 value = p.get(problems_[int(id)]);
    if (p.type == ParamSpec::Type::boolean) {
      k.check = new QCheckBox(qs(p.label));
      k.check->setChecked(value != 0);
      k.check->setToolTip(qs(p.help));
      connect(k.check, &QCheckBox::toggled, this, [this, id, &p](bool on) {
        p.set(problems_[int(id)], on ? 1 : 0);
        changed();
      });
      knobLayout_->addWidget(k.check);
    } else {
      auto* label = new QLabel(qs(p.label) + QLatin1Char(':'));
      k.spin = new QSpinBox;
      k.spin->setObjectName(QStringLiteral("knob_") + k.key);
      k.spin->setRange(int(std::clamp<int64_t>(p.min, INT_MIN, INT_MAX)),
                       int(std::clamp<int64_t>(p.max, INT_MIN, INT_MAX)));
      k.spin->setValue(int(std::clamp<int64_t>(value, INT_MIN, INT_MAX)));
      k.spin->setToolTip(qs(p.help));
      // A typed number runs once it is complete, not at every digit.
      k.spin->setKeyboardTracking(false);
      k.spin->setEnabled(k.key != swept);
      connect(k.spin, &QSpinBox::valueChanged, this, [this, id, &p](int v) {
        p.set(problems_[int(id)], v);
        changed();
      });
      knobLayout_->addWidget(label);
      knobLayout_->addWidget(k.spin);
    }
    knobs_.append(k);
  }
}

void WhatIfView::refillSweep() {
  const QString previous = sweepCombo_->currentData().toString();
  {
    const QSignalBlocker block(sweepCombo_);
    sweepCombo_->clear();
    sweepCombo_->addItem(tr("no sweep"), QString());
    for (const ParamSpec& p : variant_info(currentVariant()).params) {
      if (offered(p) && p.type == ParamSpec::Type::integer) {
        sweepCombo_->addItem(qs(p.label), qs(p.key));
      }
    }
    sweepCombo_->setCurrentIndex(-1);
  }
  // Through the signal: the values field, the note and the knobs' enabled state follow the choice.
  const bool wasQuiet = quiet_;
  quiet_ = true;
  sweepCombo_->setCurrentIndex(std::max(0, sweepCombo_->findData(previous)));
  quiet_ = wasQuiet;
}

void WhatIfView::commitValues() {
  const ParamSpec* p = findParam(currentVariant(), sweepCombo_->currentData().toString());
  if (!p) return;
  QVector<qint64> values;
  const QString error = parseValues(valuesEdit_->text(), p->min, p->max, values);
  if (!error.isEmpty()) {
    // The last good list stays in the request: nothing runs until the list is fixed.
    valuesNote_->setText(
        tr("Sweep values: %1. The last valid list (%2) stays in use.").arg(error, [&] {
          QStringList s;
          for (qint64 v : sweepValues_) s << QString::number(v);
          return s.join(QLatin1Char(','));
        }()));
    valuesNote_->show();
    return;
  }
  valuesNote_->hide();
  if (values == sweepValues_) return;
  sweepValues_ = values;
  changed();
}

void WhatIfView::changed() {
  if (!quiet_) emit requestChanged();
}

QString WhatIfView::parseValues(const QString& text, qint64 min, qint64 max, QVector<qint64>& out) {
  // Each value is two forwards of the model: a long list is minutes, never a typo's worth.
  constexpr int kMaxValues = 32;
  out.clear();
  const QStringList parts = text.split(QLatin1Char(','));
  if (text.trimmed().isEmpty()) return tr("give at least one value");
  QVector<qint64> values;
  for (const QString& raw : parts) {
    const QString part = raw.trimmed();
    if (part.isEmpty()) return tr("an empty entry between commas");
    bool ok = false;
    const qint64 v = part.toLongLong(&ok, 10);
    if (!ok || part.startsWith(QLatin1Char('+'))) {
      return tr("'%1' is not a whole number").arg(part);
    }
    if (v < min || v > max) return tr("%1 is outside %2–%3").arg(v).arg(min).arg(max);
    if (values.contains(v)) return tr("%1 is listed twice").arg(v);
    values.append(v);
  }
  if (values.size() > kMaxValues) {
    return tr("%1 values; at most %2 (each runs the model twice)")
        .arg(values.size())
        .arg(kMaxValues);
  }
  out = values;
  return {};
}

QString WhatIfView::defaultValues(const QString& key, qint64 min, qint64 max, qint64 current) {
  QStringList out;
  if (key == QLatin1String("window")) {
    for (qint64 v = 64; v <= 4096; v *= 2) {
      if (v >= min && v <= max) out << QString::number(v);
    }
    return out.join(QLatin1Char(','));
  }
  // Powers of two from an eighth to eight times the knob's value: both ends of its effect.
  const qint64 c = std::max<qint64>(1, current);
  const qint64 lo = std::max<qint64>({1, min, c / 8}), hi = std::min(max, c * 8);
  for (qint64 v = 1; v <= hi; v *= 2) {
    if (v >= lo) out << QString::number(v);
  }
  if (out.isEmpty()) out << QString::number(std::clamp(current, min, max));
  return out.join(QLatin1Char(','));
}

QWidget* WhatIfView::figure() {
  return stack_->currentWidget() == resultPage_ ? figure_ : static_cast<QWidget*>(needModel_);
}

void WhatIfView::setWorkload(const Workload& w) {
  ResultView::setWorkload(w);
  stack_->setCurrentWidget(w.model ? resultPage_ : static_cast<QWidget*>(needModel_));
  for (QWidget* c :
       {static_cast<QWidget*>(variantCombo_), knobBox_, static_cast<QWidget*>(sweepCombo_)}) {
    c->setEnabled(bool(w.model));
  }
  valuesEdit_->setEnabled(w.model && !sweepCombo_->currentData().toString().isEmpty());
}

void WhatIfView::fillRequest(ViewRequest& r) const {
  r.view = ViewKind::whatif;
  r.whatIf = problems_.value(int(currentVariant()), textDefaults(currentVariant()));
  r.sweepKey = sweepCombo_->currentData().toString();
  r.sweepValues = r.sweepKey.isEmpty() ? QVector<qint64>{} : sweepValues_;
}

QString WhatIfView::pointLabel(const ViewResult& r, int i) const {
  const ViewResult::WhatIfPoint& pt = r.whatIf[i];
  if (const ParamSpec* s = findParam(r.request.whatIf.variant, r.request.sweepKey)) {
    return tr("%1 = %2 (sparsity %3 %)")
        .arg(knobName(*s))
        .arg(pt.knob)
        .arg(100 * pt.sparsity, 0, 'f', 0);
  }
  return knobText(pointProblem(r, i));
}

void WhatIfView::showResult(const ViewResultPtr& result) {
  const qint64 previousKnob =
      last_ && selectedPoint() >= 0 && selectedPoint() < last_->whatIf.size()
          ? last_->whatIf[selectedPoint()].knob
          : -1;
  ResultView::showResult(result);
  stale_->setLabel({});
  const ViewResult& r = *result;
  {
    const QSignalBlocker block(pointCombo_);
    pointCombo_->clear();
    int select = 0;
    for (int i = 0; i < r.whatIf.size(); ++i) {
      pointCombo_->addItem(pointLabel(r, i), i);
      if (r.whatIf[i].knob == previousKnob) select = i;
    }
    pointCombo_->setCurrentIndex(r.whatIf.isEmpty() ? -1 : select);
  }
  pointCombo_->setEnabled(r.whatIf.size() > 1);
  rebuildChart();
  chartView_->setVisible(r.whatIf.size() > 1);
  showPoint();
}

void WhatIfView::showPoint() {
  if (!last_) return;
  const ViewResult& r = *last_;
  const int i = pointCombo_->currentIndex();
  if (i < 0 || i >= r.whatIf.size()) {
    heatmap_->clearMap(r.note.isEmpty() ? tr("no what-if result") : r.note);
    summary_->setText(r.note);
    return;
  }
  const ViewResult::WhatIfPoint& pt = r.whatIf[i];
  const AttentionProblem p = pointProblem(r, i);
  const double change = 100.0 * (pt.ppl / pt.pplDense - 1.0);
  summary_->setText(
      tr("perplexity %1 with %2 %3 vs %4 dense (%5 %), KL %6 nats/token, sparsity "
         "%7 %, mean recall %8")
          .arg(pplText(pt.ppl), variantLabel(p.variant), knobText(p), pplText(pt.pplDense))
          .arg(std::isfinite(change) ? (change >= 0 ? QStringLiteral("+") : QString()) +
                                           QString::number(change, 'f', 1)
                                     : QStringLiteral("–"))
          .arg(pt.klMean, 0, 'g', 3)
          .arg(100 * pt.sparsity, 0, 'f', 0)
          .arg(pt.meanRecall, 0, 'f', 2));
  summary_->setToolTip(pt.variant);

  const int layers = std::max(1, r.layers);
  MapImage m;
  m.rows = layers;
  m.cols = int(pt.recall.size() / layers);
  m.region = {0, m.rows, 0, m.cols};
  m.title =
      tr("recall of dense attention mass with %1 %2").arg(variantLabel(p.variant), knobText(p));
  m.values.resize(m.rows * m.cols);
  for (int x = 0; x < m.values.size(); ++x) m.values[x] = float(pt.recall[x]);
  heatmap_->setExtent(m.rows, m.cols);
  heatmap_->setTitle(m.title);
  heatmap_->setMap(m);

  for (int j = 0; j < pointSeries_.size(); ++j) {
    pointSeries_[j]->setBrush(j == i ? QBrush(kLine) : QBrush(Qt::white));
  }
}

void WhatIfView::rebuildChart() {
  chart_->removeAllSeries();
  pointSeries_.clear();
  for (QAbstractAxis* a : chart_->axes()) {
    chart_->removeAxis(a);
    delete a;
  }
  chart_->setTitle({});
  if (!last_ || last_->whatIf.size() < 2) return;
  const ViewResult& r = *last_;
  const ParamSpec* swept = findParam(r.request.whatIf.variant, r.request.sweepKey);
  double xlo = 100, xhi = 0, ylo = INFINITY, yhi = -INFINITY;
  const double dense = r.whatIf.front().pplDense;
  for (const ViewResult::WhatIfPoint& pt : r.whatIf) {
    if (!std::isfinite(pt.ppl)) continue;
    xlo = std::min(xlo, 100 * pt.sparsity);
    xhi = std::max(xhi, 100 * pt.sparsity);
    ylo = std::min({ylo, pt.ppl, dense});
    yhi = std::max({yhi, pt.ppl, dense});
  }
  if (!(yhi >= ylo)) return;  // no finite perplexity: a one-token text has no next token
  const double xpad = std::max(2.0, 0.08 * (xhi - xlo));
  const double ypad = std::max(0.08 * (yhi - ylo), 0.01 * std::abs(yhi) + 1e-9);
  auto* x = new QValueAxis;
  x->setTitleText(tr("sparsity (%)"));
  x->setRange(std::max(0.0, xlo - xpad), std::min(100.0, xhi + xpad));
  x->setLabelFormat(QStringLiteral("%.0f"));
  auto* y = new QValueAxis;
  y->setTitleText(tr("perplexity"));
  y->setRange(ylo - ypad, yhi + ypad);
  y->setLabelFormat(QStringLiteral("%.3g"));
  chart_->addAxis(x, Qt::AlignBottom);
  chart_->addAxis(y, Qt::AlignLeft);
  chart_->setTitle(tr("Perplexity vs sparsity, %1 %2")
                       .arg(variantLabel(r.request.whatIf.variant),
                            swept ? knobName(*swept) : r.request.sweepKey));

  const auto attach = [&](QAbstractSeries* s) {
    chart_->addSeries(s);
    s->attachAxis(x);
    s->attachAxis(y);
  };
  auto* line = new QLineSeries;
  line->setName(tr("with %1").arg(variantLabel(r.request.whatIf.variant)));
  line->setPen(QPen(kLine, 2.0));
  // Along sparsity, so the line reads left to right whatever order the values were listed in.
  QVector<QPointF> ordered;
  for (const ViewResult::WhatIfPoint& pt : r.whatIf) {
    if (std::isfinite(pt.ppl)) ordered.append({100 * pt.sparsity, pt.ppl});
  }
  std::sort(ordered.begin(), ordered.end(),
            [](const QPointF& a, const QPointF& b) { return a.x() < b.x(); });
  line->append(ordered);
  attach(line);
  auto* base = new QLineSeries;
  base->setName(tr("dense (%1)").arg(pplText(dense)));
  base->setPen(QPen(kMuted, 1.4, Qt::DashLine));
  base->append(x->min(), dense);
  base->append(x->max(), dense);
  attach(base);
  for (int i = 0; i < r.whatIf.size(); ++i) {
    const ViewResult::WhatIfPoint& pt = r.whatIf[i];
    // One series per point: its label is its knob value (Qt 6.4 labels a series' points only by
    // their coordinates) and a click on it names the point.
    auto* s = new QScatterSeries;
    s->setMarkerShape(QScatterSeries::MarkerShapeCircle);
    s->setMarkerSize(11);
    s->setPen(QPen(kLine, 1.8));
    s->setBrush(Qt::white);
    if (std::isfinite(pt.ppl)) s->append(100 * pt.sparsity, pt.ppl);
    s->setPointLabelsFormat(QString::number(pt.knob));
    s->setPointLabelsVisible(true);
    s->setPointLabelsClipping(false);
    s->setPointLabelsColor(kMuted);
    attach(s);
    for (QLegendMarker* mk : chart_->legend()->markers(s)) mk->setVisible(false);
    connect(s, &QScatterSeries::clicked, this, [this, i] { selectPoint(i); });
    pointSeries_.append(s);
  }
}

void WhatIfView::applySettings(const QJsonObject& s) {
  const bool wasQuiet = quiet_;
  quiet_ = true;
  if (s.contains("variant")) {
    const int i = variantCombo_->findData(s.value("variant").toString());
    if (i >= 0) variantCombo_->setCurrentIndex(i);
  }
  for (const Knob& k : knobs_) {
    if (!s.contains(k.key)) continue;
    if (k.spin) k.spin->setValue(s.value(k.key).toInt(k.spin->value()));
    if (k.check) k.check->setChecked(s.value(k.key).toBool(k.check->isChecked()));
  }
  if (s.contains("sweep")) {
    const QString key = s.value("sweep").toString();
    const int i = key.isEmpty() || key == QLatin1String("none") ? 0 : sweepCombo_->findData(key);
    if (i >= 0) sweepCombo_->setCurrentIndex(i);
  }
  if (s.contains("values") && !sweepCombo_->currentData().toString().isEmpty()) {
    const QJsonValue v = s.value("values");
    QString text = v.toString();
    if (v.isArray()) {
      QStringList parts;
      for (const QJsonValue& e : v.toArray()) parts << QString::number(e.toInteger());
      text = parts.join(QLatin1Char(','));
    }
    valuesEdit_->setText(text);
    commitValues();
  }
  quiet_ = wasQuiet;
  changed();
}

QJsonObject WhatIfView::exportData() const {
  QJsonObject o;
  if (!last_ || last_->whatIf.isEmpty()) return o;
  const ViewResult& r = *last_;
  const int layers = std::max(1, r.layers);
  QJsonObject knobs;
  for (const ParamSpec& p : variant_info(r.request.whatIf.variant).params) {
    if (offered(p)) knobs[qs(p.key)] = qint64(p.get(r.request.whatIf));
  }
  QJsonArray points;
  for (const ViewResult::WhatIfPoint& pt : r.whatIf) {
    const int heads = int(pt.recall.size() / layers);
    QJsonArray recall;
    for (int l = 0; l < layers; ++l) {
      QJsonArray row;
      for (int h = 0; h < heads; ++h) row.append(jsonNumber(pt.recall[l * heads + h]));
      recall.append(row);
    }
    points.append(QJsonObject{{"knob", pt.knob},
                              {"variant", pt.variant},
                              {"ppl", jsonNumber(pt.ppl)},
                              {"ppl_dense", jsonNumber(pt.pplDense)},
                              {"kl_mean", jsonNumber(pt.klMean)},
                              {"sparsity", jsonNumber(pt.sparsity)},
                              {"mean_recall", jsonNumber(pt.meanRecall)},
                              {"recall", recall}});  // recall[layer][head]
  }
  o["variant"] = variantName(r.request.whatIf.variant);
  // The request's knobs: without a sweep a point's "knob" is 0, so these say what ran.
  o["knobs"] = knobs;
  o["sweep_key"] = r.request.sweepKey;
  o["points"] = points;
  return o;
}

// Two sections, so each is one plain table: the points (one line each), then the recall in long
// format (one line per point, layer and head) — a tidy table that needs no knowledge of the
// model's head count to read, and joins the first on `knob`.
QString WhatIfView::exportCsv() const {
  if (!last_ || last_->whatIf.isEmpty()) return {};
  const ViewResult& r = *last_;
  const int layers = std::max(1, r.layers);
  QString s = QStringLiteral("# what-if: %1 (%2), sweep: %3\n")
                  .arg(variantName(r.request.whatIf.variant), knobText(r.request.whatIf),
                       r.request.sweepKey.isEmpty() ? QStringLiteral("none") : r.request.sweepKey);
  s += QStringLiteral("knob,sparsity,ppl,ppl_dense,kl_mean,mean_recall\n");
  for (const ViewResult::WhatIfPoint& pt : r.whatIf) {
    s += QStringLiteral("%1,%2,%3,%4,%5,%6\n")
             .arg(pt.knob)
             .arg(csvNumber(pt.sparsity), csvNumber(pt.ppl), csvNumber(pt.pplDense),
                  csvNumber(pt.klMean), csvNumber(pt.meanRecall));
  }
  s += QStringLiteral("\n# recall of dense attention mass per point, layer and head\n");
  s += QStringLiteral("knob,layer,head,recall\n");
  for (const ViewResult::WhatIfPoint& pt : r.whatIf) {
    const int heads = int(pt.recall.size() / layers);
    for (int l = 0; l < layers; ++l) {
      for (int h = 0; h < heads; ++h) {
        s += QStringLiteral("%1,%2,%3,%4\n")
                 .arg(pt.knob)
                 .arg(l)
                 .arg(h)
                 .arg(csvNumber(pt.recall[l * heads + h]));
      }
    }
  }
  return s;
}

}  // namespace attnscope::gui
