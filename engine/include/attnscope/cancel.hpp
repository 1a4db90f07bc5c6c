// Cooperative cancellation and progress for long engine runs.
// The GUI holds a copy of the token; engine loops poll it between tiles, never per element.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

namespace attnscope {

class CancelToken {
 public:
  CancelToken() : state_(std::make_shared<State>()) {}

  void cancel() const { state_->cancelled.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return state_->cancelled.load(std::memory_order_relaxed); }
  // Throws Cancelled when cancel() was called; engine loops call this between units of work.
  void throw_if_cancelled() const;

  // Progress in [0, 1]; the callback runs on the engine thread, so it must be cheap and
  // thread-safe.
  void set_progress_callback(std::function<void(double)> fn) const {
    state_->progress = std::move(fn);
  }
  void report(double fraction) const {
    if (state_->progress) state_->progress(fraction);
  }

 private:
  struct State {
    std::atomic<bool> cancelled{false};
    std::function<void(double)> progress;
  };
  std::shared_ptr<State> state_;
};

}  // namespace attnscope
