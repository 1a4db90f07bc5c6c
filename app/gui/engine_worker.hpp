// EngineWorker: the one object that touches the engine, living on its own QThread. Jobs arrive as
// queued calls; a job older than the newest one is skipped, a running one is cancelled by token.
#pragma once

#include <QObject>
#include <QString>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>

#include "analyses.hpp"
#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "view_result.hpp"

namespace attnscope::gui {

struct Job {
  quint64 id = 0;
  Workload workload;
  ViewRequest request;
  CancelToken cancel;
};
using JobPtr = std::shared_ptr<const Job>;

class EngineWorker : public QObject {
  Q_OBJECT

 public:
  explicit EngineWorker(QObject* parent = nullptr);
  ~EngineWorker() override;

  // Written by the controller (any thread) before it queues a job; jobs below it are stale.
  std::atomic<quint64>& newestJob() { return newest_; }

 public slots:
  void process(attnscope::gui::JobPtr job);
  // Loads a .safetensors/.npy set and infers the variant's shape (on this thread: files can be
  // big).
  void loadFile(quint64 id, const QString& path, int variant);

 signals:
  void progress(quint64 id, double fraction, const QString& phase);
  void finished(attnscope::gui::ViewResultPtr result);
  void failed(quint64 id, const QString& message);
  void cancelled(quint64 id);
  void fileLoaded(quint64 id, const QString& path, attnscope::gui::InputsPtr inputs,
                  const QString& shapeJson);
  void fileFailed(quint64 id, const QString& path, const QString& message);

 private:
  struct CachedRun {
    QString key;
    InputsPtr inputs;  // keeps the inputs alive, so the address in the key stays unique
    std::shared_ptr<const RunResult> result;
  };
  Backend& backend(const QString& name);
  InputsPtr inputsFor(const Workload& w, const AttentionProblem& p);
  std::shared_ptr<const RunResult> run(const Workload& w, const AttentionProblem& p,
                                       const InputsPtr& in, const CancelToken& cancel, bool cache);
  void reportProgress(quint64 id, double fraction);

  std::atomic<quint64> newest_{0};
  std::map<QString, std::unique_ptr<Backend>> backends_;
  std::deque<std::pair<QString, InputsPtr>> inputsCache_;  // small LRU, newest first
  std::deque<CachedRun> runCache_;                         // small LRU, newest first
  // Progress bookkeeping for the running job (worker thread only).
  QString phase_;
  double phaseBegin_ = 0, phaseEnd_ = 1;
  std::chrono::steady_clock::time_point lastReport_{};
};

}  // namespace attnscope::gui

Q_DECLARE_METATYPE(attnscope::gui::JobPtr)
Q_DECLARE_METATYPE(attnscope::gui::InputsPtr)
