// Throughput view. Rates come from the engine's counters and its own run time, the roof from the
// device's measured peaks; the UI thread only draws. Scrolling charts keep the last minute, the
// runner keeps every sample of the run for export.
#include "throughput_view.hpp"

#include <QCoreApplication>
#include <QCursor>
#include <QElapsedTimer>
#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QShowEvent>
#include <QToolTip>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "attnscope/calibrate.hpp"
#include "live/backend_picker.hpp"
#include "live/machine.hpp"

namespace attnscope::gui {
namespace {
constexpr double kWindowSeconds = 60;

QChartView* viewOf(QChart* chart, int minHeight) {
  auto* v = new QChartView(chart);
  v->setRenderHint(QPainter::Antialiasing);
  v->setMinimumHeight(minHeight);
  return v;
}

// The engine's one JSON form of a peak (calibrate.hpp), plus the line the view shows.
QJsonObject peakJson(const DevicePeak& p) {
  const std::string text = peak_to_json(p).dump();
  QJsonObject o = QJsonDocument::fromJson(QByteArray::fromStdString(text)).object();
  o["describe"] = QString::fromStdString(describe(p));
  return o;
}

double roofOf(const DevicePeak& p, double intensity) {
  return std::min(p.gflops, intensity * p.gbps);
}

// WCAG relative luminance and contrast: a faded point must stay visible on the chart's background
// in either palette (3:1 is the guideline's minimum for graphics).
double luminance(const QColor& c) {
  const auto lin = [](double v) {
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF());
}

double contrast(const QColor& a, const QColor& b) {
  const double la = luminance(a), lb = luminance(b);
  return (std::max(la, lb) + 0.05) / (std::min(la, lb) + 0.05);
}

// The colours a chart's background shows: its brush's, or every stop of its gradient (the dark
// chart theme paints a gradient).
QVector<QColor> backgroundColors(const QChart* chart) {
  const QBrush b = chart->backgroundBrush();
  QVector<QColor> out;
  if (const QGradient* g = b.gradient()) {
    for (const auto& stop : g->stops()) out.append(stop.second);
  }
  if (out.isEmpty()) out.append(b.style() == Qt::NoBrush ? QColor(Qt::white) : b.color());
  return out;
}

// `c`, lightened (dark background) or darkened (light one) until it reaches a 3:1 contrast with
// every background colour.
QColor visibleOn(QColor out, const QVector<QColor>& backgrounds) {
  double bgLum = 0;
  for (const QColor& b : backgrounds) bgLum += luminance(b) / backgrounds.size();
  const bool dark = bgLum < 0.18;
  for (int i = 0; i < 40; ++i) {
    double worst = 1e9;
    for (const QColor& b : backgrounds) worst = std::min(worst, contrast(out, b));
    if (worst >= 3.0) break;
    // Towards white or black by a tenth of the way each step: converges for any hue.
    const QColor target = dark ? QColor(Qt::white) : QColor(Qt::black);
    out = QColor::fromRgbF(0.9f * out.redF() + 0.1f * target.redF(),
                           0.9f * out.greenF() + 0.1f * target.greenF(),
                           0.9f * out.blueF() + 0.1f * target.blueF());
  }
  return out;
}

// `c` faded toward the background, then made visible on it. Opaque: an alpha-faded point vanishes
// into a dark background.
QColor fadedOn(const QColor& c, const QVector<QColor>& backgrounds) {
  const QColor& bg = backgrounds.front();
  return visibleOn(
      QColor::fromRgbF(0.6f * c.redF() + 0.4f * bg.redF(), 0.6f * c.greenF() + 0.4f * bg.greenF(),
                       0.6f * c.blueF() + 0.4f * bg.blueF()),
      backgrounds);
}

QString mib(double bytes) {
  return bytes >= (1 << 20) ? QStringLiteral("%1 MiB").arg(bytes / (1 << 20), 0, 'f', 1)
                            : QStringLiteral("%1 KiB").arg(bytes / 1024, 0, 'f', 0);
}
}  // namespace

ThroughputView::ThroughputView(QWidget* parent) : LiveView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  mode_ = new QComboBox;
  mode_->addItem(tr("Prefill loop (Backend::run)"), int(LoopMode::prefill));
  mode_->addItem(tr("Decode loop (DecodeSession::step)"), int(LoopMode::decode));
  mode_->setToolTip(
      tr("Prefill repeats the workload's whole problem; decode steps a batch of "
         "the workload's batch size, each at the workload's kv length, one token "
         "at a time through the paged KV cache."));
  backend_ = new QComboBox;
  fillBackendCombo(backend_);
  // Long entries ("cuda (unavailable)", the decode loop's name) must not set the window's minimum
  // width: the combos may shrink and elide (the full text is in the drop-down).
  for (QComboBox* c : {mode_, backend_}) {
    c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    c->setMinimumContentsLength(12);
  }
  decodeTokens_ = new QSpinBox;
  decodeTokens_->setRange(1, 100000);
  decodeTokens_->setValue(128);
  decodeTokens_->setPrefix(tr("+"));
  decodeTokens_->setSuffix(tr(" tokens"));
  decodeTokens_->setToolTip(
      tr("Decode: tokens each sequence adds before the session starts "
         "over (its prefill is not timed)."));
  start_ = new QPushButton(tr("Start"));
  stop_ = new QPushButton(tr("Stop"));
  recalibrate_ = new QPushButton(tr("Recalibrate"));
  recalibrate_->setToolTip(
      tr("Measure the device's GEMM and copy peaks again (stop the loop "
         "first); the result is cached per device."));
  // Start and Stop come first, so that no option that appears, disappears or changes width moves
  // them; the decode-only field keeps its room while hidden for the same reason.
  bar->addWidget(start_);
  bar->addWidget(stop_);
  bar->addSpacing(12);
  bar->addWidget(new QLabel(tr("Loop:")));
  bar->addWidget(mode_);
  bar->addWidget(new QLabel(tr("Backend:")));
  bar->addWidget(backend_);
  bar->addWidget(decodeTokens_);
  QSizePolicy keepRoom = decodeTokens_->sizePolicy();
  keepRoom.setRetainSizeWhenHidden(true);
  decodeTokens_->setSizePolicy(keepRoom);
  bar->addWidget(recalibrate_);
  bar->addStretch(1);
  layout->addLayout(bar);
  calibration_ = new QLabel;
  calibration_->setWordWrap(true);
  calibration_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(calibration_);
  status_ = new QLabel;
  status_->setWordWrap(true);
  layout->addWidget(status_);
  error_ = new QLabel;
  error_->setObjectName("throughputError");
  error_->setStyleSheet("color: #c0392b;");
  error_->setWordWrap(true);
  layout->addWidget(error_);

  auto* liveRow = new QHBoxLayout;
  const auto makeLive = [&](Live& l, const QString& title, const QString& unit) {
    l.chart = new QChart;
    l.chart->setTitle(title);
    l.series = new QLineSeries;
    l.x = new QValueAxis;
    l.y = new QValueAxis;
    l.x->setTitleText(tr("seconds"));
    l.x->setRange(0, kWindowSeconds);
    l.x->setLabelFormat("%.0f");
    l.y->setTitleText(unit);
    l.y->setLabelFormat("%.3g");
    l.y->setRange(0, 1);
    l.chart->addAxis(l.x, Qt::AlignBottom);
    l.chart->addAxis(l.y, Qt::AlignLeft);
    l.chart->addSeries(l.series);
    l.series->attachAxis(l.x);
    l.series->attachAxis(l.y);
    l.chart->legend()->hide();
    l.chart->setMargins(QMargins(2, 2, 2, 2));
    liveRow->addWidget(viewOf(l.chart, 170));
  };
  makeLive(tokens_, tr("Tokens per second"), tr("tokens/s"));
  makeLive(gflops_, tr("Compute"), tr("GFLOP/s"));
  makeLive(gbps_, tr("Memory traffic (cost model)"), tr("GB/s"));
  layout->addLayout(liveRow, 2);

  roofChart_ = new QChart;
  roofChart_->setTitle(tr("Roofline"));
  roofX_ = new QLogValueAxis;
  roofX_->setBase(10);
  roofX_->setTitleText(tr("arithmetic intensity (FLOP / byte)"));
  roofX_->setLabelFormat("%.3g");
  roofX_->setRange(0.01, 1000);
  roofX_->setMinorTickCount(0);
  roofY_ = new QLogValueAxis;
  roofY_->setBase(10);
  roofY_->setTitleText(tr("GFLOP/s"));
  roofY_->setLabelFormat("%.3g");
  roofY_->setRange(0.1, 1000);
  roofY_->setMinorTickCount(0);
  roofChart_->addAxis(roofX_, Qt::AlignBottom);
  roofChart_->addAxis(roofY_, Qt::AlignLeft);
  roof_ = new QLineSeries;
  roof_->setName(tr("memory roof: min(peak, I × DRAM bandwidth)"));
  cacheRoof_ = new QLineSeries;
  cacheRoof_->setName(tr("cache roof: working sets that fit in the last-level cache"));
  currentSeries_ = new QScatterSeries;
  currentSeries_->setName(tr("this run"));
  currentSeries_->setMarkerSize(13);
  currentSeries_->setPointLabelsVisible(true);
  currentSeries_->setPointLabelsClipping(false);
  // A point above its roof is not an achievement: the roof was measured low (a busy calibration)
  // or the counters overstate the work. It gets its own hollow marker and legend entry.
  aboveSeries_ = new QScatterSeries;
  aboveSeries_->setName(tr("above its roof: a measurement problem"));
  aboveSeries_->setMarkerShape(QScatterSeries::MarkerShapeRectangle);
  aboveSeries_->setMarkerSize(15);
  aboveSeries_->setPointLabelsVisible(true);
  aboveSeries_->setPointLabelsClipping(false);
  for (QXYSeries* s :
       std::initializer_list<QXYSeries*>{roof_, cacheRoof_, currentSeries_, aboveSeries_}) {
    roofChart_->addSeries(s);
    s->attachAxis(roofX_);
    s->attachAxis(roofY_);
  }
  roofChart_->legend()->setAlignment(Qt::AlignRight);
  roofChart_->setMargins(QMargins(2, 2, 2, 2));
  auto* roofRow = new QHBoxLayout;
  roofRow->addWidget(viewOf(roofChart_, 260), 1);
  roofPercent_ = new QLabel;
  roofPercent_->setWordWrap(true);
  roofPercent_->setMinimumWidth(190);
  roofPercent_->setMaximumWidth(240);
  roofPercent_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  roofPercent_->setTextFormat(Qt::RichText);
  roofRow->addWidget(roofPercent_);
  layout->addLayout(roofRow, 3);

  const auto tipAt = [this](const QPointF& at, bool state) {
    if (!state) {
      QToolTip::hideText();
      return;
    }
    // The point under the cursor, by distance on the log axes.
    QVector<RooflinePoint> all = history_;
    if (current_) all.append(*current_);
    const RooflinePoint* best = nullptr;
    double bestD = 1e300;
    for (const RooflinePoint& r : all) {
      if (r.intensity <= 0 || r.gflops <= 0) continue;
      const double d = std::hypot(std::log10(r.intensity / at.x()), std::log10(r.gflops / at.y()));
      if (d < bestD) bestD = d, best = &r;
    }
    if (best) QToolTip::showText(QCursor::pos(), placementText(*best));
  };
  connect(currentSeries_, &QScatterSeries::hovered, this, tipAt);
  connect(aboveSeries_, &QScatterSeries::hovered, this, tipAt);
  connect(start_, &QPushButton::clicked, this, &ThroughputView::start);
  connect(stop_, &QPushButton::clicked, this, &ThroughputView::stop);
  connect(recalibrate_, &QPushButton::clicked, this, &ThroughputView::recalibrate);
  connect(mode_, &QComboBox::currentIndexChanged, this, [this] {
    decodeTokens_->setVisible(LoopMode(mode_->currentData().toInt()) == LoopMode::decode);
  });
  connect(backend_, &QComboBox::currentIndexChanged, this, [this] {
    updateRoof();
    if (shownOnce_ && !peak() && !runner_.running()) {
      runner_.calibrate(backend_->currentData(Qt::UserRole).toString());
    }
  });
  connect(&runner_, &ThroughputRunner::sampleReady, this, &ThroughputView::onSample);
  connect(&runner_, &ThroughputRunner::stopped, this, &ThroughputView::onStopped);
  connect(&runner_, &ThroughputRunner::calibrationStarted, this, [this](const QString& b) {
    calibration_->setText(tr("Calibrating %1… (a large GEMM and a streaming copy)").arg(b));
    updateButtons();
  });
  connect(&runner_, &ThroughputRunner::calibrated, this, [this] {
    updateRoof();
    recheckIfAbove();
    updatePoints();
    updateButtons();
  });
  connect(&runner_, &ThroughputRunner::calibrationFailed, this, [this](const QString& m) {
    calibration_->setText(tr("Calibration failed: %1").arg(m));
    updateButtons();
  });
  decodeTokens_->setVisible(false);
  calibration_->setText(tr("Device peaks are measured when this view is first shown."));
  updateButtons();
  updatePoints();
}

ThroughputView::~ThroughputView() {
  runner_.stop();
}

void ThroughputView::setWorkload(const Workload& w) {
  ViewBase::setWorkload(w);
  const QString backend = resolvedBackend(w);
  if (backend != lastBackend_ && !runner_.running()) selectBackend(backend_, backend);
  lastBackend_ = backend;
  if (!runner_.running()) {
    status_->setText(tr("Runs %1 (the workload panel's problem; inputs from its pattern and "
                        "seed).")
                         .arg(QString::fromStdString(w.problem.describe())));
  }
}

void ThroughputView::applySettings(const QJsonObject& s) {
  if (s.contains("mode")) {
    mode_->setCurrentIndex(s.value("mode").toString() == "decode" ? 1 : 0);
  }
  if (s.contains("decode_tokens")) decodeTokens_->setValue(s.value("decode_tokens").toInt());
}

ThroughputConfig ThroughputView::config() const {
  ThroughputConfig c;
  c.mode = LoopMode(mode_->currentData().toInt());
  c.workload = workload_;
  c.backend = backend_->currentData(Qt::UserRole).toString();
  c.decodeTokens = decodeTokens_->value();
  return c;
}

std::optional<DevicePeak> ThroughputView::peak() const {
  return runner_.peak(backend_->currentData(Qt::UserRole).toString());
}

std::optional<double> ThroughputView::roofAt(double intensity) const {
  const auto p = peak();
  if (!p || p->gflops <= 0 || p->gbps <= 0) return std::nullopt;
  return roofOf(*p, intensity);
}

std::optional<RoofPlacement> ThroughputView::placementOf(const RooflinePoint& point) const {
  const auto p = point.backend.isEmpty() ? peak() : runner_.peak(point.backend);
  if (!p || p->gflops <= 0 || p->gbps <= 0 || point.intensity <= 0) return std::nullopt;
  return place_on_roofline(*p, point.intensity, point.gflops, point.workingSetBytes);
}

QString ThroughputView::placementText(const RooflinePoint& r) const {
  QString t = tr("%1: intensity %2 FLOP/B, %3 GFLOP/s, working set %4")
                  .arg(r.label)
                  .arg(r.intensity, 0, 'g', 3)
                  .arg(r.gflops, 0, 'g', 4)
                  .arg(mib(r.workingSetBytes));
  const auto pl = placementOf(r);
  if (!pl) return t;
  t += tr("\n%1 roof: %2 GFLOP/s (%3 % of it)")
           .arg(pl->roof == Roof::cache ? tr("Cache") : tr("Memory (DRAM)"))
           .arg(pl->roof_gflops, 0, 'g', 4)
           .arg(100 * pl->fraction, 0, 'f', 1);
  if (pl->above) {
    t +=
        tr("\nAbove its roof: a measurement problem, not an achievement (the roof was measured "
           "low, e.g. while the machine was busy, or the counters overstate the work).");
  }
  return t;
}

// A point above its roof: the remembered roof may be too low (measured while the machine was
// busy), so it is measured again, once per backend and session; the calibration runs on the
// loop's thread, i.e. when the loop stops. A point still above the new roof stays flagged.
void ThroughputView::recheckIfAbove() {
  if (!current_) return;
  const auto pl = placementOf(*current_);
  if (!pl || !pl->above) return;
  const QString backend = current_->backend;
  if (rechecked_.contains(backend)) return;
  rechecked_.insert(backend);
  runner_.calibrate(backend, /*remeasure=*/true);
  calibration_->setText(
      tr("A run landed above the roof (%1 % of it): the roof is measured again when this loop "
         "stops; until then the point is flagged as a measurement problem.")
          .arg(100 * pl->fraction, 0, 'f', 0));
}

QString ThroughputView::runLabel() const {
  return tr("%1 · %2").arg(variantName(runConfig_.workload.problem.variant),
                           loopModeName(runConfig_.mode));
}

void ThroughputView::start() {
  if (runner_.running()) return;
  const ThroughputConfig c = config();
  // A workload that cannot run says so at once, before a calibration it would wait behind.
  if (const auto why = c.workload.problem.validate()) {
    error_->setText(QString::fromStdString(*why));
    updateButtons();
    return;
  }
  if (!runner_.peak(c.backend) && !runner_.calibrating()) runner_.calibrate(c.backend);
  if (current_) history_.append(*current_);  // the previous run fades into the history
  current_.reset();
  runConfig_ = c;
  runLabel_ = runLabel();
  runFlops_ = runBytes_ = runSeconds_ = 0;
  runRuns_ = 0;
  for (Live* l : {&tokens_, &gflops_, &gbps_}) {
    l->series->clear();
    l->x->setRange(0, kWindowSeconds);
    l->y->setRange(0, 1);
  }
  error_->clear();
  status_->setText(tr("Running %1 on %2: %3…")
                       .arg(runLabel_, liveBackendName(c.backend),
                            QString::fromStdString(c.workload.problem.describe())));
  runner_.start(c);
  updatePoints();
  updateButtons();
}

void ThroughputView::stop() {
  runner_.stop();
}

void ThroughputView::recalibrate() {
  if (runner_.running()) return;
  runner_.calibrate(backend_->currentData(Qt::UserRole).toString(), true);
}

void ThroughputView::showEvent(QShowEvent* e) {
  ViewBase::showEvent(e);
  if (!shownOnce_) {
    shownOnce_ = true;
    if (!peak() && !runner_.calibrating()) {
      runner_.calibrate(backend_->currentData(Qt::UserRole).toString());
    }
  }
}

void ThroughputView::onSample(const ThroughputSample& s) {
  runFlops_ += s.flops;
  runBytes_ += s.bytes;
  runSeconds_ += s.seconds;
  runRuns_ += s.runs;
  const double t0 = std::max(0.0, s.t - kWindowSeconds);
  const auto push = [&](Live& l, double v) {
    l.series->append(s.t, v);
    while (l.series->count() > 0 && l.series->at(0).x() < t0 - 1) l.series->remove(0);
    double hi = 0;
    for (const QPointF& p : l.series->points()) hi = std::max(hi, p.y());
    l.x->setRange(t0, std::max(10.0, s.t));  // grows to a minute, then scrolls
    l.y->setRange(0, hi > 0 ? hi * 1.1 : 1);
    l.y->applyNiceNumbers();
  };
  push(tokens_, s.tokensPerSecond);
  push(gflops_, s.gflops);
  push(gbps_, s.gbps);
  if (runSeconds_ > 0 && runBytes_ > 0) {
    current_ = RooflinePoint{runLabel_, runFlops_ / runBytes_, runFlops_ / runSeconds_ * 1e-9,
                             runRuns_ > 0 ? runBytes_ / double(runRuns_) : 0,
                             liveBackendName(runConfig_.backend)};
  }
  recheckIfAbove();
  status_->setText(
      tr("%1 on %2 · %3 · %4 s · last sample: %5 tokens/s, %6 GFLOP/s, %7 GB/s "
         "(%8 runs)")
          .arg(runLabel_,
               runner_.device().isEmpty() ? liveBackendName(runConfig_.backend) : runner_.device(),
               QString::fromStdString(runConfig_.workload.problem.describe()))
          .arg(s.t, 0, 'f', 1)
          .arg(s.tokensPerSecond, 0, 'g', 4)
          .arg(s.gflops, 0, 'g', 4)
          .arg(s.gbps, 0, 'g', 4)
          .arg(s.runs));
  updatePoints();
}

void ThroughputView::onStopped(bool cancelled, const QString& error) {
  if (!error.isEmpty()) error_->setText(error);
  status_->setText(
      error.isEmpty()
          ? tr("Stopped %1 after %2 samples.").arg(runLabel_).arg(runner_.samples().size())
          : tr("The loop stopped with an error."));
  updateButtons();
  updatePoints();
}

void ThroughputView::updateButtons() {
  const bool running = runner_.running();
  start_->setEnabled(!running);
  stop_->setEnabled(running);
  recalibrate_->setEnabled(!running && !runner_.calibrating());
  mode_->setEnabled(!running);
  backend_->setEnabled(!running);
  decodeTokens_->setEnabled(!running);
}

void ThroughputView::updateRoof() {
  roof_->clear();
  const auto p = peak();
  if (!p) {
    if (!runner_.calibrating()) calibration_->setText(tr("No device peak measured yet."));
    return;
  }
  QString text =
      tr("Peak%1: %2")
          .arg(p->cached ? tr(" (cached)") : QString(), QString::fromStdString(describe(*p)));
  if (!p->reliable) {
    text +=
        tr("\nUnreliable: other work kept the calibration waiting for a CPU, so this roof is "
           "what a busy machine did. It is used for this session only and not remembered; "
           "press Recalibrate when the machine is quiet.");
  }
  calibration_->setText(text);
  // How it was measured, for whoever quotes "% of peak".
  QStringList how{tr("GEMM: %1").arg(QString::fromStdString(p->gemm)),
                  tr("DRAM: %1").arg(QString::fromStdString(p->copy))};
  if (!p->cache_copy.empty()) how << tr("Cache: %1").arg(QString::fromStdString(p->cache_copy));
  if (!p->contention.empty()) {
    how << tr("Contention: %1").arg(QString::fromStdString(p->contention));
  }
  calibration_->setToolTip(how.join('\n'));
  updatePoints();
}

void ThroughputView::updatePoints() {
  // Axis ranges that hold the roof's ridge and every point.
  const auto p = peak();
  double xlo = 0.01, xhi = 1000, ylo = 0.1, yhi = 1000;
  QVector<RooflinePoint> all = history_;
  if (current_) all.append(*current_);
  if (p && p->gflops > 0 && p->gbps > 0) {
    const double ridge = p->gflops / p->gbps;
    xlo = std::min(xlo, ridge / 100);
    xhi = std::max(xhi, ridge * 100);
    yhi = p->gflops * 3;
    ylo = std::min(p->gflops / 1e4, yhi / 1e4);
    if (p->cache_gbps > p->gbps) xlo = std::min(xlo, p->gflops / p->cache_gbps / 100);
  }
  for (const RooflinePoint& r : all) {
    if (r.intensity > 0) {
      xlo = std::min(xlo, r.intensity / 3);
      xhi = std::max(xhi, r.intensity * 3);
    }
    if (r.gflops > 0) {
      ylo = std::min(ylo, r.gflops / 3);
      yhi = std::max(yhi, r.gflops * 3);
    }
  }
  const auto decade = [](double v, bool up) {
    return std::pow(10.0, up ? std::ceil(std::log10(v)) : std::floor(std::log10(v)));
  };
  roofX_->setRange(decade(xlo, false), decade(xhi, true));
  roofY_->setRange(decade(ylo, false), decade(yhi, true));

  roof_->clear();
  if (p && p->gflops > 0 && p->gbps > 0) {
    const double a = roofX_->min(), b = roofX_->max(), ridge = p->gflops / p->gbps;
    roof_->append(a, roofOf(*p, a));
    if (ridge > a && ridge < b) roof_->append(ridge, p->gflops);
    roof_->append(b, roofOf(*p, b));
  }
  roof_->setName(p && !p->reliable ? tr("memory roof (unreliable: measured while busy)")
                                   : tr("memory roof: min(peak, I × DRAM bandwidth)"));
  cacheRoof_->clear();
  if (p && p->gflops > 0 && p->cache_gbps > p->gbps) {
    const double a = roofX_->min(), b = roofX_->max(), ridge = p->gflops / p->cache_gbps;
    cacheRoof_->append(a, std::min(p->gflops, a * p->cache_gbps));
    if (ridge > a && ridge < b) cacheRoof_->append(ridge, p->gflops);
    cacheRoof_->append(b, std::min(p->gflops, b * p->cache_gbps));
    cacheRoof_->setName(
        tr("cache roof: working sets ≤ %1 (last-level cache)").arg(mib(double(p->cache_bytes))));
  }

  // A point above its roof is drawn only as a flagged one, never as a run's achievement.
  aboveSeries_->clear();
  const auto isAbove = [this](const RooflinePoint& r) {
    const auto pl = placementOf(r);
    return pl && pl->above;
  };
  currentSeries_->clear();
  if (current_ && current_->intensity > 0 && current_->gflops > 0) {
    (isAbove(*current_) ? aboveSeries_ : currentSeries_)
        ->append(current_->intensity, current_->gflops);
    currentSeries_->setPointLabelsFormat(current_->label);
    currentSeries_->setName(runner_.running() ? tr("this run: %1").arg(current_->label)
                                              : tr("last run: %1").arg(current_->label));
  }
  for (QScatterSeries* s : historySeries_) s->clear();
  for (const RooflinePoint& r : history_) {
    if (r.intensity > 0 && r.gflops > 0 && isAbove(r)) {
      aboveSeries_->append(r.intensity, r.gflops);
      continue;
    }
    QScatterSeries*& s = historySeries_[r.label];
    if (!s) {
      s = new QScatterSeries;
      s->setName(tr("earlier: %1").arg(r.label));
      s->setMarkerSize(9);
      s->setPointLabelsVisible(true);
      s->setPointLabelsFormat(r.label);
      s->setPointLabelsClipping(false);
      roofChart_->addSeries(s);
      s->attachAxis(roofX_);
      s->attachAxis(roofY_);
    }
    if (r.intensity > 0 && r.gflops > 0) s->append(r.intensity, r.gflops);
  }
  restyle();

  QString text;
  if (current_) {
    text = tr("<b>%1</b><br>intensity %2 FLOP/B<br>%3 GFLOP/s")
               .arg(current_->label)
               .arg(current_->intensity, 0, 'g', 3)
               .arg(current_->gflops, 0, 'g', 4);
    if (const auto pl = placementOf(*current_)) {
      const double bandwidth = pl->bandwidth_gbps;
      const bool memoryBound = p && current_->intensity < p->gflops / bandwidth;
      text += tr("<br><br><span style='font-size:x-large'><b>%1%</b></span> of the %2 roof "
                 "(%3 GFLOP/s)<br>working set %4: %5<br>%6")
                  .arg(100 * pl->fraction, 0, 'f', 1)
                  .arg(pl->roof == Roof::cache ? tr("cache") : tr("memory"))
                  .arg(pl->roof_gflops, 0, 'g', 4)
                  .arg(mib(current_->workingSetBytes), pl->roof == Roof::cache
                                                           ? tr("fits in the last-level cache")
                                                           : tr("streams from DRAM"))
                  .arg(memoryBound ? tr("bandwidth bound: left of the ridge")
                                   : tr("compute bound: right of the ridge"));
      if (pl->above) {
        text += tr("<br><br><b>Above its roof: a measurement problem</b>, not an achievement "
                   "(the roof was measured low, e.g. on a busy machine, or the counters "
                   "overstate the work).%1")
                    .arg(rechecked_.contains(current_->backend) && !runner_.calibrating()
                             ? tr(" The roof was measured again and the point is still above.")
                             : tr(" The roof is measured again when the loop stops."));
      }
      if (p && !p->reliable) {
        text +=
            tr("<br><br>The roof itself is unreliable (calibrated while the machine was "
               "busy).");
      }
    } else {
      text += tr("<br><br>% of the roof: waiting for the device peak");
    }
  } else {
    text = tr("Start a loop to place it on the roofline.");
  }
  roofPercent_->setText(text);
}

// Colours follow the chart's own background (its theme), not only the palette: the main window
// switches both, and every mark must stay visible on either.
void ThroughputView::restyle() {
  const QVector<QColor> bgs = backgroundColors(roofChart_);
  const QColor text = visibleOn(palette().color(QPalette::WindowText), bgs);
  const auto p = peak();
  roof_->setPen(QPen(text, 2.5, p && !p->reliable ? Qt::DashLine : Qt::SolidLine));
  cacheRoof_->setPen(QPen(visibleOn(QColor(0, 150, 136), bgs), 2, Qt::DotLine));
  const QColor red = visibleOn(QColor(214, 39, 40), bgs);
  currentSeries_->setColor(red);
  currentSeries_->setBorderColor(red.darker(140));
  currentSeries_->setPointLabelsColor(text);
  // Hollow squares in a warning colour: nothing like a run's filled dot.
  const QColor warn = visibleOn(QColor(230, 120, 0), bgs);
  aboveSeries_->setBrush(Qt::NoBrush);
  aboveSeries_->setPen(QPen(warn, 2.5));
  aboveSeries_->setPointLabelsColor(warn);
  int i = 0;
  static const QColor colors[] = {
      {31, 119, 180}, {44, 160, 44}, {148, 103, 189}, {255, 127, 14}, {140, 86, 75}};
  for (QScatterSeries* s : historySeries_) {
    const QColor c = fadedOn(colors[i++ % 5], bgs);
    s->setColor(c);
    s->setBorderColor(c);
    s->setPointLabelsColor(fadedOn(text, bgs));
  }
}

void ThroughputView::changeEvent(QEvent* e) {
  ViewBase::changeEvent(e);
  if (e->type() == QEvent::PaletteChange || e->type() == QEvent::ApplicationPaletteChange) {
    restyle();
  }
}

QString ThroughputView::prepareHeadless(int timeoutMs) {
  // A short decode run (it stays as a faded point), then a prefill run, a few seconds each.
  QElapsedTimer t;
  t.start();
  const auto pump = [] {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    QThread::msleep(5);
  };
  const auto runFor = [&](LoopMode m, int ms) {
    mode_->setCurrentIndex(mode_->findData(int(m)));
    start();
    QElapsedTimer run;
    run.start();
    while (runner_.running() && t.elapsed() < timeoutMs &&
           (run.elapsed() < ms || runner_.samples().size() < 3)) {
      pump();
    }
    stop();
    while (runner_.running() && t.elapsed() < timeoutMs + 10000) pump();
  };
  if (!peak() && !runner_.calibrating())
    runner_.calibrate(backend_->currentData(Qt::UserRole).toString());
  while (runner_.calibrating() && t.elapsed() < timeoutMs) pump();
  const LoopMode chosen = LoopMode(mode_->currentData().toInt());
  runFor(chosen == LoopMode::prefill ? LoopMode::decode : LoopMode::prefill, 1500);
  if (!runner_.lastError().isEmpty()) return runner_.lastError();
  runFor(chosen, 3000);
  return runner_.lastError();
}

QJsonObject ThroughputView::exportData() const {
  QJsonObject o;
  // The configuration of the run the samples come from; before any run, the one Start would use.
  o["loop"] = (runner_.samples().isEmpty() && !current_ ? config() : runConfig_).toJson();
  o["device"] = runner_.device();
  o["machine"] = machineJson();
  if (const auto p = peak()) o["device_peak"] = peakJson(*p);
  QJsonArray samples;
  for (const ThroughputSample& s : runner_.samples()) {
    samples.append(QJsonObject{{"t", s.t},
                               {"tokens_per_second", s.tokensPerSecond},
                               {"gflops", s.gflops},
                               {"gbps", s.gbps},
                               {"intensity", s.intensity},
                               {"flops", s.flops},
                               {"bytes", s.bytes},
                               {"seconds", s.seconds},
                               {"tokens", s.tokens},
                               {"runs", s.runs}});
  }
  o["samples"] = samples;
  QJsonArray points;
  QVector<RooflinePoint> all = history_;
  if (current_) all.append(*current_);
  for (qsizetype i = 0; i < all.size(); ++i) {
    const RooflinePoint& r = all[i];
    QJsonObject pt{{"label", r.label},
                   {"current", current_ && i == all.size() - 1},
                   {"intensity", r.intensity},
                   {"gflops", r.gflops}};
    pt["working_set_bytes"] = r.workingSetBytes;
    if (const auto pl = placementOf(r)) {
      pt["roof"] = QString::fromUtf8(roof_name(pl->roof));
      pt["roof_gflops"] = pl->roof_gflops;
      pt["percent_of_roof"] = 100 * pl->fraction;
      pt["above_roof"] = pl->above;  // a measurement problem, never an achievement
    }
    points.append(pt);
  }
  o["roofline_points"] = points;
  return o;
}

QString ThroughputView::exportCsv() const {
  QString s = QStringLiteral("# %1 on %2\n").arg(runLabel_, runner_.device());
  if (const auto p = peak()) {
    s += QStringLiteral("# peak: %1\n").arg(QString::fromStdString(describe(*p)));
  }
  s += QStringLiteral("t_seconds,tokens_per_second,gflops,gbps,intensity_flop_per_byte,runs\n");
  for (const ThroughputSample& x : runner_.samples()) {
    s += QStringLiteral("%1,%2,%3,%4,%5,%6\n")
             .arg(x.t, 0, 'g', 8)
             .arg(x.tokensPerSecond, 0, 'g', 8)
             .arg(x.gflops, 0, 'g', 8)
             .arg(x.gbps, 0, 'g', 8)
             .arg(x.intensity, 0, 'g', 8)
             .arg(x.runs);
  }
  return s;
}

}  // namespace attnscope::gui
