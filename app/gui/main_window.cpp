// Main window wiring. Every change (panel edit, view setting, zoom, tab switch) becomes a request
// to the controller; results are routed to the view that asked. Errors go to a status line that
// tests can read and, interactively, to one reusable non-modal message box.
#include "main_window.hpp"

#include <QActionGroup>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QEventLoop>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QInputDialog>
#include <QJsonDocument>
#include <QKeyEvent>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QScreen>
#include <QScrollArea>
#include <QSettings>
#include <QSpinBox>
#include <QStatusBar>
#include <QStyleFactory>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <cmath>

#include "attnscope/registry.hpp"
#include "exporter.hpp"
#include "live/model_presets.hpp"
#include "presets.hpp"
#include "views/atlas_view.hpp"
#include "views/attention_map_view.hpp"
#include "views/benchmark_view.hpp"
#include "views/block_selection_view.hpp"
#include "views/compare_view.hpp"
#include "views/kv_cache_view.hpp"
#include "views/learn_view.hpp"
#include "views/state_view.hpp"
#include "views/text_view.hpp"
#include "views/throughput_view.hpp"
#include "views/whatif_view.hpp"
#include "wording.hpp"
#include "workload_panel.hpp"

namespace attnscope::gui {
namespace {
QString humanCount(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T", "P"};
  int i = 0;
  while (v >= 1000 && i < 5) {
    v /= 1000;
    ++i;
  }
  return QStringLiteral("%1 %2%3").arg(v, 0, 'f', v < 10 ? 2 : 1).arg(prefixes[i], unit);
}
}  // namespace

MainWindow::MainWindow(const Options& options) : options_(options) {
  setWindowTitle(tr("attnscope - attention explorer"));
  setAcceptDrops(true);

  panel_ = new WorkloadPanel;
  auto* scroll = new QScrollArea;
  scroll->setWidget(panel_);
  scroll->setWidgetResizable(true);
  // Its minimum, not its preferred width, bounds the window's: the window must fit 1280 px with
  // the widest view beside it. It opens at the preferred width (resizeDocks below).
  scroll->setMinimumWidth(std::min(panel_->minimumSizeHint().width(), 300) + 24);
  auto* dock = new QDockWidget(tr("Workload"), this);
  dock->setObjectName("workloadDock");
  dock->setWidget(scroll);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  resizeDocks({dock}, {panel_->sizeHint().width() + 24}, Qt::Horizontal);

  tabs_ = new QTabWidget;
  auto* textView = new TextView;
  auto* atlasView = new AtlasView;
  auto* whatIfView = new WhatIfView;
  views_ = {new AttentionMapView,   textView,           atlasView,        whatIfView,
            new BlockSelectionView, new CompareView,    makeStateView(),  learn_ = new LearnView,
            new KvCacheView,        new ThroughputView, new BenchmarkView};
  // Views of a capability name the variants that have it.
  QStringList sparse, stateful;
  for (const VariantInfo& v : variants()) {
    const QString title = QString::fromUtf8(v.short_title.data(), qsizetype(v.short_title.size()));
    if (showsSelection(v)) sparse << title;
    if (v.has_state) stateful << title;
  }
  const QStringList titles = {tr("Attention map"),
                              tr("Text"),
                              tr("Head atlas"),
                              tr("What-if"),
                              tr("Selection (%1)").arg(sparse.join(QStringLiteral(", "))),
                              tr("Compare"),
                              stateful.join(QStringLiteral(", ")),
                              tr("Learn"),
                              tr("KV cache"),
                              tr("Throughput"),
                              tr("Benchmark")};
  for (int i = 0; i < views_.size(); ++i) {
    tabs_->addTab(views_[i], titles[i]);
    connect(views_[i], &ViewBase::requestChanged, this, [this, v = views_[i]] {
      if (v == currentView()) requestView();
    });
    connect(views_[i], &ViewBase::hoverText, this, [this](const QString& t) {
      // Only the position and value: the pooled-cell note stays in the view's own tooltip.
      hoverLabel_->setText(t.section(QStringLiteral("  ("), 0, 0));
    });
  }
  setCentralWidget(tabs_);

  backendLabel_ = new QLabel;
  runLabel_ = new QLabel;
  runLabel_->setObjectName("runLabel");
  costLabel_ = new QLabel;
  costLabel_->setObjectName("costLabel");
  hoverLabel_ = new QLabel;
  errorLabel_ = new QLabel;
  errorLabel_->setStyleSheet("color: #c0392b;");
  errorLabel_->setObjectName("errorLabel");
  progress_ = new QProgressBar;
  progress_->setRange(0, 1000);
  progress_->setMaximumWidth(180);
  progress_->setTextVisible(true);
  progress_->hide();
  cancelButton_ = new QToolButton;
  cancelButton_->setText(tr("Cancel"));
  cancelButton_->setToolTip(tr("Stop the running computation (Esc)."));
  cancelButton_->hide();
  // Long texts (an error, a problem's description) are clipped, never widen the window past the
  // screen; the tooltips hold them whole.
  for (QLabel* l : {backendLabel_, runLabel_, costLabel_, errorLabel_}) l->setMinimumWidth(8);
  statusBar()->addWidget(backendLabel_);
  statusBar()->addWidget(runLabel_);
  statusBar()->addWidget(costLabel_);
  statusBar()->addWidget(errorLabel_, 1);
  hoverLabel_->setToolTip(tr("The entry under the mouse in the current view."));
  statusBar()->addPermanentWidget(hoverLabel_);
  statusBar()->addPermanentWidget(progress_);
  statusBar()->addPermanentWidget(cancelButton_);

  buildMenus();

  // The model source: the folder opens on the worker, then the panel puts it with the text.
  connect(panel_, &WorkloadPanel::loadModelRequested, &controller_, &ExplorerController::loadModel);
  connect(&controller_, &ExplorerController::modelLoaded, panel_, &WorkloadPanel::applyModel);
  // Clear while a folder is still opening: the folder must not arrive afterwards.
  connect(panel_->modelBox(), &ModelInputBox::clearRequested, &controller_,
          &ExplorerController::cancelModelLoad);
  connect(&controller_, &ExplorerController::modelFailed, this,
          [this](const QString& dir, const QString& message) {
            panel_->modelFailed(dir, guiWording(message));
            onError(guiWording(message));
          });
  const auto openModel = [this] { panel_->modelBox()->openButton()->click(); };
  connect(textView, &TextView::openModelRequested, this, openModel);
  connect(atlasView, &AtlasView::openModelRequested, this, openModel);
  connect(whatIfView, &WhatIfView::openModelRequested, this, openModel);
  connect(atlasView, &AtlasView::openHeadRequested, this, [this](int layer, int head) {
    auto* map = static_cast<AttentionMapView*>(view(ViewKind::map));
    map->setLayer(layer);
    map->setHeadSelection(HeadMode::single, head, 0);
    setCurrentView(ViewKind::map);
  });

  connect(panel_, &WorkloadPanel::workloadEdited, this, &MainWindow::setWorkload);
  connect(panel_, &WorkloadPanel::loadFileRequested, &controller_, &ExplorerController::loadFile);
  // Queued: the controller switches to the file's own workload right after this signal; the merge
  // (the file's shape on the settings in force) comes after that, so it is what runs.
  connect(
      &controller_, &ExplorerController::fileLoaded, this,
      [this](const QString&, const Workload& w) { onFileLoaded(w); }, Qt::QueuedConnection);
  connect(&controller_, &ExplorerController::resultReady, this, &MainWindow::onResult);
  connect(&controller_, &ExplorerController::errorOccurred, this, &MainWindow::onError);
  connect(&controller_, &ExplorerController::cancelled, this, &MainWindow::onCancelled);
  connect(&controller_, &ExplorerController::busyChanged, this, [this](bool busy) {
    progress_->setVisible(busy);
    cancelButton_->setVisible(busy);
    progress_->setValue(0);
    if (busy) {
      markStale(tr("previous result · computing…"));
    } else {
      // The phase and its tooltip describe a job that is over: back to the result on screen.
      progress_->setToolTip({});
      showDrawn();
    }
  });
  connect(&controller_, &ExplorerController::progressChanged, this,
          [this](double f, const QString& phase) {
            progress_->setValue(int(f * 1000));
            progress_->setFormat(QStringLiteral("%p%"));
            progress_->setToolTip(phase);
            runLabel_->setText(phase + QStringLiteral("…"));
          });
  connect(cancelButton_, &QToolButton::clicked, &controller_, &ExplorerController::cancel);
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { requestView(true); });
  connect(learn_, &LearnView::presetRequested, this, [this](const QString& name) {
    if (QString e = applyPreset(name); !e.isEmpty()) onError(e);
  });

  resize(defaultSize(screen()->availableGeometry()));
  qApp->installEventFilter(this);  // Ctrl+E from a focused field (eventFilter)
  Workload initial = Workload::defaults();
  if (options_.useSettings)
    restoreSettings();
  else
    setWorkload(initial);
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open tensors…"), QKeySequence::Open, this, &MainWindow::openTensors);
  exportFigureAction_ = file->addAction(tr("&Export figure…"), QKeySequence(tr("Ctrl+E")), this,
                                        &MainWindow::exportFigureDialog);
  exportFigureAction_->setObjectName("exportFigureAction");
  exportDataAction_ = file->addAction(tr("Export &data…"), QKeySequence(tr("Ctrl+Shift+E")), this,
                                      &MainWindow::exportDataDialog);
  exportDataAction_->setObjectName("exportDataAction");
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* run = menuBar()->addMenu(tr("&Run"));
  // One action, two keys: a fresh engine run (caches dropped), not only a new map of the old one.
  QAction* recompute = run->addAction(tr("&Recompute"), &controller_, &ExplorerController::rerun);
  recompute->setObjectName("recomputeAction");
  recompute->setShortcuts({QKeySequence(tr("Ctrl+R")), QKeySequence(Qt::Key_F5)});
  recompute->setStatusTip(tr("Run the engine again on the current workload (Ctrl+R, F5)."));
  run->addAction(tr("&Cancel"), QKeySequence(Qt::Key_Escape), &controller_,
                 &ExplorerController::cancel);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  view->addAction(tr("Zoom &in"), QKeySequence::ZoomIn, this, [this] { currentView()->zoomIn(); });
  view->addAction(tr("Zoom &out"), QKeySequence::ZoomOut, this,
                  [this] { currentView()->zoomOut(); });
  view->addAction(tr("&Reset zoom"), QKeySequence(tr("Ctrl+0")), this,
                  [this] { currentView()->resetZoom(); });
  view->addSeparator();
  for (int i = 0; i < views_.size(); ++i) {
    // Ctrl+1 … Ctrl+9 for the first nine tabs; the rest by menu or mouse.
    const QKeySequence key =
        i < 9 ? QKeySequence(QStringLiteral("Ctrl+%1").arg(i + 1)) : QKeySequence();
    view->addAction(tabs_->tabText(i), key, this, [this, i] { tabs_->setCurrentIndex(i); });
  }
  view->addSeparator();
  auto* themes = new QActionGroup(this);
  QAction* light = view->addAction(tr("&Light palette"), this, [this] { setDarkPalette(false); });
  QAction* dark = view->addAction(tr("&Dark palette"), this, [this] { setDarkPalette(true); });
  for (QAction* a : {light, dark}) {
    a->setCheckable(true);
    themes->addAction(a);
  }
  light->setChecked(true);
  darkAction_ = dark;
  auto* maps = new QActionGroup(this);
  for (const QString& name : Colormap::names()) {
    QAction* a =
        view->addAction(tr("Colormap: %1").arg(name), this, [this, name] { setColormap(name); });
    a->setCheckable(true);
    a->setChecked(name == "viridis");
    a->setData(name);
    maps->addAction(a);
    colormapActions_.append(a);
  }

  QMenu* learn = menuBar()->addMenu(tr("&Learn"));
  for (const Preset& p : presets()) {
    learn->addAction(p.title, this, [this, name = p.name] {
      if (QString e = applyPreset(name); !e.isEmpty()) onError(e);
    });
  }
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About attnscope"), this, [this] {
    QStringList kinds;
    for (const VariantInfo& v : variants()) kinds << midSentence(v.short_title);
    QMessageBox::about(this, tr("About attnscope"),
                       tr("<b>attnscope %1</b><br>An explorer for attention mechanisms: %2.")
                           .arg(QStringLiteral(ATTNSCOPE_VERSION), joinAnd(kinds)));
  });
}

ViewBase* MainWindow::view(ViewKind kind) const {
  for (ViewBase* v : views_) {
    if (v->kind() == kind) return v;
  }
  return nullptr;
}

ViewBase* MainWindow::currentView() const {
  return static_cast<ViewBase*>(tabs_->currentWidget());
}

void MainWindow::setCurrentView(ViewKind kind) {
  if (ViewBase* v = view(kind)) tabs_->setCurrentWidget(v);
}

void MainWindow::setWorkload(const Workload& w) {
  // Results of another model (or of one, now that there is none) stay on screen as previous
  // results, but must not keep that model's weights (gigabytes for a 1B model) alive.
  for (ViewBase* v : views_) {
    if (const ViewResultPtr r = v->lastResult(); r && r->workload.model != w.model) {
      v->releaseModel();
    }
  }
  if (drawn_ && drawn_->workload.model != w.model) drawn_ = withoutModel(drawn_);
  panel_->setWorkload(w);
  for (ViewBase* v : views_) v->setWorkload(w);
  errorLabel_->clear();
  lastError_.clear();
  panel_->setError({});
  ViewRequest r;
  currentView()->fillRequest(r);
  controller_.setViewRequest(r);
  controller_.setWorkload(w);
  // Until the answer arrives, what is drawn is the previous workload's, and says so.
  markStale(tr("previous result · computing…"));
  showDrawn();
}

void MainWindow::requestView(bool immediate) {
  ViewRequest r;
  currentView()->fillRequest(r);
  controller_.setViewRequest(r, immediate);
}

bool MainWindow::settled() const {
  return !controller_.busy() && !controller_.pending() &&
         (lastResultView_ == currentView()->kind() || !lastError_.isEmpty());
}

QString MainWindow::applyPreset(const QString& name) {
  const Preset* p = findPreset(name);
  if (!p) {
    return tr("unknown preset '%1' (known: %2)").arg(name, presetNames().join(", "));
  }
  if (p->needsModel) {
    // The user's model is the workload: keep it (or, without one, the views say what to open and
    // offer the folder picker); only the view and its settings change.
    for (ViewBase* v : views_) {
      v->applySettings(p->viewSettings.value(viewName(v->kind())).toObject());
    }
    learn_->selectPreset(name);
    setCurrentView(p->view);
    requestView(true);
    return {};
  }
  Workload w;
  if (QString e = Workload::fromJson(p->workload, w); !e.isEmpty()) return e;
  // A demo of synthetic inputs: a model folder still opening (the last session's) must not
  // replace it when it arrives.
  controller_.cancelModelLoad();
  if (!panel_->workload().model) panel_->modelBox()->setModel(nullptr);
  if (w.backend.isEmpty() || !find_backend(w.backend.toStdString()) ||
      !find_backend(w.backend.toStdString())->available().ok) {
    w.backend = panel_->workload().backend;  // keep the user's choice of backend
  }
  for (ViewBase* v : views_) v->setWorkload(w);
  for (ViewBase* v : views_) {
    v->applySettings(p->viewSettings.value(viewName(v->kind())).toObject());
  }
  learn_->selectPreset(name);
  setCurrentView(p->view);
  setWorkload(w);
  return {};
}

void MainWindow::onResult(const ViewResultPtr& delivered) {
  // A late answer about a model already closed is drawn, but does not keep that model alive.
  const ViewResultPtr r = delivered->workload.model != controller_.workload().model
                              ? withoutModel(delivered)
                              : delivered;
  if (ViewBase* v = view(r->request.view)) v->showResult(r);
  lastResultView_ = r->request.view;
  lastError_.clear();
  ++shownResults_;
  drawn_ = r;
  if (r->workload.runKey() != controller_.workload().runKey()) {
    // The answer to a workload already edited away (delivered during the debounce): drawn, but
    // greyed as the previous result, and it fixes nothing the error box reported.
    markStale(tr("previous result · computing…"));
    showDrawn();
    return;
  }
  errorLabel_->clear();
  errorLabel_->setToolTip({});
  panel_->setError({});
  closeErrorBox();  // whatever it reported is fixed: this workload ran
  showDrawn();
}

void MainWindow::showDrawn() {
  if (!drawn_) {
    runLabel_->clear();
    costLabel_->clear();
    return;
  }
  const ViewResult& r = *drawn_;
  const QString device = backendLabel_->fontMetrics().elidedText(r.run.device, Qt::ElideRight, 220);
  backendLabel_->setText(tr("%1 · %2").arg(r.run.backend, device));
  backendLabel_->setToolTip(r.run.device);
  if (r.workload.model && r.layers > 0) {
    // A model's run is its forward, and what it says about the text is its perplexity.
    runLabel_->setText(std::isfinite(r.perplexity)
                           ? tr("forward %1 s · perplexity %2")
                                 .arg(r.run.seconds, 0, 'f', 2)
                                 .arg(r.perplexity, 0, 'g', 4)
                           : tr("forward %1 s").arg(r.run.seconds, 0, 'f', 2));
  } else {
    runLabel_->setText(tr("run %1 ms").arg(r.run.seconds * 1000, 0, 'f', 1));
  }
  const QString cost =
      tr("%1 · %2 moved · %3")
          .arg(humanCount(r.run.flops, "FLOP"), humanBytes(r.run.bytes), r.run.describe);
  // The cost line describes the picture on screen; when that is an older workload's (computing,
  // cancelled, failed), it says so rather than passing it off as the current problem's.
  const bool current = r.workload.runKey() == controller_.workload().runKey();
  costLabel_->setText(current ? cost : tr("shown: previous result · %1").arg(cost));
  costLabel_->setToolTip(current ? cost
                                 : tr("The picture is the previous result; the current settings "
                                      "have not produced one yet.\n%1")
                                       .arg(cost));
}

bool MainWindow::drawnIsCurrent(const ViewBase* v) const {
  const ViewResultPtr r = v->lastResult();
  return !r || r->workload.runKey() == controller_.workload().runKey();
}

void MainWindow::markStale(const QString& why) {
  for (ViewBase* v : views_) {
    if (!qobject_cast<ResultView*>(v)) continue;  // live views draw their own work
    v->showStale(drawnIsCurrent(v) ? QString() : why);
  }
}

void MainWindow::closeErrorBox() {
  if (errorBox_) errorBox_->hide();
}

void MainWindow::onCancelled() {
  errorLabel_->setText(tr("cancelled: the picture is the previous result"));
  errorLabel_->setToolTip({});
  markStale(tr("previous result · cancelled"));
  showDrawn();
}

void MainWindow::onError(const QString& raw) {
  const QString message = guiWording(raw);
  lastError_ = message;
  errorLabel_->setText(message);
  errorLabel_->setToolTip(message);
  markStale(tr("previous result · the current settings failed (see the status bar)"));
  showDrawn();
  // A value the problem refuses (heads not divisible by kv heads, …) is shown beside the field
  // being edited and never pops up: it is usually an intermediate value on the way to another.
  // The box is for what the panel cannot show (a backend that refuses, a file that fails).
  const auto why = controller_.workload().problem.validate();
  const bool inPlace = why && guiWording(QString::fromStdString(*why)) == message;
  panel_->setError(message, inPlace);
  if (inPlace) {
    closeErrorBox();
    return;
  }
  if (!options_.dialogs) return;
  if (!errorBox_) {
    errorBox_ = new QMessageBox(QMessageBox::Warning, tr("attnscope"), {}, QMessageBox::Ok, this);
    errorBox_->setWindowModality(Qt::NonModal);
  }
  errorBox_->setText(message);
  errorBox_->show();
}

void MainWindow::onFileLoaded(const Workload& fromFile) {
  // The file brings its shape; window, seed, pattern, backend and the rest stay as they were.
  panel_->applyFile(fromFile);
  setWorkload(panel_->workload());
}

void MainWindow::openTensors() {
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open tensors"), {}, tr("Tensors (*.safetensors *.npy);;All files (*)"));
  if (!path.isEmpty()) controller_.loadFile(path);
}

QString MainWindow::exportFigureTo(const QString& path, int dpi, bool whiteBackground) {
  ViewBase* v = currentView();
  // The Benchmark view exports its chart object itself (fixed size, as `attnscope chart` does);
  // before it has a sweep, like any view, a picture of itself.
  if (auto* b = qobject_cast<BenchmarkView*>(v); b && !b->sweep().points.empty()) {
    return b->exportChart(path, dpi);
  }
  FigureOptions options;
  options.dpi = dpi;
  options.whiteBackground = whiteBackground;
  options.config = runConfiguration(controller_.workload(), *v);
  // A document title a reader can use: the view and the variant, not the configuration.
  const VariantInfo& info = variant_info(controller_.workload().problem.variant);
  options.title =
      tr("%1 - %2 (attnscope)")
          .arg(tabs_->tabText(tabs_->indexOf(v)).section(QStringLiteral(" ("), 0, 0),
               QString::fromUtf8(info.short_title.data(), qsizetype(info.short_title.size())));
  // A raster figure of the map is drawn at its own resolution: the drawn region is re-probed with
  // one cell per output pixel (on the controller's export lane), not the screen's cells enlarged.
  auto* map = qobject_cast<AttentionMapView*>(v);
  const QString suffix = QFileInfo(path).suffix().toLower();
  const double scale = std::max(0.25, dpi / 96.0);
  const QSize out(int(std::lround(v->figure()->width() * scale)),
                  int(std::lround(v->figure()->height() * scale)));
  ViewRequest request;
  MapImage fine;
  if (map && (suffix == QLatin1String("png") || suffix == QLatin1String("pdf")) &&
      checkImageSize(out.width(), out.height()).isEmpty()) {
    const QRectF plot = map->heatmap()->plotArea();
    const QSize grid(std::clamp(int(std::lround(plot.width() * scale)), 1, kMaxImageSide),
                     std::clamp(int(std::lround(plot.height() * scale)), 1, kMaxImageSide));
    static bool inFlight = false;  // the wait below runs the event loop: Ctrl+E must not nest
    if (inFlight) return tr("cannot write %1: another export is still computing").arg(path);
    if (map->exportRequest(controller_.workload(), grid, request)) {
      struct Outcome {
        bool finished = false;
        ViewResultPtr result;
        QString error;
      };
      auto outcome = std::make_shared<Outcome>();
      QEventLoop loop;
      const QPointer<QEventLoop> wake(&loop);
      inFlight = true;
      QApplication::setOverrideCursor(Qt::WaitCursor);
      controller_.computeForExport(
          request,
          [outcome, wake](ViewResultPtr r) {
            outcome->result = std::move(r);
            outcome->finished = true;
            if (wake) wake->quit();
          },
          [outcome, wake](const QString& e) {
            outcome->error = e.isEmpty() ? tr("the map could not be computed") : e;
            outcome->finished = true;
            if (wake) wake->quit();
          });
      if (!outcome->finished) loop.exec();
      QApplication::restoreOverrideCursor();
      inFlight = false;
      if (!outcome->error.isEmpty()) return tr("cannot write %1: %2").arg(path, outcome->error);
      if (outcome->result && !outcome->result->maps.isEmpty()) {
        fine = outcome->result->maps.front();
      }
    }
  }
  if (fine.values.isEmpty()) return exportFigure(v->figure(), path, options);
  map->heatmap()->beginExportMap(fine);
  const QString e = exportFigure(v->figure(), path, options);
  map->heatmap()->endExportMap();
  return e;
}

QString MainWindow::exportDataTo(const QString& path) {
  // A sweep's data is its own JSON (what `attnscope chart` reads) or CSV.
  if (auto* b = qobject_cast<BenchmarkView*>(currentView()); b && !b->sweep().points.empty()) {
    return b->exportSweepData(path);
  }
  return exportData(*currentView(), controller_.workload(), path);
}

void MainWindow::exportFigureDialog() {
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export figure"), viewName(currentView()->kind()) + ".png",
      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"));
  if (path.isEmpty()) return;
  // Resolution (PNG and PDF) and background; the last choices are offered again.
  static int lastDpi = 300;
  static bool lastWhite = true;
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Export figure"));
  auto* form = new QFormLayout(&dialog);
  auto* dpiSpin = new QSpinBox;
  dpiSpin->setRange(48, 1200);
  dpiSpin->setSingleStep(24);
  dpiSpin->setValue(lastDpi);
  dpiSpin->setSuffix(tr(" dpi"));
  dpiSpin->setToolTip(tr("Pixels per inch of a PNG, resolution of a PDF; 96 is the screen's."));
  dpiSpin->setEnabled(!path.endsWith(".svg", Qt::CaseInsensitive));
  auto* white = new QCheckBox(tr("White background"));
  white->setChecked(lastWhite);
  white->setToolTip(tr("Black on white, as for a paper, whatever the window's colours."));
  form->addRow(tr("Resolution:"), dpiSpin);
  form->addRow(white);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  form->addRow(buttons);
  if (dialog.exec() != QDialog::Accepted) return;
  lastDpi = dpiSpin->value();
  lastWhite = white->isChecked();
  if (QString e = exportFigureTo(path, lastDpi, lastWhite); !e.isEmpty()) onError(e);
}

void MainWindow::exportDataDialog() {
  const QString path = QFileDialog::getSaveFileName(this, tr("Export data"),
                                                    viewName(currentView()->kind()) + ".json",
                                                    tr("JSON (*.json);;CSV (*.csv)"));
  if (path.isEmpty()) return;
  if (QString e = exportDataTo(path); !e.isEmpty()) onError(e);
}

void MainWindow::setColormap(const QString& name) {
  colormap_ = name;
  for (ViewBase* v : views_) v->setColormap(Colormap::fromName(name));
  for (QAction* a : colormapActions_) a->setChecked(a->data().toString() == name);
}

void MainWindow::setDarkPalette(bool dark) {
  dark_ = dark;
  if (darkAction_ && darkAction_->isChecked() != dark) {
    darkAction_->setChecked(dark);  // also when set from settings or the command line
    if (!dark) {
      for (QAction* a : darkAction_->actionGroup()->actions()) {
        if (a != darkAction_) a->setChecked(true);
      }
    }
  }
  qApp->setStyle(QStyleFactory::create("Fusion"));
  // Charts draw with their own theme, not the palette.
  for (QChartView* chart : findChildren<QChartView*>()) {
    chart->chart()->setTheme(dark ? QChart::ChartThemeDark : QChart::ChartThemeLight);
  }
  if (!dark) {
    qApp->setPalette(qApp->style()->standardPalette());
    return;
  }
  QPalette p;
  const QColor window(45, 45, 48), base(30, 30, 32), text(225, 225, 225);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, window);
  p.setColor(QPalette::ToolTipBase, window);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::Highlight, QColor(70, 130, 200));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Mid, QColor(90, 90, 90));
  p.setColor(QPalette::PlaceholderText, QColor(140, 140, 140));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(120, 120, 120));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(120, 120, 120));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(120, 120, 120));
  qApp->setPalette(p);
}

QSize MainWindow::defaultSize(const QRect& available) {
  // Leave room for the title bar and window frame, which are not part of the size set here.
  return QSize(1240, 740).boundedTo(available.size() - QSize(16, 56)).expandedTo(QSize(320, 240));
}

QRect MainWindow::fitToScreen(const QRect& frame, const QRect& available, const QSize& minimum) {
  const QSize size = frame.size().boundedTo(available.size()).expandedTo(minimum);
  const auto place = [](int at, int lo, int extent, int avail) {
    return std::clamp(at, lo, std::max(lo, lo + avail - extent));
  };
  return {QPoint(place(frame.x(), available.x(), size.width(), available.width()),
                 place(frame.y(), available.y(), size.height(), available.height())),
          size};
}

bool MainWindow::eventFilter(QObject* watched, QEvent* event) {
  if (event->type() == QEvent::ShortcutOverride) {
    auto* widget = qobject_cast<QWidget*>(watched);
    if (widget && widget->window() == this) {
      const QKeySequence pressed(static_cast<QKeyEvent*>(event)->keyCombination());
      for (const QAction* a : {exportFigureAction_, exportDataAction_}) {
        if (a && a->isEnabled() && a->shortcut() == pressed) {
          // Not the field's to override (QLineEdit would take Ctrl+E as "end of line"): left
          // unaccepted, the shortcut reaches the window's action.
          event->ignore();
          return true;
        }
      }
    }
  }
  return QMainWindow::eventFilter(watched, event);
}

void MainWindow::restoreSettings() {
  QSettings s;
  if (restoreGeometry(s.value("window/geometry").toByteArray()) &&
      !(windowState() & (Qt::WindowMaximized | Qt::WindowFullScreen))) {
    // Saved on a larger screen or one no longer attached: keep the whole window, status bar
    // included, on this one. A title bar's height is kept free above it.
    const QRect available = screen()->availableGeometry().adjusted(0, 32, 0, 0);
    setGeometry(fitToScreen(geometry(), available, minimumSizeHint()));
  }
  restoreState(s.value("window/state").toByteArray());
  if (s.value("window/dark", false).toBool()) setDarkPalette(true);
  setColormap(s.value("view/colormap", "viridis").toString());
  Workload w = Workload::defaults();
  const QJsonObject saved =
      QJsonDocument::fromJson(s.value("workload/last").toByteArray()).object();
  if (!saved.isEmpty()) {
    Workload loaded;
    if (Workload::fromJson(saved, loaded).isEmpty() && !loaded.problem.validate()) w = loaded;
  }
  const int tab = s.value("window/tab", 0).toInt();
  if (tab >= 0 && tab < tabs_->count()) tabs_->setCurrentIndex(tab);
  setWorkload(w);
  // The last model and text: the folder opens again on the worker (it may be gone: then the
  // panel says so and the synthetic workload stays).
  const QString modelDir = s.value("model/dir").toString();
  panel_->modelBox()->setText(s.value("model/text").toString());
  if (!modelDir.isEmpty() && s.value("model/open", false).toBool()) {
    panel_->modelBox()->setOpening(modelDir);
    controller_.loadModel(modelDir);
  }
}

void MainWindow::saveSettings() {
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
  s.setValue("window/dark", dark_);
  s.setValue("view/colormap", colormap_);
  s.setValue("window/tab", tabs_->currentIndex());
  Workload w = controller_.workload();
  w.file.clear();  // a file may be gone next time; the pattern is always there
  // The model folder and the text are remembered apart: a model opens again on the worker.
  if (w.model) s.setValue("model/dir", w.model->dir);
  s.setValue("model/open", bool(w.model));
  const QString text = panel_->modelBox()->text();
  s.setValue("model/text", text.size() <= (1 << 20) ? text : QString());
  if (w.model) w = Workload::defaults();
  s.setValue("workload/last", QJsonDocument(w.toJson()).toJson(QJsonDocument::Compact));
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (options_.useSettings) saveSettings();
  controller_.cancel();
  e->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  for (const QUrl& url : e->mimeData()->urls()) {
    if (url.isLocalFile() && ModelInputBox::isModelFolder(url.toLocalFile())) {
      panel_->modelBox()->setOpening(url.toLocalFile());
      controller_.loadModel(url.toLocalFile());
      e->acceptProposedAction();
      return;
    }
    if (url.isLocalFile()) {
      controller_.loadFile(url.toLocalFile());
      e->acceptProposedAction();
      return;
    }
  }
}

}  // namespace attnscope::gui
