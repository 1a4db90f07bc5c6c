// Persistent thread pool (see parallel.hpp). Workers sleep on a condition variable between jobs
// instead of spinning: on a 2-core machine spinning workers steal cycles from the caller.
#include "attnscope/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "attnscope/error.hpp"

namespace attnscope {

int default_threads() {
  if (const char* env = std::getenv("ATTNSCOPE_THREADS"); env && *env) {
    // Strict: a typo must not silently become "all cores", nor 100000 threads become a hang.
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(env, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > kMaxThreads) {
      throw Error("ATTNSCOPE_THREADS must be an integer from 1 to " + std::to_string(kMaxThreads) +
                  " (got '" + env + "')");
    }
    return static_cast<int>(n);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(std::min<unsigned>(hw, kMaxThreads)) : 1;
}

ThreadPool::ThreadPool(int threads) {
  try {
    for (int i = 1; i < std::max(1, threads); ++i)
      workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::exception& e) {
    // The workers already started wait on wake_: stop and join them before the members they use
    // are destroyed (leaving them would hang or crash), then report why.
    const size_t started = workers_.size() + 1;
    stop_workers();
    throw Error("cannot start " + std::to_string(threads) + " CPU threads (" +
                std::to_string(started) + " started): " + e.what() +
                "; set ATTNSCOPE_THREADS lower");
  }
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(default_threads());
  return pool;
}

void ThreadPool::run_tasks(int worker, const std::function<void(int64_t, int)>& job,
                           int64_t tasks) {
  for (;;) {
    const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
    if (t >= tasks) return;
    try {
      job(t, worker);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(tasks, std::memory_order_relaxed);  // stop handing out work
    }
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int)>* job = nullptr;
    int64_t tasks = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      // A job that already finished (job_ cleared) or that wants fewer threads is skipped; the
      // snapshot taken under the lock stays valid because the caller waits for running_ == 0.
      if (job_ == nullptr || index >= active_limit_) continue;
      job = job_;
      tasks = tasks_;
      ++running_;
    }
    run_tasks(index, *job, tasks);
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    done_.notify_all();
  }
}

void ThreadPool::parallel_for(int64_t tasks, int threads,
                              const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  std::lock_guard call(call_mutex_);
  const int limit = std::clamp(threads, 1, size());
  if (limit == 1 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    tasks_ = tasks;
    active_limit_ = limit;
    error_ = nullptr;
    next_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  wake_.notify_all();
  run_tasks(0, fn, tasks);
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return running_ == 0 && next_.load() >= tasks_; });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace attnscope
