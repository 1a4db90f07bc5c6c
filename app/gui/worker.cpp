// The worker thread's loop and the owner-thread bookkeeping of lanes. Only `newest` is shared
// between the threads (atomically); the queue is under the mutex, everything else belongs to the
// owner thread.
#include "worker.hpp"

#include <new>

#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::gui {

JobFailure JobFailure::fromCurrentException() {
  try {
    throw;
  } catch (const Cancelled& e) {
    return {Kind::cancelled, QString::fromStdString(e.what())};
  } catch (const std::bad_alloc& e) {
    return {Kind::outOfMemory, QString::fromStdString(e.what())};
  } catch (const Error& e) {
    return {Kind::engine, QString::fromStdString(e.what())};
  } catch (const std::exception& e) {
    return {Kind::unexpected, QString::fromStdString(e.what())};
  } catch (...) {
    return {Kind::unexpected, QStringLiteral("unknown exception")};
  }
}

Backend& WorkerBackends::get(const QString& name) {
  auto it = made_.find(name);
  if (it == made_.end()) it = made_.emplace(name, make_backend(name.toStdString())).first;
  return *it->second;
}

GuiWorker::GuiWorker(const QString& threadName, int lanes) {
  for (int i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<Lane>());
  thread_.reset(QThread::create([this] { loop(); }));
  thread_->setObjectName(threadName);
  thread_->start();
}

GuiWorker::~GuiWorker() {
  {
    const std::lock_guard lock(mutex_);
    abort_ = true;
    queue_.clear();
  }
  for (const auto& lane : lanes_) lane->token.cancel();
  wake_.notify_all();
  thread_->wait();
}

GuiWorker::Job GuiWorker::begin(int lane) {
  Lane& l = *lanes_[lane];
  l.token.cancel();  // the running job, if any, gives up at its next check
  l.token = CancelToken{};
  l.busy = true;
  return Job(this, lane, ++l.newest, l.token);
}

void GuiWorker::forget(int lane) {
  Lane& l = *lanes_[lane];
  l.token.cancel();
  ++l.newest;  // what the old job still sends is stale now
  l.busy = false;
}

void GuiWorker::enqueue(const Job& job, std::function<void()> run) {
  {
    const std::lock_guard lock(mutex_);
    queue_.push_back({job.lane_, job.generation_, std::move(run)});
  }
  wake_.notify_one();
}

void GuiWorker::deliver(const Job& job, bool final, bool always, std::function<void()> fn) {
  QMetaObject::invokeMethod(
      &receiver_,
      [this, lane = job.lane_, generation = job.generation_, final, always, fn = std::move(fn)] {
        Lane& l = *lanes_[lane];
        const bool current = generation == l.newest.load();
        if (!current && !always) return;
        if (current && final) l.busy = false;  // before fn, which may start the next job
        fn();
      },
      Qt::QueuedConnection);
}

void GuiWorker::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return abort_ || !queue_.empty(); });
    if (abort_) return;
    Queued next = std::move(queue_.front());
    queue_.pop_front();
    const bool current = next.generation == lanes_[next.lane]->newest.load();
    lock.unlock();
    if (current) next.run();  // a job superseded while queued never runs
    next = {};                // either way its captures die here, outside the lock
    lock.lock();
  }
}

}  // namespace attnscope::gui
