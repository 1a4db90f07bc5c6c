// GuiWorker: the one way the GUI runs engine work off the UI thread. Qt's Mandelbrot example is the
// model: one thread, a mutex-guarded queue, an abort flag, a destructor that aborts and joins.
//
// Jobs run one at a time, in the order they were started, on the worker's own thread, so engine
// state the jobs share (backends, caches) needs no lock. Jobs are grouped in lanes, and each lane
// is "newest request wins": start() cancels the lane's running job through its CancelToken and
// makes its queued jobs stale, so they never run. Everything a job sends back reaches the thread
// that made the worker as a queued call, and only while the job is still its lane's newest: the
// callers never compare generations, and a superseded job's late answer is simply not delivered.
#pragma once

#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"

namespace attnscope::gui {

// Why a job ended without a result.
struct JobFailure {
  enum class Kind {
    cancelled,    // attnscope::Cancelled: the token was cancelled
    outOfMemory,  // std::bad_alloc
    engine,       // attnscope::Error: the engine's own message, meant for the user
    unexpected,   // any other exception
  };
  Kind kind = Kind::unexpected;
  QString message;  // the exception's what()
  bool cancelled() const { return kind == Kind::cancelled; }
  // Classifies the exception being handled; only valid inside a catch block.
  static JobFailure fromCurrentException();
};

// Lets through one event an interval: the engine reports progress thousands of times a second.
class Throttle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Throttle(std::chrono::milliseconds interval) : interval_(interval) {}
  // True on the first call, when forced, and once an interval has passed since the last true.
  bool due(bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_ < interval_) return false;
    last_ = now;
    return true;
  }
  void reset() { last_ = {}; }              // the next due() is true
  void restart() { last_ = Clock::now(); }  // the next due() is an interval away

 private:
  std::chrono::milliseconds interval_;
  Clock::time_point last_{};
};

// Backends a worker's jobs make on first use and keep (a CUDA context is not cheap); only the
// worker thread touches them.
class WorkerBackends {
 public:
  Backend& get(const QString& name);  // throws Error for an unknown backend

 private:
  std::map<QString, std::unique_ptr<Backend>> made_;
};

class GuiWorker {
 public:
  // A job's handle, on the worker thread.
  class Job {
   public:
    const CancelToken& cancel() const { return token_; }
    // Runs `fn` on the worker's owner thread, unless by then a newer job has started on this lane.
    void post(std::function<void()> fn) const {
      worker_->deliver(*this, false, false, std::move(fn));
    }
    // Runs `fn` even if this job has been superseded by then: for news that stays true (a measured
    // device peak), never for the answer to a request.
    void postAlways(std::function<void()> fn) const {
      worker_->deliver(*this, false, true, std::move(fn));
    }

   private:
    friend class GuiWorker;
    Job(GuiWorker* worker, int lane, quint64 generation, CancelToken token)
        : worker_(worker), lane_(lane), generation_(generation), token_(std::move(token)) {}
    GuiWorker* worker_;
    int lane_;
    quint64 generation_;
    CancelToken token_;
  };

  // `lanes`: independent newest-wins streams of jobs that share the thread and its order.
  explicit GuiWorker(const QString& threadName, int lanes = 1);
  // Cancels every job, drops the queued ones and joins the thread; nothing is delivered after.
  ~GuiWorker();
  GuiWorker(const GuiWorker&) = delete;
  GuiWorker& operator=(const GuiWorker&) = delete;

  // Queues `work(job)` behind the jobs already queued, superseding the lane's running and queued
  // jobs. On the owner thread exactly one of `done(result)` (`done()` when work returns void) and
  // `failed(JobFailure)` follows, unless a newer start() or forget() on the lane comes first.
  // Results travel as values: they must be copyable.
  template <class Work, class Done, class Failed>
  void start(int lane, Work work, Done done, Failed failed);

  // The lane's job stops at its next check and fails as cancelled.
  void cancel(int lane = 0) { lanes_[lane]->token.cancel(); }
  // Cancels the lane's job and drops whatever it still sends: the lane is idle at once.
  void forget(int lane = 0);
  // Started, and its done or failed not yet delivered.
  bool busy(int lane = 0) const { return lanes_[lane]->busy; }
  QThread* thread() const { return thread_.get(); }

 private:
  struct Lane {
    std::atomic<quint64> newest{0};  // written on the owner thread, read on both
    CancelToken token;               // the newest job's (owner thread only)
    bool busy = false;               // owner thread only
  };
  struct Queued {
    int lane;
    quint64 generation;
    std::function<void()> run;
  };

  Job begin(int lane);
  void enqueue(const Job& job, std::function<void()> run);
  // Posts `fn` to the owner thread; `final`: the job's done/failed, which ends its busy time.
  void deliver(const Job& job, bool final, bool always, std::function<void()> fn);
  void loop();

  QObject receiver_;  // lives on the owner thread; destroying it drops undelivered calls
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;  // guarded by mutex_
  bool abort_ = false;        // guarded by mutex_
  std::unique_ptr<QThread> thread_;
};

template <class Work, class Done, class Failed>
void GuiWorker::start(int lane, Work work, Done done, Failed failed) {
  const Job job = begin(lane);
  enqueue(job, [job, work = std::move(work), done = std::move(done),
                failed = std::move(failed)]() mutable {
    using Result = std::invoke_result_t<Work&, const Job&>;
    std::function<void()> outcome;
    try {
      if constexpr (std::is_void_v<Result>) {
        work(job);
        outcome = done;
      } else {
        outcome = [done, result = work(job)]() mutable { done(std::move(result)); };
      }
    } catch (...) {
      outcome = [failed, f = JobFailure::fromCurrentException()]() mutable { failed(f); };
    }
    job.cancel().set_progress_callback({});  // it may point into the finished work's frame
    job.worker_->deliver(job, true, false, std::move(outcome));
  });
}

}  // namespace attnscope::gui
