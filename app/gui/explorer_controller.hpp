// ExplorerController: the UI thread's side of the engine. It debounces changes, validates, and runs
// the newest request on its GuiWorker; superseded jobs are cancelled and never report.
#pragma once

#include <QObject>
#include <QThread>
#include <QTimer>
#include <functional>
#include <memory>

#include "engine_worker.hpp"
#include "view_result.hpp"
#include "worker.hpp"

namespace attnscope::gui {

class ExplorerController : public QObject {
  Q_OBJECT

 public:
  explicit ExplorerController(QObject* parent = nullptr);
  ~ExplorerController() override;

  const Workload& workload() const { return workload_; }
  const ViewRequest& viewRequest() const { return request_; }
  bool busy() const { return worker_.busy(kRunLane); }
  bool pending() const { return debounce_.isActive(); }
  QThread* workerThread() const { return worker_.thread(); }
  const EngineWorker& engine() const { return engine_; }  // its thread-safe counters only

  void setDebounceMs(int ms) { debounce_.setInterval(ms); }
  // Computes `request` for the current workload on a lane of its own (the run is cached, so an
  // export only re-probes the map at the requested outRows x outCols). Exactly one of `done` or
  // `failed` follows on the UI thread, unless another export starts first.
  void computeForExport(const ViewRequest& request,
                        std::function<void(attnscope::gui::ViewResultPtr)> done,
                        std::function<void(const QString&)> failed);
  // Loads tensors on the worker; on success the workload switches to them (fileLoaded).
  void loadFile(const QString& path);
  // Opens a model folder on the worker (a big tokenizer.json takes a second); modelLoaded or
  // modelFailed follows. The workload is not changed: the panel puts the model and text together.
  void loadModel(const QString& dir);
  // Forgets a folder still opening (or a file still loading): it is never delivered.
  void cancelModelLoad() { worker_.forget(kFileLane); }

 public slots:
  void setWorkload(const attnscope::gui::Workload& w);  // debounced recompute
  void setViewRequest(const attnscope::gui::ViewRequest& r, bool immediate = false);
  void recompute();  // now, superseding anything queued or running
  void rerun();      // recompute with a fresh engine run (the cached run and inputs are dropped)
  void cancel();     // stops the running job; the views keep their last result

 signals:
  void resultReady(attnscope::gui::ViewResultPtr result);
  void progressChanged(double fraction, const QString& phase);
  void busyChanged(bool busy);
  void errorOccurred(const QString& message);
  void cancelled();
  void fileLoaded(const QString& path, const attnscope::gui::Workload& workload);
  void workloadChanged(const attnscope::gui::Workload& w);
  void modelLoaded(std::shared_ptr<const attnscope::gui::LoadedModel> model);
  void modelFailed(const QString& dir, const QString& message);

 private:
  // A file load neither supersedes nor is superseded by a run: each has its own lane.
  enum Lane { kRunLane, kFileLane, kExportLane, kLanes };

  void onFailed(const JobFailure& failure);
  // The model, text and backend a model workload's forward depends on; empty without a model.
  static QString forwardKey(const Workload& w);

  QTimer debounce_;
  Workload workload_;
  ViewRequest request_;
  quint64 nextId_ = 0;
  bool freshRun_ = false;  // the next job drops the cached run (rerun())
  // The running model job and the forward it computes (forwardKey): a request for the same
  // forward arriving while it runs waits for it instead of restarting it.
  std::shared_ptr<ModelJobState> runningModel_;
  QString runningKey_;
  bool recomputeAfterRunning_ = false;
  // The worker thread's engine, used only by the jobs (on that thread).
  EngineWorker engine_;
  // Last member, so it is destroyed first: its destructor cancels and joins, so no job outlives
  // engine_.
  GuiWorker worker_{QStringLiteral("attnscope-engine"), kLanes};
};

}  // namespace attnscope::gui
