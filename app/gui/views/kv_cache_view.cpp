// KV cache view. The curves are cost_of at each context length (times the layers of a model
// preset); nothing here re-derives a cache formula. The live part only reads the engine's cache
// through its thread-safe accounting while the runner's thread decodes.
#include "kv_cache_view.hpp"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEvent>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QScrollArea>
#include <QSplitter>
#include <QVBoxLayout>
#include <QtCharts/QCategoryAxis>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <cmath>

#include "attnscope/registry.hpp"
#include "live/backend_picker.hpp"
#include "live/machine.hpp"
#include "live/page_map_widget.hpp"
#include "wording.hpp"

namespace attnscope::gui {
namespace {
constexpr int kPollMs = 100;  // ~10 Hz

QString qs(std::string_view v) {
  return QString::fromUtf8(v.data(), static_cast<qsizetype>(v.size()));
}

// "Gated DeltaNet's state stays fp32 either way." for the variants that cache a state.
QString stateNote() {
  QStringList stateful;
  for (const VariantInfo& v : variants()) {
    if (v.has_state) stateful << qs(v.short_title);
  }
  if (stateful.isEmpty()) return {};
  return QObject::tr(" %1's state stays fp32 either way.").arg(joinAnd(stateful));
}

// "16, or 64 for MLA": the engine's default page size, and the variants that differ from it.
QString pageSizeDefaults() {
  const int64_t common = default_page_size(variants().front().id);
  QString text = QString::number(common);
  for (const VariantInfo& v : variants()) {
    if (const int64_t own = default_page_size(v.id); own != common) {
      text += QObject::tr(", or %1 for %2").arg(own).arg(qs(v.short_title));
    }
  }
  return text;
}

QChart* makeLogChart(const QString& title, const QString& yTitle) {
  auto* chart = new QChart;
  chart->setTitle(title);
  // The context axis is log2(tokens) with labels 1K, 4K, … 1M (a log axis prints 1048576).
  auto* x = new QCategoryAxis;
  x->setTitleText(QObject::tr("context (tokens)"));
  x->setRange(10, 20);
  x->setLabelsPosition(QCategoryAxis::AxisLabelsPositionOnValue);
  x->append(QStringLiteral("1K"), 10);
  x->append(QStringLiteral("8K"), 13);
  x->append(QStringLiteral("64K"), 16);
  x->append(QStringLiteral("1M"), 20);
  auto* y = new QLogValueAxis;
  y->setBase(10);
  y->setTitleText(yTitle);
  y->setLabelFormat("%.0e");
  y->setMinorTickCount(0);
  chart->addAxis(x, Qt::AlignBottom);
  chart->addAxis(y, Qt::AlignLeft);
  chart->legend()->setAlignment(Qt::AlignRight);
  chart->setMargins(QMargins(4, 4, 4, 4));
  return chart;
}

QChartView* chartView(QChart* chart) {
  auto* v = new QChartView(chart);
  v->setRenderHint(QPainter::Antialiasing);
  v->setMinimumHeight(200);
  return v;
}

QColor curveColor(int i) {
  static const QColor colors[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {188, 189, 34}};
  return colors[i % 8];
}

QJsonObject statsJson(const KvCacheStats& s) {
  return {{"page_size", qint64(s.page_size)},
          {"page_bytes", qint64(s.page_bytes)},
          {"pages_allocated", qint64(s.pages_allocated)},
          {"pages_used", qint64(s.pages_used)},
          {"pages_free", qint64(s.pages_free)},
          {"max_pages", qint64(s.max_pages)},
          {"sequences", qint64(s.sequences)},
          {"tokens_seen", qint64(s.tokens_seen)},
          {"tokens_resident", qint64(s.tokens_resident)},
          {"pages_evicted", qint64(s.pages_evicted)},
          {"bytes_per_token", s.bytes_per_token},
          {"bytes_used", qint64(s.bytes_used)},
          {"bytes_allocated", qint64(s.bytes_allocated)},
          {"fragmentation", s.fragmentation}};
}
}  // namespace

KvCacheView::KvCacheView(QWidget* parent) : LiveView(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* splitter = new QSplitter(Qt::Vertical);
  layout->addWidget(splitter);

  // --- curves ---
  auto* top = new QWidget;
  auto* topLayout = new QVBoxLayout(top);
  topLayout->setContentsMargins(0, 0, 0, 0);
  auto* bar = new QHBoxLayout;
  model_ = new QComboBox;
  model_->addItem(tr("Workload shape (one layer)"), QString());
  for (const ModelPreset& m : modelPresets()) model_->addItem(m.title, m.name);
  model_->setToolTip(
      tr("Plot the cache at the workload panel's shape (one layer), or at a real "
         "model's shape with all its layers. The source of each model's numbers "
         "is shown below the charts."));
  element_ = new QComboBox;
  element_->addItem(tr("fp32 (4 bytes)"), 4);
  element_->addItem(tr("bf16 (2 bytes)"), 2);
  element_->setCurrentIndex(1);
  element_->setToolTip(tr("Element size of the cached keys and values. Serving engines keep "
                          "bf16/fp16; attnscope's host engine computes in fp32.") +
                       stateNote());
  bar->addWidget(new QLabel(tr("Shape:")));
  bar->addWidget(model_);
  bar->addWidget(new QLabel(tr("Element:")));
  bar->addWidget(element_);
  summary_ = new QLabel;
  summary_->setWordWrap(true);
  bar->addWidget(summary_, 1);
  topLayout->addLayout(bar);
  auto* charts = new QHBoxLayout;
  perTokenChart_ = makeLogChart(tr("Cache bytes per token of context"), tr("bytes / token"));
  totalChart_ = makeLogChart(tr("Whole KV cache"), tr("bytes"));
  charts->addWidget(chartView(perTokenChart_));
  charts->addWidget(chartView(totalChart_));
  topLayout->addLayout(charts, 1);
  source_ = new QLabel;
  source_->setWordWrap(true);
  source_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  topLayout->addWidget(source_);
  splitter->addWidget(top);

  // --- live decode ---
  auto* live = new QGroupBox(tr("Live decode through the paged KV cache"));
  auto* liveLayout = new QVBoxLayout(live);
  auto* controls = new QHBoxLayout;
  backend_ = new QComboBox;
  fillBackendCombo(backend_);
  backend_->setToolTip(tr("Backend whose decode path runs the steps."));
  prompts_ = new QLineEdit(QStringLiteral("64, 96, 128, 160"));
  prompts_->setToolTip(
      tr("Prompt length of each sequence of the batch, comma separated. Every "
         "sequence is prefilled, then decoded one token per step."));
  prompts_->setMaximumWidth(180);
  target_ = new QSpinBox;
  target_->setRange(2, 1 << 20);
  target_->setValue(320);
  target_->setToolTip(
      tr("A sequence that reaches this length is released: its pages go back "
         "to the pool."));
  pageSize_ = new QSpinBox;
  pageSize_->setRange(0, 4096);
  pageSize_->setMinimumWidth(
      pageSize_->fontMetrics().horizontalAdvance(QStringLiteral("auto (64)")) + 40);
  pageSize_->setToolTip(tr("Tokens per page; 0 uses the engine's default for the variant (%1).")
                            .arg(pageSizeDefaults()));
  pacing_ = new QComboBox;
  pacing_->addItem(tr("as fast as possible"), 0);
  pacing_->addItem(tr("50 steps/s"), 20);
  pacing_->addItem(tr("10 steps/s"), 100);
  pacing_->setCurrentIndex(1);
  pacing_->setToolTip(tr("Pause between decode steps so the page map can be watched."));
  start_ = new QPushButton(tr("Start"));
  stop_ = new QPushButton(tr("Stop"));
  controls->addWidget(new QLabel(tr("Backend:")));
  controls->addWidget(backend_);
  controls->addWidget(new QLabel(tr("Prompts:")));
  controls->addWidget(prompts_);
  controls->addWidget(new QLabel(tr("Target:")));
  controls->addWidget(target_);
  controls->addStretch(1);
  auto* controls2 = new QHBoxLayout;
  controls2->addWidget(new QLabel(tr("Page size:")));
  controls2->addWidget(pageSize_);
  controls2->addWidget(new QLabel(tr("Pace:")));
  controls2->addWidget(pacing_);
  controls2->addWidget(start_);
  controls2->addWidget(stop_);
  controls2->addStretch(1);
  liveLayout->addLayout(controls);
  liveLayout->addLayout(controls2);
  status_ =
      new QLabel(tr("The decode uses the workload panel's variant and shape (batch and "
                    "lengths come from here)."));
  status_->setWordWrap(true);
  liveLayout->addWidget(status_);
  counters_ = new QLabel;
  counters_->setTextFormat(Qt::RichText);
  counters_->setWordWrap(true);
  liveLayout->addWidget(counters_);
  liveError_ = new QLabel;
  liveError_->setObjectName("kvLiveError");
  liveError_->setStyleSheet("color: #c0392b;");
  liveError_->setWordWrap(true);
  liveLayout->addWidget(liveError_);
  pageMap_ = new PageMapWidget;
  auto* scroll = new QScrollArea;
  scroll->setWidget(pageMap_);
  scroll->setWidgetResizable(true);
  scroll->setMinimumHeight(170);
  liveLayout->addWidget(scroll, 1);
  splitter->addWidget(live);
  splitter->setStretchFactor(0, 1);
  splitter->setStretchFactor(1, 1);

  pollTimer_.setInterval(kPollMs);
  connect(&pollTimer_, &QTimer::timeout, this, &KvCacheView::poll);
  connect(model_, &QComboBox::currentIndexChanged, this, [this] {
    followModelElement();
    rebuildCurves();
  });
  connect(element_, &QComboBox::currentIndexChanged, this, &KvCacheView::rebuildCurves);
  connect(start_, &QPushButton::clicked, this, [this] { startLive(); });
  connect(stop_, &QPushButton::clicked, this, &KvCacheView::stopLive);
  connect(&runner_, &LiveDecodeRunner::sessionReady, this, [this] {
    if (!pollTimer_.isActive()) pollTimer_.start();
    poll();
  });
  connect(&runner_, &LiveDecodeRunner::progress, this, [this] { updateCounters(); });
  connect(&runner_, &LiveDecodeRunner::stopped, this, [this](bool cancelled, const QString& e) {
    pollTimer_.stop();
    poll();  // the final state: released sequences' pages are back in the pool
    if (!e.isEmpty()) liveError_->setText(guiWording(e));  // the engine's words for the window
    updateButtons();
    updateCounters();
  });
  updatePageSizeText();
  updateButtons();
  rebuildCurves();
}

KvCacheView::~KvCacheView() {
  pollTimer_.stop();
  runner_.stop();
}

int KvCacheView::elementBytes() const {
  return element_->currentData().toInt();
}

const ModelPreset* KvCacheView::model() const {
  const QString name = model_->currentData().toString();
  if (thisModel_ && name == QLatin1String(kThisModelPreset)) return &*thisModel_;
  return findModelPreset(name);
}

int64_t KvCacheView::markedContext() const {
  const ModelPreset* m = model();
  return m ? m->contextLength : 0;
}

void KvCacheView::followModelElement() {
  // The loaded model's cache is as wide as its weights; the box stays free to compare afterwards.
  const ModelPreset* m = model();
  if (!m || m->elementBytes <= 0) return;
  const int i = element_->findData(m->elementBytes);
  if (i < 0) return;
  const QSignalBlocker block(element_);  // the caller rebuilds once
  element_->setCurrentIndex(i);
}

void KvCacheView::syncThisModel(const Workload& w) {
  if (w.model == workload_.model) return;  // a knob changed; the folder is the same
  const QSignalBlocker block(model_);      // setWorkload rebuilds once
  const QString key = QString::fromLatin1(kThisModelPreset);
  const bool wasPicked = model_->currentData().toString() == key;
  const int at = model_->findData(key);
  if (!w.model) {
    thisModel_.reset();
    if (at >= 0) model_->removeItem(at);
    if (wasPicked) model_->setCurrentIndex(model_->findData(QString()));
    return;
  }
  thisModel_ = modelPresetFromCheckpoint(w.model->model.checkpoint(), w.model->name);
  if (at < 0) model_->insertItem(0, thisModel_->title, key);
  const int item = at < 0 ? 0 : at;
  model_->setItemText(item, thisModel_->title);
  model_->setItemData(item, thisModel_->source, Qt::ToolTipRole);
  if (wasPicked) followModelElement();  // another folder, maybe another dtype
}

void KvCacheView::setWorkload(const Workload& w) {
  const bool variantChanged = w.problem.variant != workload_.problem.variant;
  syncThisModel(w);
  ViewBase::setWorkload(w);
  const QString backend = resolvedBackend(w);
  if (backend != lastBackend_ && !runner_.running()) selectBackend(backend_, backend);
  lastBackend_ = backend;
  if (variantChanged) updatePageSizeText();
  rebuildCurves();
}

void KvCacheView::applySettings(const QJsonObject& s) {
  if (s.contains("model")) {
    const int i = model_->findData(s.value("model").toString());
    if (i >= 0) model_->setCurrentIndex(i);
  }
  if (s.contains("element_bytes")) {
    const int i = element_->findData(s.value("element_bytes").toInt());
    if (i >= 0) element_->setCurrentIndex(i);
  }
  if (s.contains("prompts")) prompts_->setText(s.value("prompts").toString());
  if (s.contains("target")) target_->setValue(s.value("target").toInt());
  if (s.contains("page_size")) pageSize_->setValue(s.value("page_size").toInt());
  if (s.contains("pacing_ms")) {
    const int i = pacing_->findData(s.value("pacing_ms").toInt());
    if (i >= 0) pacing_->setCurrentIndex(i);
  }
}

void KvCacheView::updatePageSizeText() {
  pageSize_->setSpecialValueText(tr("auto (%1)").arg(default_page_size(workload_.problem.variant)));
}

void KvCacheView::rebuildCurves() {
  const int e = elementBytes();
  const ModelPreset* m = model();
  const AttentionProblem base = m ? m->primary().problem : workload_.problem;
  const int layers = m ? m->layers() : 1;
  const double batch = double(std::max<int64_t>(1, base.shape.batch));
  const QVector<int64_t> lengths = kvContextLengths();

  curves_.clear();
  for (const VariantInfo& v : variants()) {
    KvCurve c;
    c.variant = v.id;
    c.name = qs(v.name);
    c.layers = layers;
    c.problem = problemForVariant(base, v.id);
    const Cost one = costAtContext(c.problem, 1, e);
    c.valuesPerTokenPerLayer = one.kv_values_per_token;
    c.bytesPerToken = one.kv_bytes_per_token * layers;
    for (int64_t n : lengths) {
      const double total = layers * costAtContext(c.problem, n, e).kv_cache_bytes;
      c.total.append(QPointF(double(n), total));
      c.perToken.append(QPointF(double(n), total / (double(n) * batch)));
    }
    curves_.append(c);
  }
  if (m) {
    KvCurve c;
    c.model = true;
    c.name = m->title;
    c.variant = m->primary().problem.variant;
    c.layers = layers;
    c.problem = m->primary().problem;
    c.valuesPerTokenPerLayer = costAtContext(c.problem, 1, e).kv_values_per_token;
    c.bytesPerToken = modelKvBytesPerToken(*m, e);
    for (int64_t n : lengths) {
      const double total = modelKvCacheBytes(*m, n, e);
      c.total.append(QPointF(double(n), total));
      c.perToken.append(QPointF(double(n), total / double(n)));
    }
    curves_.append(c);
  }

  const int64_t context = m ? m->contextLength : 0;
  // The axis widens to reach a context outside 1K..1M (tiny or huge models) so the mark shows.
  const double contextX = context > 0 ? std::log2(double(context)) : 0;
  const double xLo = context > 0 ? std::min(10.0, std::floor(contextX)) : 10;
  const double xHi = context > 0 ? std::max(20.0, std::ceil(contextX)) : 20;
  for (QChart* chart : {perTokenChart_, totalChart_}) {
    chart->removeAllSeries();
    chart->axes(Qt::Horizontal).front()->setRange(xLo, xHi);
    double lo = INFINITY, hi = 0;
    for (const KvCurve& c : curves_) {
      auto* s = new QLineSeries;
      s->setName(c.model ? tr("the model") : c.name);
      s->setProperty("modelCurve", c.model);
      for (const QPointF& pt : chart == totalChart_ ? c.total : c.perToken) {
        if (pt.y() <= 0 || !std::isfinite(pt.y())) continue;  // a log axis cannot show 0
        s->append(std::log2(pt.x()), pt.y());
        lo = std::min(lo, pt.y());
        hi = std::max(hi, pt.y());
      }
      chart->addSeries(s);
      for (QAbstractAxis* a : chart->axes()) s->attachAxis(a);
    }
    if (hi > 0) {
      const double top = std::pow(10.0, std::ceil(std::log10(hi * 1.5)));
      const double bottom = std::pow(10.0, std::floor(std::log10(lo / 1.5)));
      chart->axes(Qt::Vertical).front()->setRange(bottom, top);
      if (context > 0) {
        auto* mark = new QLineSeries;
        mark->setName(tr("context %1").arg(context));
        mark->setProperty("contextMarker", true);
        mark->append(contextX, bottom);
        mark->append(contextX, top);
        chart->addSeries(mark);
        for (QAbstractAxis* a : chart->axes()) mark->attachAxis(a);
      }
    }
  }
  perTokenChart_->legend()->hide();  // same colours as the whole-cache chart's legend
  restyle();

  // Summary and sources.
  const QString elem = e == 4                                       ? tr("fp32")
                       : m && m->storedType == QLatin1String("F16") ? tr("fp16")
                                                                    : tr("bf16");
  if (m) {
    const double values = costAtContext(m->primary().problem, 1, e).kv_values_per_token;
    summary_->setText(tr("<b>%1</b>: %2 layers · %3 values/token/layer (%4) · %5 per token, all "
                         "layers (%6) · one sequence: %7 at 8K, %8 at 128K, %9 at 1M")
                          .arg(m->title)
                          .arg(m->layers())
                          .arg(values)
                          .arg(m->primary().role)
                          .arg(humanBytes(modelKvBytesPerToken(*m, e)), elem,
                               humanBytes(modelKvCacheBytes(*m, 8192, e)),
                               humanBytes(modelKvCacheBytes(*m, 131072, e)),
                               humanBytes(modelKvCacheBytes(*m, 1 << 20, e))) +
                      (context > 0 ? tr(" · its context (%1 tokens): %2")
                                         .arg(context)
                                         .arg(humanBytes(modelKvCacheBytes(*m, context, e)))
                                   : QString()));
    QStringList groups;
    for (const ModelLayerGroup& g : m->groups) {
      groups.append(tr("%1 × %2 [%3]")
                        .arg(g.layers)
                        .arg(g.role, QString::fromStdString(g.problem.describe())));
    }
    source_->setText(tr("Source: %1. %2 Layers: %3. Variant curves: every variant at the "
                        "attention layers' shape × %4 layers.")
                         .arg(m->source, m->notes, groups.join(QStringLiteral("; ")))
                         .arg(m->layers()));
  } else {
    QStringList perVariant;
    for (const KvCurve& c : curves_) {
      perVariant.append(c.valuesPerTokenPerLayer > 0
                            ? tr("%1 %2").arg(c.name).arg(c.valuesPerTokenPerLayer)
                            : tr("%1 constant state").arg(c.name));
    }
    summary_->setText(tr("One layer at the workload's shape, batch %1 (%2). Cached values per "
                         "token: %3. Pick a model for realistic shapes and all of its layers.")
                          .arg(qint64(batch))
                          .arg(elem, perVariant.join(QStringLiteral(" · "))));
    source_->setText(tr("Workload: %1. Numbers: cost_of() of each variant (docs/cost-model.md); "
                        "kv heads follow each variant's rule (one for a shared latent, one "
                        "state per head for a recurrence).")
                         .arg(QString::fromStdString(workload_.problem.describe())));
  }
}

void KvCacheView::restyle() {
  for (QChart* chart : {perTokenChart_, totalChart_}) {
    int i = 0;
    for (QAbstractSeries* a : chart->series()) {
      auto* s = qobject_cast<QLineSeries*>(a);
      if (!s) continue;
      if (s->property("contextMarker").toBool()) {
        s->setPen(QPen(palette().color(QPalette::Mid), 1.5, Qt::DotLine));
        continue;  // not a curve: the curves keep their colours
      }
      if (s->property("modelCurve").toBool()) {
        QPen pen(palette().color(QPalette::WindowText), 3.5, Qt::DashLine);
        s->setPen(pen);
      } else {
        s->setPen(QPen(curveColor(i), 2));
      }
      ++i;
    }
  }
}

void KvCacheView::changeEvent(QEvent* e) {
  ViewBase::changeEvent(e);
  if (e->type() == QEvent::PaletteChange || e->type() == QEvent::ApplicationPaletteChange) {
    restyle();  // a chart theme change resets the pens
  }
}

LiveDecodeConfig KvCacheView::liveConfig(QString* error) const {
  LiveDecodeConfig c;
  c.problem = workload_.problem;
  c.pattern = workload_.pattern;
  c.seed = workload_.seed;
  c.backend = backend_->currentData(Qt::UserRole).toString();
  c.targetLength = target_->value();
  c.pageSize = pageSize_->value();
  c.stepDelayMs = pacing_->currentData().toInt();
  QString e = LiveDecodeConfig::parsePrompts(prompts_->text(), c.promptLengths);
  if (e.isEmpty()) e = c.check();
  if (error) *error = e;
  return c;
}

bool KvCacheView::startLive() {
  QString error;
  const LiveDecodeConfig c = liveConfig(&error);
  if (!error.isEmpty()) {
    liveError_->setText(error);
    return false;
  }
  liveError_->clear();
  runningConfig_ = c;
  snapshots_ = 0;
  auditFailures_ = 0;
  snapshot_.reset();
  pageMap_->clear();
  runner_.start(c);
  updateButtons();
  updateCounters();
  return true;
}

void KvCacheView::stopLive() {
  runner_.stop();
}

void KvCacheView::poll() {
  const LiveDecodeRunPtr run = runner_.current();
  if (!run || !run->session) return;
  KvSnapshot s = KvSnapshot::of(run->cache());
  ++snapshots_;
  if (s.audit) {
    ++auditFailures_;
    liveError_->setText(
        tr("page accounting inconsistent: %1").arg(QString::fromStdString(*s.audit)));
  }
  pageMap_->setSnapshot(s, runningConfig_.problem);
  snapshot_ = std::move(s);
  updateCounters();
}

void KvCacheView::updateButtons() {
  const bool running = runner_.running();
  start_->setEnabled(!running);
  stop_->setEnabled(running);
  for (QWidget* w :
       std::initializer_list<QWidget*>{backend_, prompts_, target_, pageSize_, pacing_}) {
    w->setEnabled(!running);
  }
}

void KvCacheView::updateCounters() {
  const LiveDecodeProgress& p = runner_.lastProgress();
  const LiveDecodeRunPtr run = runner_.current();
  if (runner_.running() || !p.phase.isEmpty()) {
    int released = 0;
    for (bool r : p.released) released += r ? 1 : 0;
    status_->setText(tr("%1 · %2 on %3 · step %4 · %5 decode tokens/s · %6 of %7 sequences "
                        "released")
                         .arg(p.phase.isEmpty() ? tr("starting") : p.phase,
                              QString::fromStdString(runningConfig_.problem.describe()),
                              run ? run->device : liveBackendName(runningConfig_.backend))
                         .arg(p.steps)
                         .arg(p.tokensPerSecond, 0, 'f', 0)
                         .arg(released)
                         .arg(p.released.size()));
  }
  if (!snapshot_) {
    counters_->clear();
    return;
  }
  const KvCacheStats& s = snapshot_->stats;
  counters_->setText(
      tr("<b>pages</b> allocated %1 · used %2 · free %3%4 &nbsp; <b>bytes/token</b> %5 &nbsp; "
         "<b>bytes</b> used %6 / allocated %7 &nbsp; <b>fragmentation</b> %8% &nbsp; "
         "<b>tokens</b> seen %9 · resident %10 &nbsp; <b>evicted pages</b> %11 &nbsp; "
         "<b>audit</b> %12")
          .arg(s.pages_allocated)
          .arg(s.pages_used)
          .arg(s.pages_free)
          .arg(s.max_pages > 0 ? tr(" (capacity %1)").arg(s.max_pages) : QString())
          .arg(humanBytes(s.bytes_per_token))
          .arg(humanBytes(double(s.bytes_used)), humanBytes(double(s.bytes_allocated)))
          .arg(s.fragmentation * 100, 0, 'f', 1)
          .arg(s.tokens_seen)
          .arg(s.tokens_resident)
          .arg(s.pages_evicted)
          .arg(snapshot_->audit ? tr("<span style='color:#c0392b'>FAILED</span>")
                                : tr("consistent (%1 snapshots)").arg(snapshots_)));
}

QString KvCacheView::prepareHeadless(int timeoutMs) {
  // Decode until the first sequence is released (so the picture shows live pages, a freed
  // range and, for SWA, evicted pages), then stop.
  if (!startLive()) return liveError_->text();
  QElapsedTimer t;
  t.start();
  const auto pump = [] {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    QThread::msleep(5);
  };
  while (runner_.running() && t.elapsed() < timeoutMs) {
    const LiveDecodeProgress& p = runner_.lastProgress();
    if (p.released.contains(true) && p.released.contains(false)) break;
    pump();
  }
  stopLive();
  while (runner_.running() && t.elapsed() < timeoutMs + 10000) pump();
  poll();
  return runner_.lastError();
}

QJsonObject KvCacheView::exportData() const {
  QJsonObject o;
  const ModelPreset* m = model();
  o["element_bytes"] = elementBytes();
  if (m) {
    QJsonArray groups;
    for (const ModelLayerGroup& g : m->groups) {
      Workload w;
      w.problem = g.problem;
      groups.append(QJsonObject{{"role", g.role}, {"layers", g.layers}, {"problem", w.toJson()}});
    }
    QJsonObject model{{"name", m->name},   {"title", m->title},     {"source", m->source},
                      {"notes", m->notes}, {"layers", m->layers()}, {"groups", groups}};
    if (m->contextLength > 0) model["context_length"] = qint64(m->contextLength);
    if (m->elementBytes > 0) {
      model["stored_type"] = m->storedType;
      model["stored_element_bytes"] = m->elementBytes;
    }
    o["model"] = model;
  } else {
    o["model"] = QJsonValue::Null;
  }
  QJsonArray lengths;
  for (int64_t n : kvContextLengths()) lengths.append(qint64(n));
  o["context_lengths"] = lengths;
  QJsonArray curves;
  for (const KvCurve& c : curves_) {
    QJsonArray total, perToken;
    for (const QPointF& p : c.total) total.append(p.y());
    for (const QPointF& p : c.perToken) perToken.append(p.y());
    curves.append(QJsonObject{{"name", c.name},
                              {"model", c.model},
                              {"variant", variantName(c.variant)},
                              {"layers", c.layers},
                              {"describe", QString::fromStdString(c.problem.describe())},
                              {"values_per_token_per_layer", c.valuesPerTokenPerLayer},
                              {"bytes_per_token", c.bytesPerToken},
                              {"cache_bytes", total},
                              {"cache_bytes_per_token_of_context", perToken}});
  }
  o["curves"] = curves;

  QJsonObject live;
  live["machine"] = machineJson();
  if (const LiveDecodeRunPtr run = runner_.current()) {
    live["config"] = runningConfig_.toJson();
    live["device"] = run->device;
    const LiveDecodeProgress& p = runner_.lastProgress();
    live["progress"] = QJsonObject{{"phase", p.phase},
                                   {"steps", p.steps},
                                   {"tokens", p.tokens},
                                   {"tokens_per_second", p.tokensPerSecond}};
  }
  if (snapshot_) {
    live["stats"] = statsJson(snapshot_->stats);
    live["audit"] = snapshot_->audit ? QJsonValue(QString::fromStdString(*snapshot_->audit))
                                     : QJsonValue(QStringLiteral("consistent"));
    QJsonArray seqs;
    for (const KvSequenceMap& s : snapshot_->sequences) {
      QJsonArray pages, fill;
      for (int32_t pg : s.pages) pages.append(pg);
      for (int64_t f : s.page_fill) fill.append(qint64(f));
      seqs.append(QJsonObject{{"id", qint64(s.id)},
                              {"length", qint64(s.length)},
                              {"pages", pages},
                              {"page_fill", fill},
                              {"state_bytes", qint64(s.state_bytes)}});
    }
    live["sequences"] = seqs;
  }
  o["live_decode"] = live;
  return o;
}

QString KvCacheView::exportCsv() const {
  QString s = QStringLiteral("# KV cache: %1, element %2 bytes\n")
                  .arg(model() ? model()->title : tr("workload shape, one layer"))
                  .arg(elementBytes());
  s += QStringLiteral("curve,variant,layers,context_tokens,cache_bytes,cache_bytes_per_token\n");
  for (const KvCurve& c : curves_) {
    for (qsizetype i = 0; i < c.total.size(); ++i) {
      s += QStringLiteral("\"%1\",%2,%3,%4,%5,%6\n")
               .arg(c.name, variantName(c.variant))
               .arg(c.layers)
               .arg(qint64(c.total[i].x()))
               .arg(c.total[i].y(), 0, 'g', 10)
               .arg(c.perToken[i].y(), 0, 'g', 10);
    }
  }
  if (snapshot_) {
    const KvCacheStats& st = snapshot_->stats;
    s += QStringLiteral(
             "# live decode: pages allocated %1, used %2, free %3, tokens seen %4, resident %5, "
             "evicted pages %6, fragmentation %7\n")
             .arg(st.pages_allocated)
             .arg(st.pages_used)
             .arg(st.pages_free)
             .arg(st.tokens_seen)
             .arg(st.tokens_resident)
             .arg(st.pages_evicted)
             .arg(st.fragmentation, 0, 'g', 6);
  }
  return s;
}

}  // namespace attnscope::gui
