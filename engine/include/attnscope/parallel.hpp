// The engine's one parallel-for: a persistent worker pool. Threads are created once and parked
// between runs, so a call never pays for thread creation. Work is handed out dynamically by an
// atomic counter.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attnscope {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }  // the caller works too

  // Runs fn(task, worker) for task in [0, tasks) on up to `threads` threads (<= size()), the
  // calling thread included; returns when all are done. worker < threads indexes per-thread
  // scratch. The first exception thrown by any task is rethrown here after all have stopped.
  // Results must not depend on which worker runs which task (the engine's outputs are
  // thread-count independent because every task writes its own disjoint slice).
  void parallel_for(int64_t tasks, int threads, const std::function<void(int64_t, int)>& fn);

  // The process-wide pool, sized by ATTNSCOPE_THREADS or the hardware concurrency.
  static ThreadPool& global();

 private:
  void worker_loop(int index);
  void stop_workers();
  void run_tasks(int worker, const std::function<void(int64_t, int)>& job, int64_t tasks);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  // The current job, guarded by mutex_ (the counter itself is atomic).
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t tasks_ = 0;
  int active_limit_ = 0;
  uint64_t generation_ = 0;
  int running_ = 0;
  bool stop_ = false;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  std::mutex call_mutex_;  // one parallel_for at a time per pool
};

// The most threads a pool starts: far above any machine this runs on, far below what would
// exhaust the process's memory for thread stacks.
inline constexpr int kMaxThreads = 1024;

// Threads a CPU run uses by default (ATTNSCOPE_THREADS, else hardware concurrency); throws Error
// for an ATTNSCOPE_THREADS that is not an integer in [1, kMaxThreads].
int default_threads();

}  // namespace attnscope
