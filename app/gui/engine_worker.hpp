// EngineWorker: the explorer's engine on the worker thread: its backends, an input cache and a run
// cache, and the two jobs that use them. ExplorerController runs those jobs on its GuiWorker, one
// at a time, so nothing here is locked and only that thread ever touches an EngineWorker.
#pragma once

#include <QCoreApplication>
#include <QString>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>

#include "analyses.hpp"
#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "view_result.hpp"
#include "worker.hpp"

namespace attnscope {
struct HeadStatTable;
}

namespace attnscope::gui {

// A model job's forward, as the controller sees it from the UI thread: while it runs, a newer
// request on the same model and text does not cancel it (the forward is what that request needs
// too); it marks the job superseded instead, and the job skips its own analysis.
struct ModelJobState {
  std::atomic<bool> inForward{false};
  std::atomic<bool> superseded{false};
};

struct EngineJob {
  quint64 id = 0;
  Workload workload;
  ViewRequest request;
  bool freshRun = false;  // drop the cached run and inputs of this workload first (Run > Rerun)
  // Answer from the cached run or fail: an export re-probes the map on screen, it never starts
  // a run of minutes behind a wait cursor (the run may have been evicted or be recomputing).
  bool cachedRunOnly = false;
  std::shared_ptr<ModelJobState> modelState = {};  // model workloads: see ModelJobState
};

// Overall fraction of a job and the phase it is in.
using JobProgressFn = std::function<void(double fraction, const QString& phase)>;

// The progress bar of one job. The engine reports each phase's own 0..1 through the job's cancel
// token; the bar shows the whole job's, each phase owning [begin, end) of it, at most every 50 ms.
class JobProgress {
 public:
  // Installs itself as `cancel`'s progress callback for as long as the job runs.
  JobProgress(const CancelToken& cancel, JobProgressFn progress);
  ~JobProgress() { cancel_.set_progress_callback({}); }  // the token may outlive the job
  JobProgress(const JobProgress&) = delete;
  JobProgress& operator=(const JobProgress&) = delete;
  // Starts a phase (reported at once, at its start).
  void setPhase(const QString& what, double begin, double end);
  void report(double fraction);  // of the current phase

 private:
  CancelToken cancel_;
  JobProgressFn progress_;
  QString phase_;
  double begin_ = 0, end_ = 1;
  Throttle throttle_{std::chrono::milliseconds(50)};
};

class EngineWorker {
  Q_DECLARE_TR_FUNCTIONS(EngineWorker)

 public:
  // Overall fraction of the job and the phase it is in; called at most every 50 ms.
  using Progress = JobProgressFn;
  // A first, coarser answer to the job's request (ViewResult::preview); the final one follows.
  using Preview = std::function<void(ViewResultPtr)>;

  // Runs the job's problem (cached) and the analysis of its view; throws when it fails or is
  // cancelled.
  ViewResultPtr compute(const EngineJob& job, const CancelToken& cancel, const Progress& progress,
                        const Preview& preview = {});
  // Loads a .safetensors/.npy set (on the worker: files can be big) and infers the variant's shape:
  // the workload to switch to, with the file's inputs. Throws when the file cannot be used.
  static Workload loadFile(const QString& path, VariantId variant);
  // Model forwards started so far (any thread may read it): what a test counts to see that a
  // request made during a forward waited for it rather than restarting it.
  int forwardsStarted() const { return forwardsStarted_; }

 private:
  // A model workload (Workload::model): the forward on the text with every layer captured, then
  // the view's analysis of the layer it asks for (engine_worker_model.cpp).
  struct ModelRun;
  ViewResultPtr computeModel(const EngineJob& job, const CancelToken& cancel, JobProgress& bar,
                             const Preview& preview);
  std::shared_ptr<ModelRun> modelRun(const Workload& w, const CancelToken& cancel);
  bool hasModelRun(const Workload& w) const;

  struct CachedRun {
    QString key;
    InputsPtr inputs;  // keeps the inputs alive, so the address in the key stays unique
    std::shared_ptr<const RunResult> result;
  };
  // Where the progress bar's phases end: inputs [0, inputsEnd), the run [inputsEnd, runEnd), the
  // view's analysis [runEnd, 1].
  struct PhaseShares {
    double inputsEnd = 0.05, runEnd = 0.5;
  };
  static PhaseShares phaseShares(const EngineJob& job, const AttentionProblem& p, bool haveInputs,
                                 bool haveRun);
  bool hasInputs(const Workload& w, const AttentionProblem& p) const;
  bool usedByARun(const InputsPtr& in) const;
  void dropUnusedInputs();
  void trimToBudget();
  bool hasRun(const Workload& w, const AttentionProblem& p) const;
  InputsPtr inputsFor(const Workload& w, const AttentionProblem& p);
  std::shared_ptr<const RunResult> run(const Workload& w, const AttentionProblem& p,
                                       const InputsPtr& in, const CancelToken& cancel, bool cache);

  WorkerBackends backends_;
  std::deque<std::pair<QString, InputsPtr>> inputsCache_;  // small LRU, newest first
  std::deque<CachedRun> runCache_;                         // small LRU, newest first
  // The newest model forward only: a 1B model's captures at 8K tokens are gigabytes.
  std::shared_ptr<ModelRun> modelRun_;
  std::atomic<int> forwardsStarted_{0};
  // Induction and retrieval scores run sequences of their own: kept per model (weakly: a closed
  // model's entries can never match a new one at the same address), backend and statistic.
  struct ProbeStat {
    std::weak_ptr<const LoadedModel> model;
    QString key;  // backend|statistic
    std::shared_ptr<const HeadStatTable> table;
  };
  std::deque<ProbeStat> probeStats_;
};

}  // namespace attnscope::gui
