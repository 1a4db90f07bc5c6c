// ExplorerController: the UI thread's side of the engine. It debounces changes, validates, queues
// jobs to the worker thread, cancels superseded ones and forwards only the newest job's results.
#pragma once

#include <QObject>
#include <QThread>
#include <QTimer>

#include "engine_worker.hpp"
#include "view_result.hpp"

namespace attnscope::gui {

class ExplorerController : public QObject {
  Q_OBJECT

 public:
  explicit ExplorerController(QObject* parent = nullptr);
  ~ExplorerController() override;

  const Workload& workload() const { return workload_; }
  const ViewRequest& viewRequest() const { return request_; }
  bool busy() const { return running_ != 0; }
  bool pending() const { return debounce_.isActive(); }
  QThread* workerThread() const { return const_cast<QThread*>(&thread_); }

  void setDebounceMs(int ms) { debounce_.setInterval(ms); }
  // Loads tensors on the worker; on success the workload switches to them (fileLoaded).
  void loadFile(const QString& path);

 public slots:
  void setWorkload(const attnscope::gui::Workload& w);  // debounced recompute
  void setViewRequest(const attnscope::gui::ViewRequest& r, bool immediate = false);
  void recompute();  // now, superseding anything queued or running
  void cancel();     // stops the running job; the views keep their last result

 signals:
  void resultReady(attnscope::gui::ViewResultPtr result);
  void progressChanged(double fraction, const QString& phase);
  void busyChanged(bool busy);
  void errorOccurred(const QString& message);
  void cancelled();
  void fileLoaded(const QString& path, const attnscope::gui::Workload& workload);
  void workloadChanged(const attnscope::gui::Workload& w);

 private:
  void onFinished(attnscope::gui::ViewResultPtr result);
  void onFailed(quint64 id, const QString& message);
  void onCancelled(quint64 id);
  void setRunning(quint64 id);

  QThread thread_;
  EngineWorker* worker_ = nullptr;  // lives on thread_, deleted when it finishes
  QTimer debounce_;
  Workload workload_;
  ViewRequest request_;
  quint64 nextId_ = 0;
  quint64 running_ = 0;  // id of the job whose result we wait for, 0 when idle
  CancelToken token_;
  quint64 fileJob_ = 0;
};

}  // namespace attnscope::gui
