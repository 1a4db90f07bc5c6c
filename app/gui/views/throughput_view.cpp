// Throughput view. Rates come from the engine's counters and its own run time, the roof from the
// device's measured peaks; the UI thread only draws. Scrolling charts keep the last minute, the
// runner keeps every sample of the run for export.
#include "throughput_view.hpp"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QShowEvent>
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
  bar->addWidget(new QLabel(tr("Loop:")));
  bar->addWidget(mode_);
  bar->addWidget(new QLabel(tr("Backend:")));
  bar->addWidget(backend_);
  bar->addWidget(decodeTokens_);
  bar->addWidget(start_);
  bar->addWidget(stop_);
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
  roof_->setName(tr("roof: min(peak, I × bandwidth)"));
  currentSeries_ = new QScatterSeries;
  currentSeries_->setName(tr("this run"));
  currentSeries_->setMarkerSize(13);
  currentSeries_->setPointLabelsVisible(true);
  currentSeries_->setPointLabelsClipping(false);
  for (QXYSeries* s : std::initializer_list<QXYSeries*>{roof_, currentSeries_}) {
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

QString ThroughputView::runLabel() const {
  return tr("%1 · %2").arg(variantName(runConfig_.workload.problem.variant),
                           loopModeName(runConfig_.mode));
}

void ThroughputView::start() {
  if (runner_.running()) return;
  const ThroughputConfig c = config();
  if (!runner_.peak(c.backend) && !runner_.calibrating()) runner_.calibrate(c.backend);
  if (current_) history_.append(*current_);  // the previous run fades into the history
  current_.reset();
  runConfig_ = c;
  runLabel_ = runLabel();
  runFlops_ = runBytes_ = runSeconds_ = 0;
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
    current_ = RooflinePoint{runLabel_, runFlops_ / runBytes_, runFlops_ / runSeconds_ * 1e-9};
  }
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
  calibration_->setText(
      tr("Peak%1: %2")
          .arg(p->cached ? tr(" (cached)") : QString(), QString::fromStdString(describe(*p))));
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

  currentSeries_->clear();
  if (current_ && current_->intensity > 0 && current_->gflops > 0) {
    currentSeries_->append(current_->intensity, current_->gflops);
    currentSeries_->setPointLabelsFormat(current_->label);
    currentSeries_->setName(runner_.running() ? tr("this run: %1").arg(current_->label)
                                              : tr("last run: %1").arg(current_->label));
  }
  for (QScatterSeries* s : historySeries_) s->clear();
  for (const RooflinePoint& r : history_) {
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
    if (const auto roof = roofAt(current_->intensity)) {
      const bool memoryBound = p && current_->intensity < p->gflops / p->gbps;
      text += tr("<br><br><span style='font-size:x-large'><b>%1%</b></span> of the roof "
                 "(%2 GFLOP/s)<br>%3")
                  .arg(100 * current_->gflops / *roof, 0, 'f', 1)
                  .arg(*roof, 0, 'g', 4)
                  .arg(memoryBound ? tr("memory bound: left of the ridge")
                                   : tr("compute bound: right of the ridge"));
    } else {
      text += tr("<br><br>% of the roof: waiting for the device peak");
    }
  } else {
    text = tr("Start a loop to place it on the roofline.");
  }
  roofPercent_->setText(text);
}

void ThroughputView::restyle() {
  const QColor text = palette().color(QPalette::WindowText);
  roof_->setPen(QPen(text, 2.5));
  currentSeries_->setColor(QColor(214, 39, 40));
  currentSeries_->setBorderColor(QColor(214, 39, 40).darker(140));
  currentSeries_->setPointLabelsColor(text);
  int i = 0;
  static const QColor colors[] = {
      {31, 119, 180}, {44, 160, 44}, {148, 103, 189}, {255, 127, 14}, {140, 86, 75}};
  for (QScatterSeries* s : historySeries_) {
    QColor c = colors[i++ % 5];
    c.setAlpha(90);
    s->setColor(c);
    s->setBorderColor(c);
    QColor lc = text;
    lc.setAlpha(140);
    s->setPointLabelsColor(lc);
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
    if (const auto roof = roofAt(r.intensity)) {
      pt["roof_gflops"] = *roof;
      pt["percent_of_roof"] = 100 * r.gflops / *roof;
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
