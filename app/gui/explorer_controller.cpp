// Request lifecycle: every change bumps the job id; the worker skips jobs older than the newest and
// the running one is cancelled through its token, so the UI only ever waits for the latest answer.
#include "explorer_controller.hpp"

#include <QJsonDocument>

namespace attnscope::gui {

ExplorerController::ExplorerController(QObject* parent) : QObject(parent) {
  registerOptionalBackends();
  qRegisterMetaType<JobPtr>();
  qRegisterMetaType<ViewResultPtr>();
  qRegisterMetaType<InputsPtr>();
  qRegisterMetaType<Workload>();
  workload_ = Workload::defaults();

  debounce_.setSingleShot(true);
  debounce_.setInterval(150);
  connect(&debounce_, &QTimer::timeout, this, &ExplorerController::recompute);

  worker_ = new EngineWorker;
  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &EngineWorker::finished, this, &ExplorerController::onFinished);
  connect(worker_, &EngineWorker::failed, this, &ExplorerController::onFailed);
  connect(worker_, &EngineWorker::cancelled, this, &ExplorerController::onCancelled);
  connect(worker_, &EngineWorker::progress, this,
          [this](quint64 id, double f, const QString& phase) {
            if (id == running_) emit progressChanged(f, phase);
          });
  connect(worker_, &EngineWorker::fileLoaded, this,
          [this](quint64 id, const QString& path, InputsPtr inputs, const QString& shapeJson) {
            if (id != fileJob_) return;
            Workload w;
            const QJsonObject o = QJsonDocument::fromJson(shapeJson.toUtf8()).object();
            Workload::fromJson(o, w);
            w.backend = workload_.backend;
            w.file = path;
            w.fileInputs = std::move(inputs);
            emit fileLoaded(path, w);
            setWorkload(w);
          });
  connect(worker_, &EngineWorker::fileFailed, this,
          [this](quint64 id, const QString& path, const QString& message) {
            if (id != fileJob_) return;
            // The engine's messages already name the file ("cannot load 'x.npy': …"): once.
            emit errorOccurred(
                message.contains(path) ? message : tr("cannot load %1: %2").arg(path, message));
          });
  thread_.setObjectName(QStringLiteral("attnscope-engine"));
  thread_.start();
}

ExplorerController::~ExplorerController() {
  token_.cancel();
  worker_->newestJob().store(~quint64{0});  // skip anything still queued
  thread_.quit();
  thread_.wait();
}

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

void ExplorerController::recompute() {
  debounce_.stop();
  debounce_.setInterval(150);
  token_.cancel();  // the running job, if any, gives up at its next check
  if (auto why = workload_.problem.validate()) {
    if (running_) {
      running_ = 0;
      emit busyChanged(false);
    }
    emit errorOccurred(QString::fromStdString(*why));
    return;
  }
  token_ = CancelToken{};
  auto job = std::make_shared<Job>();
  job->id = ++nextId_;
  job->workload = workload_;
  job->request = request_;
  job->cancel = token_;
  worker_->newestJob().store(job->id);
  setRunning(job->id);
  EngineWorker* worker = worker_;
  QMetaObject::invokeMethod(
      worker_, [worker, job = JobPtr(job)] { worker->process(job); }, Qt::QueuedConnection);
}

void ExplorerController::cancel() {
  debounce_.stop();
  if (!running_) return;
  token_.cancel();
}

void ExplorerController::loadFile(const QString& path) {
  fileJob_ = ++nextId_;
  EngineWorker* worker = worker_;
  const quint64 id = fileJob_;
  const int variant = static_cast<int>(workload_.problem.variant);
  QMetaObject::invokeMethod(
      worker_, [worker, id, path, variant] { worker->loadFile(id, path, variant); },
      Qt::QueuedConnection);
}

void ExplorerController::setRunning(quint64 id) {
  const bool was = running_ != 0;
  running_ = id;
  if (was != (id != 0)) emit busyChanged(id != 0);
}

void ExplorerController::onFinished(ViewResultPtr result) {
  if (result->id != running_) return;  // superseded while it ran
  setRunning(0);
  emit resultReady(result);
}

void ExplorerController::onFailed(quint64 id, const QString& message) {
  if (id != running_) return;
  setRunning(0);
  emit errorOccurred(message);
}

void ExplorerController::onCancelled(quint64 id) {
  if (id != running_) return;
  setRunning(0);
  emit cancelled();
}

}  // namespace attnscope::gui
