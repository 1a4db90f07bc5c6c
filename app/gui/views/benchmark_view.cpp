// The Benchmark view. Variants and backends come from the registry (never a list of our own);
// the shape is the workload panel's. run_sweep runs on this view's GuiWorker; its points arrive as
// values and are drawn as they finish. A cancel keeps the finished points.
#include "views/benchmark_view.hpp"

#include <QDateTime>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGraphicsView>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonDocument>
#include <QMessageBox>
#include <QRegularExpression>
#include <QResizeEvent>
#include <QScrollArea>
#include <QSplitter>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "attnscope/error.hpp"
#include "attnscope/problem_json.hpp"
#include "attnscope/registry.hpp"
#include "charts/sweep_io.hpp"
#include "wording.hpp"

namespace attnscope::gui {
namespace {

constexpr auto kProgressInterval = std::chrono::milliseconds(50);

QString qs(std::string_view v) {
  return QString::fromUtf8(v.data(), static_cast<qsizetype>(v.size()));
}

// Shows the chart's scene scaled to fit, aspect kept: the same scene the exports render.
class ChartCanvas : public QGraphicsView {
 public:
  explicit ChartCanvas(QGraphicsScene* scene) : QGraphicsView(scene) {
    setRenderHints(QPainter::Antialiasing | QPainter::TextAntialiasing);
    setInteractive(false);
    setFrameShape(QFrame::NoFrame);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setBackgroundBrush(Qt::white);
    setMinimumSize(320, 200);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  }
  QSize sizeHint() const override { return charts::SweepChart::logicalSize(); }

 protected:
  void resizeEvent(QResizeEvent* e) override {
    QGraphicsView::resizeEvent(e);
    fitInView(sceneRect(), Qt::KeepAspectRatio);
  }
  void showEvent(QShowEvent* e) override {
    QGraphicsView::showEvent(e);
    fitInView(sceneRect(), Qt::KeepAspectRatio);
  }
};

QString isoNow() {
  return QDateTime::currentDateTimeUtc().toString(Qt::ISODate);
}

}  // namespace

BenchmarkView::BenchmarkView(QWidget* parent) : LiveView(parent) {
  registerOptionalBackends();

  // Left: what to sweep.
  auto* controls = new QWidget;
  auto* left = new QVBoxLayout(controls);

  auto* variantsBox = new QGroupBox(tr("Variants"));
  auto* vl = new QVBoxLayout(variantsBox);
  for (const VariantInfo& v : variants()) {
    auto* box = new QCheckBox(qs(v.name));
    box->setToolTip(QStringLiteral("%1: %2").arg(qs(v.title), qs(v.summary)));
    box->setProperty("name", qs(v.name));
    box->setChecked(&v == &variants().front());
    variantBoxes_.append(box);
    vl->addWidget(box);
  }
  left->addWidget(variantsBox);

  auto* backendsBox = new QGroupBox(tr("Backends"));
  auto* bl = new QVBoxLayout(backendsBox);
  const QString preferred = preferredBackend();
  for (const BackendInfo& b : backends()) {
    const Support s = b.available();
    auto* box = new QCheckBox(s.ok ? qs(b.name) : tr("%1 (unavailable)").arg(qs(b.name)));
    box->setProperty("name", qs(b.name));
    box->setToolTip(s.ok ? qs(b.summary)
                         : backendUnavailableTip(qs(b.name), QString::fromStdString(s.why_not)));
    box->setEnabled(s.ok);
    box->setChecked(s.ok && qs(b.name) == preferred);
    backendBoxes_.append(box);
    bl->addWidget(box);
  }
  left->addWidget(backendsBox);

  auto* sweepBox = new QGroupBox(tr("Sweep"));
  auto* form = new QFormLayout(sweepBox);
  lengths_ = new QLineEdit(QStringLiteral("512, 1024, 2048, 4096"));
  lengths_->setToolTip(
      tr("Sequence lengths L, separated by commas or spaces. Prefill runs Lq = Lk = L; decode "
         "times one step over a context of L tokens."));
  form->addRow(new QLabel(tr("Sequence lengths")));
  form->addRow(lengths_);
  mode_ = new QComboBox;
  mode_->addItem(tr("prefill"), int(SweepMode::prefill));
  mode_->addItem(tr("decode"), int(SweepMode::decode));
  mode_->setToolTip(
      tr("prefill: one forward pass over L tokens; decode: one new token per "
         "sequence against a cache of L tokens."));
  form->addRow(tr("Mode"), mode_);
  reps_ = new QSpinBox;
  reps_->setRange(1, 1000);
  reps_->setValue(5);
  reps_->setToolTip(
      tr("Timed runs per point, after one untimed warm-up; the chart shows the "
         "median and the min-max range."));
  form->addRow(tr("Repetitions"), reps_);
  left->addWidget(sweepBox);

  shape_ = new QLabel;
  shape_->setWordWrap(true);
  shape_->setToolTip(
      tr("Heads, kv heads, head dims, causal and each variant's knobs come from "
         "the workload panel; the lengths from this view."));
  left->addWidget(shape_);

  // Run, Cancel, progress and status sit above the options, outside their scroll area, at fixed
  // heights: ticking variants (which rewraps the shape line) or a long status never moves them.
  auto* runBox = new QWidget;
  auto* runLayout = new QVBoxLayout(runBox);
  runLayout->setContentsMargins(0, 0, 0, 0);
  auto* buttons = new QHBoxLayout;
  run_ = new QPushButton(tr("Run"));
  run_->setToolTip(tr("Run the sweep on a worker thread."));
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setToolTip(tr("Stop after the running repetition; finished points stay."));
  cancel_->setEnabled(false);
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  runLayout->addLayout(buttons);
  keep_ = new QCheckBox(tr("Keep previous points"));
  keep_->setToolTip(
      tr("A new sweep adds its points to the chart and table (a point of the same variant, "
         "backend and length is replaced), so sweeps can be compared. Off: each sweep starts a "
         "new chart. Points of another mode or shape are never mixed."));
  runLayout->addWidget(keep_);
  progress_ = new QProgressBar;
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setFormat(QStringLiteral("%p%"));
  runLayout->addWidget(progress_);
  status_ = new QLabel;
  status_->setObjectName("benchmarkStatus");
  status_->setWordWrap(true);
  status_->setAlignment(Qt::AlignLeft | Qt::AlignTop);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  status_->setFixedHeight(3 * status_->fontMetrics().lineSpacing() + 4);  // full text: tooltip
  runLayout->addWidget(status_);

  auto* filesBox = new QGroupBox(tr("Files"));
  auto* fl = new QVBoxLayout(filesBox);
  auto* open = new QPushButton(tr("Open JSON…"));
  open->setToolTip(tr("Load a sweep file from `attnscope-cli bench` or an earlier export."));
  auto* exportChart = new QPushButton(tr("Export chart…"));
  exportChart->setToolTip(tr("The chart as PNG (at a chosen DPI), SVG or PDF."));
  auto* exportData = new QPushButton(tr("Export data…"));
  exportData->setToolTip(
      tr("The sweep as JSON (Google Benchmark format; `attnscope chart` redraws it) or CSV."));
  for (QPushButton* b : {open, exportChart, exportData}) fl->addWidget(b);
  left->addWidget(filesBox);
  left->addStretch(1);

  // Narrow enough that the main window keeps its documented default width.
  auto* scroll = new QScrollArea;
  scroll->setWidget(controls);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* leftColumn = new QWidget;
  auto* leftLayout = new QVBoxLayout(leftColumn);
  leftLayout->setContentsMargins(0, 0, 0, 0);
  leftLayout->addWidget(runBox);
  leftLayout->addWidget(scroll, 1);
  leftColumn->setMinimumWidth(230);
  leftColumn->setMaximumWidth(300);

  // Right: chart controls, the chart and the table.
  auto* top = new QHBoxLayout;
  kind_ = new QComboBox;
  for (charts::ChartKind k : charts::allChartKinds()) {
    kind_->addItem(charts::chartKindTitle(k), charts::chartKindName(k));
  }
  kind_->setToolTip(tr("What the chart plots against the sequence length."));
  style_ = new QComboBox;
  style_->addItem(tr("Lines"), QStringLiteral("line"));
  style_->addItem(tr("Bars"), QStringLiteral("bar"));
  top->addWidget(new QLabel(tr("Chart")));
  top->addWidget(kind_);
  top->addWidget(style_);
  top->addStretch(1);

  canvas_ = new ChartCanvas(chart_.scene());
  table_ = new QTableWidget;
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->hide();
  table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
  table_->setColumnCount(12);
  table_->setHorizontalHeaderLabels({tr("variant"), tr("backend"), tr("L"), tr("median ms"),
                                     tr("min ms"), tr("max ms"), tr("tokens/s"), tr("GFLOP/s"),
                                     tr("GB/s"), tr("KV MiB"), tr("speedup"), tr("note")});
  table_->horizontalHeader()->setStretchLastSection(true);
  // The table gets room for several rows from the start (a 12-column table squeezed under the
  // chart showed one or two); the splitter still lets either side have more.
  table_->setMinimumHeight(table_->horizontalHeader()->sizeHint().height() +
                           6 * table_->verticalHeader()->defaultSectionSize() + 4);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(canvas_);
  split->addWidget(table_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  split->setChildrenCollapsible(false);

  auto* right = new QVBoxLayout;
  right->addLayout(top);
  right->addWidget(split, 1);
  auto* layout = new QHBoxLayout(this);
  layout->addWidget(leftColumn);
  layout->addLayout(right, 1);

  connect(run_, &QPushButton::clicked, this, [this] { startSweep(); });
  connect(cancel_, &QPushButton::clicked, this, &BenchmarkView::cancelSweep);
  connect(kind_, &QComboBox::currentIndexChanged, this, &BenchmarkView::refresh);
  connect(style_, &QComboBox::currentIndexChanged, this, &BenchmarkView::refresh);
  connect(exportChart, &QPushButton::clicked, this, &BenchmarkView::exportChartDialog);
  connect(exportData, &QPushButton::clicked, this, &BenchmarkView::exportDataDialog);
  connect(open, &QPushButton::clicked, this, &BenchmarkView::openSweepDialog);
  for (QCheckBox* b : variantBoxes_)
    connect(b, &QCheckBox::toggled, this, [this] { updateShapeLabel(); });

  setStatus(tr("Pick variants, lengths and backends, then Run; or open a sweep JSON file."));
  updateShapeLabel();
  refresh();
}

BenchmarkView::~BenchmarkView() = default;

QWidget* BenchmarkView::figure() {
  return canvas_;
}

void BenchmarkView::setWorkload(const Workload& w) {
  ViewBase::setWorkload(w);
  updateShapeLabel();
}

void BenchmarkView::applySettings(const QJsonObject& s) {
  if (s.contains("variants")) {
    QStringList names;
    for (const QJsonValue& v : s.value("variants").toArray()) names << v.toString();
    setSelectedVariants(names);
  }
  if (s.contains("backends")) {
    QStringList names;
    for (const QJsonValue& v : s.value("backends").toArray()) names << v.toString();
    setSelectedBackends(names);
  }
  if (s.contains("seq_lens")) {
    QStringList lens;
    for (const QJsonValue& v : s.value("seq_lens").toArray())
      lens << QString::number(v.toInteger());
    setSeqLens(lens.join(QStringLiteral(", ")));
  }
  if (const auto m = sweep_mode_from_string(s.value("mode").toString().toStdString())) setMode(*m);
  if (s.contains("repetitions")) setRepetitions(s.value("repetitions").toInt());
  charts::ChartOptions o = chart_.options();
  charts::chartKindFromName(s.value("chart").toString(), o.kind);
  charts::chartStyleFromName(s.value("style").toString(), o.style);
  setChartOptions(o);
}

QJsonObject BenchmarkView::exportData() const {
  return QJsonDocument::fromJson(QByteArray::fromStdString(sweep_to_json(sweep_))).object();
}

QString BenchmarkView::exportCsv() const {
  return charts::sweepToCsv(sweep_);
}

QStringList BenchmarkView::selectedVariants() const {
  QStringList out;
  for (QCheckBox* b : variantBoxes_) {
    if (b->isChecked()) out << b->property("name").toString();
  }
  return out;
}

void BenchmarkView::setSelectedVariants(const QStringList& names) {
  QStringList canonical;  // aliases ("gqa") select their variant
  for (const QString& n : names) {
    if (const VariantInfo* v = find_variant(n.toStdString())) canonical << qs(v->name);
  }
  for (QCheckBox* b : variantBoxes_) b->setChecked(canonical.contains(b->property("name")));
}

QStringList BenchmarkView::selectedBackends() const {
  QStringList out;
  for (QCheckBox* b : backendBoxes_) {
    if (b->isEnabled() && b->isChecked()) out << b->property("name").toString();
  }
  return out;
}

void BenchmarkView::setSelectedBackends(const QStringList& names) {
  for (QCheckBox* b : backendBoxes_) {
    b->setChecked(b->isEnabled() && names.contains(b->property("name").toString()));
  }
}

void BenchmarkView::setSeqLens(const QString& text) {
  lengths_->setText(text);
}

void BenchmarkView::setMode(SweepMode mode) {
  mode_->setCurrentIndex(std::max(0, mode_->findData(int(mode))));
}

void BenchmarkView::setRepetitions(int reps) {
  reps_->setValue(reps);
}

QString BenchmarkView::buildConfig(SweepConfig& out) const {
  SweepConfig c;
  c.variants.clear();
  for (const QString& v : selectedVariants()) c.variants.push_back(v.toStdString());
  if (c.variants.empty()) return tr("pick at least one variant");
  c.backends.clear();
  for (const QString& b : selectedBackends()) c.backends.push_back(b.toStdString());
  if (c.backends.empty()) return tr("pick at least one available backend");
  c.seq_lens.clear();
  const QStringList items =
      lengths_->text().split(QRegularExpression(QStringLiteral("[,;\\s]+")), Qt::SkipEmptyParts);
  for (const QString& item : items) {
    bool ok = false;
    const qlonglong L = item.toLongLong(&ok);
    if (!ok || L < 1) {
      return tr("sequence lengths must be whole numbers of at least 1 (got '%1')").arg(item);
    }
    if (std::find(c.seq_lens.begin(), c.seq_lens.end(), int64_t(L)) != c.seq_lens.end()) {
      return tr("sequence length %1 appears twice").arg(L);
    }
    c.seq_lens.push_back(L);
  }
  if (c.seq_lens.empty()) return tr("give at least one sequence length, e.g. 512, 1024, 2048");
  std::sort(c.seq_lens.begin(), c.seq_lens.end());
  c.mode = SweepMode(mode_->currentData().toInt());
  c.repetitions = reps_->value();
  c.base = workload_.problem;
  c.pattern = workload_.pattern.isEmpty() ? std::string("random") : workload_.pattern.toStdString();
  c.seed = workload_.seed;
  out = std::move(c);
  return {};
}

void BenchmarkView::updateShapeLabel() {
  SweepResult probe;
  probe.config.base = workload_.problem;
  probe.config.variants.clear();
  for (const QString& v : selectedVariants()) probe.config.variants.push_back(v.toStdString());
  QString text =
      tr("Shape from the workload panel: %1; pattern %2, seed %3.")
          .arg(charts::describeSweepShape(probe),
               workload_.pattern.isEmpty() ? QStringLiteral("random") : workload_.pattern)
          .arg(workload_.seed);
  if (!workload_.file.isEmpty()) {
    text += tr(" The loaded tensor file is not used: sweeps generate inputs at every length.");
  }
  shape_->setText(text);
}

void BenchmarkView::setStatus(const QString& text, bool error) {
  status_->setText(text);
  status_->setToolTip(text);
  status_->setStyleSheet(error ? QStringLiteral("color: #c0392b;") : QString());
}

void BenchmarkView::showRunning() {
  run_->setEnabled(!running());
  cancel_->setEnabled(running());
  if (running()) progress_->setValue(0);
}

QString BenchmarkView::startSweep() {
  if (running()) return tr("a sweep is already running");
  SweepConfig config;
  if (QString e = buildConfig(config); !e.isEmpty()) {
    setStatus(e, true);
    return e;
  }
  const QString keepNote = keepPrevious(config);
  worker_.start(
      0,
      [this, config](const GuiWorker::Job& job) {
        Throttle throttle(kProgressInterval);
        job.cancel().set_progress_callback([this, &job, &throttle](double f) {
          if (throttle.due(f >= 1.0)) job.post([this, f] { onProgress(f); });
        });
        try {
          return run_sweep(config, job.cancel(), [this, &job](const SweepPoint& p) {
            job.post([this, p] { onPoint(p); });
          });
        } catch (const Cancelled&) {  // cancelled before the first point: an empty, cancelled sweep
          SweepResult r;
          r.config = config;
          r.cancelled = true;
          return r;
        }
      },
      [this](const SweepResult& result) { onFinished(result); },
      [this](const JobFailure& failure) {
        onFailed(failure.kind == JobFailure::Kind::outOfMemory
                     ? tr("out of memory: reduce the sequence lengths, heads or batch")
                     : failure.message);
      });
  showRunning();
  started_ = std::chrono::steady_clock::now();
  setStatus(tr("running %n point(s)…", nullptr,
               int(config.variants.size() * config.seq_lens.size() * config.backends.size())) +
            keepNote);
  refresh();
  return {};
}

void BenchmarkView::cancelSweep() {
  if (!running()) return;
  worker_.cancel();
  setStatus(tr("cancelling…"));
}

void BenchmarkView::onProgress(double fraction) {
  progress_->setValue(int(std::lround(std::clamp(fraction, 0.0, 1.0) * 1000)));
}

void BenchmarkView::onPoint(const SweepPoint& point) {
  sweep_.points.push_back(point);
  refresh();
  emit pointAdded(int(sweep_.points.size()));
}

QString BenchmarkView::keepPrevious(const SweepConfig& config) {
  SweepResult next;
  next.config = config;
  next.date = isoNow().toStdString();
  kept_.clear();
  QString note;
  if (keep_->isChecked() && !sweep_.points.empty()) {
    const SweepConfig& was = sweep_.config;
    const bool sameSetup = was.mode == config.mode && was.pattern == config.pattern &&
                           was.seed == config.seed &&
                           problem_to_json(was.base) == problem_to_json(config.base);
    if (!sameSetup) {
      note = tr(" (previous points not kept: they were measured in another mode or shape)");
    } else {
      const auto runsAgain = [&](const SweepPoint& p) {
        const auto has = [](const auto& list, const auto& x) {
          return std::find(list.begin(), list.end(), x) != list.end();
        };
        return has(config.variants, p.variant) && has(config.backends, p.backend) &&
               has(config.seq_lens, p.seq_len);
      };
      for (const SweepPoint& p : sweep_.points) {
        if (!runsAgain(p)) kept_.push_back(p);
      }
      // The chart's configuration is the union, so its footer and series cover both sweeps; the
      // new one's own lists come first where they overlap.
      const auto unite = [](auto& into, const auto& from) {
        for (const auto& x : from) {
          if (std::find(into.begin(), into.end(), x) == into.end()) into.push_back(x);
        }
      };
      SweepConfig merged = was;
      unite(merged.variants, config.variants);
      unite(merged.backends, config.backends);
      unite(merged.seq_lens, config.seq_lens);
      std::sort(merged.seq_lens.begin(), merged.seq_lens.end());
      merged.repetitions = config.repetitions;
      next.config = merged;
      next.points = kept_;
      next.devices = sweep_.devices;
      next.peaks = sweep_.peaks;
      note = tr(" (%n previous point(s) kept)", nullptr, int(kept_.size()));
    }
  }
  sweep_ = std::move(next);
  return note;
}

void BenchmarkView::onFinished(const SweepResult& finished) {
  SweepResult result = finished;
  if (!kept_.empty()) {
    // The worker's result holds this sweep's points only: the kept ones go first, as drawn.
    result.config = sweep_.config;
    result.points.insert(result.points.begin(), kept_.begin(), kept_.end());
    for (const std::string& d : sweep_.devices) {
      if (std::find(result.devices.begin(), result.devices.end(), d) == result.devices.end())
        result.devices.push_back(d);
    }
    kept_.clear();
  }
  sweep_ = result;
  if (sweep_.date.empty()) sweep_.date = isoNow().toStdString();
  showRunning();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  int skipped = 0;
  for (const SweepPoint& p : sweep_.points) skipped += p.skipped.empty() ? 0 : 1;
  const int n = int(sweep_.points.size());
  QString text = sweep_.cancelled
                     ? tr("cancelled: %n finished point(s) kept", nullptr, n)
                     : tr("finished %n point(s) in %1 s", nullptr, n).arg(seconds, 0, 'f', 1);
  if (skipped) text += tr(" (%n skipped: see the table)", nullptr, skipped);
  if (!sweep_.cancelled) progress_->setValue(1000);
  setStatus(text);
  refresh();
  emit sweepFinished(sweep_.cancelled);
}

void BenchmarkView::onFailed(const QString& message) {
  kept_.clear();  // sweep_ keeps them and the points that finished
  showRunning();
  setStatus(guiWording(message), true);
  refresh();
  emit sweepFailed(message);
}

void BenchmarkView::setChartOptions(const charts::ChartOptions& options) {
  {
    const QSignalBlocker a(kind_), b(style_);
    kind_->setCurrentIndex(std::max(0, kind_->findData(charts::chartKindName(options.kind))));
    style_->setCurrentIndex(std::max(0, style_->findData(charts::chartStyleName(options.style))));
  }
  refresh();
}

void BenchmarkView::refresh() {
  charts::ChartOptions o;
  o.emptyText = running() ? tr("Waiting for the first point…")
                          : tr("Run a sweep, or open a sweep JSON file.");
  charts::chartKindFromName(kind_->currentData().toString(), o.kind);
  charts::chartStyleFromName(style_->currentData().toString(), o.style);
  chart_.setSweep(sweep_, o);
  refreshTable();
}

void BenchmarkView::refreshTable() {
  const QVector<double> ratio = charts::speedups(sweep_);
  table_->setRowCount(int(sweep_.points.size()));
  const auto cell = [](const QString& text, bool number) {
    auto* item = new QTableWidgetItem(text);
    if (number) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
  };
  const auto fmt = [](double v) {
    if (!std::isfinite(v) || v == 0) return QString();
    return std::abs(v) >= 1e4 ? QString::number(v, 'f', 0) : QString::number(v, 'g', 4);
  };
  for (int r = 0; r < int(sweep_.points.size()); ++r) {
    const SweepPoint& p = sweep_.points[size_t(r)];
    const bool ran = p.skipped.empty();
    const double maxS =
        p.seconds.empty() ? p.median_s : *std::max_element(p.seconds.begin(), p.seconds.end());
    table_->setItem(r, 0, cell(QString::fromStdString(p.variant), false));
    table_->setItem(r, 1, cell(QString::fromStdString(p.backend), false));
    table_->setItem(r, 2, cell(QString::number(p.seq_len), true));
    table_->setItem(r, 3, cell(ran ? fmt(p.median_s * 1e3) : QString(), true));
    table_->setItem(r, 4, cell(ran ? fmt(p.min_s * 1e3) : QString(), true));
    table_->setItem(r, 5, cell(ran ? fmt(maxS * 1e3) : QString(), true));
    table_->setItem(r, 6, cell(ran ? fmt(p.tokens_per_s) : QString(), true));
    table_->setItem(r, 7, cell(ran ? fmt(p.gflops) : QString(), true));
    table_->setItem(r, 8, cell(ran ? fmt(p.gbps) : QString(), true));
    table_->setItem(r, 9, cell(fmt(p.cost.kv_cache_bytes / double(1 << 20)), true));
    table_->setItem(r, 10, cell(fmt(ratio[r]), true));
    auto* note =
        cell(ran ? QString() : tr("skipped: %1").arg(guiWording(QString::fromStdString(p.skipped))),
             false);
    note->setToolTip(note->text());
    table_->setItem(r, 11, note);
  }
  table_->resizeColumnsToContents();
}

QString BenchmarkView::exportChart(const QString& path, int dpi) const {
  return chart_.save(path, dpi);
}

QString BenchmarkView::exportSweepData(const QString& path) const {
  if (sweep_.points.empty()) return tr("nothing to export: run a sweep or open a sweep file first");
  return charts::saveSweepData(sweep_, path);
}

QString BenchmarkView::openSweep(const QString& path) {
  if (running()) return tr("a sweep is running: cancel it before opening a file");
  SweepResult loaded;
  if (QString e = charts::loadSweepFile(path, loaded); !e.isEmpty()) {
    setStatus(e, true);
    return e;
  }
  sweep_ = std::move(loaded);
  progress_->setValue(0);
  setStatus(tr("opened %1: %n point(s)", nullptr, int(sweep_.points.size()))
                .arg(QFileInfo(path).fileName()));
  // Show the file's configuration in the controls, so Run repeats it on this machine.
  QStringList names;
  for (const std::string& v : sweep_.config.variants) names << QString::fromStdString(v);
  setSelectedVariants(names);
  names.clear();
  for (const std::string& b : sweep_.config.backends) names << QString::fromStdString(b);
  setSelectedBackends(names);
  QStringList lens;
  for (int64_t L : sweep_.config.seq_lens) lens << QString::number(L);
  setSeqLens(lens.join(QStringLiteral(", ")));
  setMode(sweep_.config.mode);
  setRepetitions(sweep_.config.repetitions);
  refresh();
  return {};
}

void BenchmarkView::exportChartDialog() {
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export chart"), QStringLiteral("sweep-%1.png").arg(kind_->currentData().toString()),
      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"));
  if (path.isEmpty()) return;
  int dpi = 144;
  if (path.endsWith(QLatin1String(".png"), Qt::CaseInsensitive) ||
      path.endsWith(QLatin1String(".pdf"), Qt::CaseInsensitive)) {
    bool ok = false;
    dpi = QInputDialog::getInt(this, tr("Resolution"), tr("Dots per inch:"), 144, charts::kMinDpi,
                               charts::kMaxDpi, 24, &ok);
    if (!ok) return;
  }
  if (QString e = exportChart(path, dpi); !e.isEmpty()) {
    setStatus(e, true);
    QMessageBox::warning(this, tr("Export chart"), e);
  } else {
    setStatus(tr("wrote %1").arg(path));
  }
}

void BenchmarkView::exportDataDialog() {
  const QString path =
      QFileDialog::getSaveFileName(this, tr("Export sweep data"), QStringLiteral("sweep.json"),
                                   tr("JSON (*.json);;CSV (*.csv)"));
  if (path.isEmpty()) return;
  if (QString e = exportSweepData(path); !e.isEmpty()) {
    setStatus(e, true);
    QMessageBox::warning(this, tr("Export data"), e);
  } else {
    setStatus(tr("wrote %1").arg(path));
  }
}

void BenchmarkView::openSweepDialog() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open sweep"), {},
                                                    tr("Sweep JSON (*.json);;All files (*)"));
  if (path.isEmpty()) return;
  if (QString e = openSweep(path); !e.isEmpty()) {
    QMessageBox::warning(this, tr("Open sweep"), e);
  }
}

}  // namespace attnscope::gui
