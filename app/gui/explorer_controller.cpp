// Request lifecycle: every recompute starts a job on the run lane of the GuiWorker, which cancels
// the running one and skips queued ones, so the UI only ever hears the latest answer.
#include "explorer_controller.hpp"

#include <utility>

namespace attnscope::gui {

ExplorerController::ExplorerController(QObject* parent) : QObject(parent) {
  registerOptionalBackends();
  qRegisterMetaType<ViewResultPtr>();
  qRegisterMetaType<Workload>();
  workload_ = Workload::defaults();

  debounce_.setSingleShot(true);
  debounce_.setInterval(150);
  connect(&debounce_, &QTimer::timeout, this, &ExplorerController::recompute);
}

ExplorerController::~ExplorerController() = default;

void ExplorerController::setWorkload(const Workload& w) {
  workload_ = w;
  emit workloadChanged(w);
  debounce_.start();
}

void ExplorerController::setViewRequest(const ViewRequest& r, bool immediate) {
  request_ = r;
  if (immediate) {
    recompute();
  } else if (!debounce_.isActive()) {
    // View changes (zoom, head) are cheap to answer from the cached run: a short debounce.
    debounce_.start(60);
  }
}

void ExplorerController::rerun() {
  freshRun_ = true;
  recompute();
}

void ExplorerController::recompute() {
  debounce_.stop();
  debounce_.setInterval(150);
  const bool wasBusy = busy();
  if (auto why = workload_.problem.validate()) {
    freshRun_ = false;
    runningModel_.reset();
    recomputeAfterRunning_ = false;
    worker_.forget(kRunLane);  // the running job, if any, gives up and is not heard from
    if (wasBusy) emit busyChanged(false);
    emit errorOccurred(QString::fromStdString(*why));
    return;
  }
  const QString key = forwardKey(workload_);
  if (wasBusy && !freshRun_ && runningModel_ && runningModel_->inForward && !key.isEmpty() &&
      key == runningKey_) {
    // The running job is reading this model on this text: a click, zoom or tab switch must not
    // throw that forward away. The job skips its own analysis; this request runs after it.
    runningModel_->superseded = true;
    recomputeAfterRunning_ = true;
    return;
  }
  recomputeAfterRunning_ = false;
  EngineJob job{++nextId_, workload_, request_, std::exchange(freshRun_, false)};
  if (!key.isEmpty()) job.modelState = std::make_shared<ModelJobState>();
  runningModel_ = job.modelState;
  runningKey_ = key;
  worker_.start(
      kRunLane,
      [this, job](const GuiWorker::Job& j) {
        return engine_.compute(
            job, j.cancel(),
            [this, &j](double fraction, const QString& phase) {
              j.post([this, fraction, phase] { emit progressChanged(fraction, phase); });
            },
            [this, &j](const ViewResultPtr& first) {
              j.post([this, first] { emit resultReady(first); });
            });
      },
      [this](const ViewResultPtr& result) {
        runningModel_.reset();
        if (std::exchange(recomputeAfterRunning_, false)) {
          // Still busy: the newest request runs now, on the forward just cached.
          if (result) emit resultReady(result);
          recompute();
          return;
        }
        emit busyChanged(false);
        if (result) emit resultReady(result);
      },
      [this](const JobFailure& failure) {
        runningModel_.reset();
        recomputeAfterRunning_ = false;
        onFailed(failure);
      });
  if (!wasBusy) emit busyChanged(true);
}

QString ExplorerController::forwardKey(const Workload& w) {
  if (!w.model || !w.text) return {};
  return QStringLiteral("%1|%2|%3")
      .arg(quintptr(w.model.get()))
      .arg(quintptr(w.text.get()))
      .arg(resolvedBackend(w));
}

void ExplorerController::onFailed(const JobFailure& failure) {
  emit busyChanged(false);
  switch (failure.kind) {
    case JobFailure::Kind::cancelled:
      emit cancelled();
      break;
    case JobFailure::Kind::outOfMemory:
      emit errorOccurred(
          tr("out of memory: this problem is too large for this machine; reduce the sequence "
             "length, heads or batch"));
      break;
    case JobFailure::Kind::engine:
      emit errorOccurred(failure.message);
      break;
    case JobFailure::Kind::unexpected:
      emit errorOccurred(tr("unexpected engine error: %1").arg(failure.message));
      break;
  }
}

void ExplorerController::cancel() {
  // An export waiting for its map gives up too (it fails as cancelled, so its waiter wakes).
  if (worker_.busy(kExportLane)) worker_.cancel(kExportLane);
  const bool pendingRun = debounce_.isActive();
  debounce_.stop();
  if (!busy()) {
    // Esc during the debounce: the edit will not run, which the window must hear as well.
    if (pendingRun) emit cancelled();
    return;
  }
  // The job stops at its next check (a tile, a task, or after the inputs it is generating), but
  // the window is idle now: Esc answers at once whatever phase the engine is in.
  recomputeAfterRunning_ = false;
  runningModel_.reset();
  worker_.forget(kRunLane);
  emit busyChanged(false);
  emit cancelled();
}

void ExplorerController::computeForExport(const ViewRequest& request,
                                          std::function<void(ViewResultPtr)> done,
                                          std::function<void(const QString&)> failed) {
  if (auto why = workload_.problem.validate()) {
    failed(QString::fromStdString(*why));
    return;
  }
  EngineJob job{++nextId_, workload_, request, false};
  job.cachedRunOnly = true;
  worker_.start(
      kExportLane,
      [this, job](const GuiWorker::Job& j) {
        return engine_.compute(job, j.cancel(), [](double, const QString&) {});
      },
      [done](const ViewResultPtr& result) { done(result); },
      [failed](const JobFailure& failure) {
        failed(failure.cancelled() ? tr("export cancelled") : failure.message);
      });
}

void ExplorerController::loadFile(const QString& path) {
  const VariantId variant = workload_.problem.variant;
  worker_.start(
      kFileLane,
      [path, variant](const GuiWorker::Job&) { return EngineWorker::loadFile(path, variant); },
      [this, path](Workload w) {
        w.backend = workload_.backend;
        emit fileLoaded(path, w);
        setWorkload(w);
      },
      [this, path](const JobFailure& failure) {
        const QString message = failure.kind == JobFailure::Kind::outOfMemory
                                    ? tr("out of memory while loading the file")
                                    : failure.message;
        // The engine's messages already name the file ("cannot load 'x.npy': …"): once.
        emit errorOccurred(message.contains(path) ? message
                                                  : tr("cannot load %1: %2").arg(path, message));
      });
}

void ExplorerController::loadModel(const QString& dir) {
  // A forward of the model in force is of no use once another is opening (and would keep the
  // worker busy for minutes before the folder is even read).
  if (busy() && workload_.model) cancel();
  worker_.start(
      kFileLane, [dir](const GuiWorker::Job&) { return LoadedModel::open(dir); },
      [this](std::shared_ptr<const LoadedModel> m) { emit modelLoaded(std::move(m)); },
      [this, dir](const JobFailure& failure) {
        emit modelFailed(dir, failure.kind == JobFailure::Kind::outOfMemory
                                  ? tr("out of memory while opening the model")
                                  : failure.message);
      });
}

}  // namespace attnscope::gui
