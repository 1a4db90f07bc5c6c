// The live decode loop. Everything that touches the engine runs on the runner's worker thread; the
// UI gets the session (for the cache's thread-safe accounting) and throttled progress as values.
#include "live/live_decode.hpp"

#include <QJsonArray>
#include <QRegularExpression>
#include <QStringList>
#include <chrono>
#include <functional>

#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "live/backend_picker.hpp"

namespace attnscope::gui {
namespace {
constexpr auto kProgressInterval = std::chrono::milliseconds(100);
using Clock = Throttle::Clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sleeps `ms` in 10 ms slices so a cancel is noticed quickly.
void pacedSleep(int ms, const CancelToken& cancel) {
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    cancel.throw_if_cancelled();
    QThread::msleep(std::min<qint64>(
        10, std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count() + 1));
  }
}
}  // namespace

QJsonObject LiveDecodeConfig::toJson() const {
  Workload w;
  w.problem = problem;
  w.pattern = pattern;
  w.seed = seed;
  w.backend = liveBackendName(backend);
  QJsonArray prompts;
  for (qint64 n : promptLengths) prompts.append(n);
  return {{"problem", w.toJson()},
          {"backend", liveBackendName(backend)},
          {"prompt_lengths", prompts},
          {"target_length", targetLength},
          {"page_size", pageSize},
          {"page_size_used", qint64(pageSize > 0 ? pageSize : default_page_size(problem.variant))},
          {"step_delay_ms", stepDelayMs}};
}

QString LiveDecodeConfig::parsePrompts(const QString& text, QVector<qint64>& out) {
  QVector<qint64> values;
  for (const QString& part :
       text.split(QRegularExpression(QStringLiteral("[,;\\s]+")), Qt::SkipEmptyParts)) {
    bool ok = false;
    const qint64 v = part.toLongLong(&ok);
    if (!ok || v < 1) {
      return QObject::tr(
                 "prompt lengths must be positive whole numbers separated by commas "
                 "(got '%1')")
          .arg(part);
    }
    values.append(v);
  }
  if (values.isEmpty()) return QObject::tr("give at least one prompt length, e.g. 64, 96, 128");
  if (values.size() > 64) return QObject::tr("at most 64 sequences (got %1)").arg(values.size());
  out = values;
  return {};
}

QString LiveDecodeConfig::check() const {
  if (const std::string_view why = variant_info(problem.variant).no_decode; !why.empty()) {
    return QString::fromUtf8(why.data(), qsizetype(why.size()));
  }
  if (promptLengths.isEmpty()) return QObject::tr("the batch needs at least one sequence");
  for (qint64 n : promptLengths) {
    if (n < 1 || n >= targetLength) {
      return QObject::tr("every prompt must be shorter than the target length %1 (got %2)")
          .arg(targetLength)
          .arg(n);
    }
  }
  if (pageSize < 0) return QObject::tr("page size must be positive (0 = default)");
  return {};
}

KvSnapshot KvSnapshot::of(const PagedKvCache& cache) {
  KvSnapshot s;
  s.stats = cache.stats();
  s.sequences = cache.page_map();
  s.audit = cache.audit();
  return s;
}

namespace {
// The decode loop, on the worker thread. `ready` and `progress` are the news it sends (the caller
// posts them to the UI thread); throws when it fails or is cancelled, after a last progress report.
void decodeLoop(const LiveDecodeConfig& c, const CancelToken& cancel,
                const std::function<void(const LiveDecodeRunPtr&)>& ready,
                const std::function<void(const LiveDecodeProgress&)>& progress) {
  LiveDecodeProgress p;
  const qsizetype rows = c.promptLengths.size();
  p.lengths = c.promptLengths;
  p.released = QVector<bool>(rows, false);
  Throttle throttle(kProgressInterval);
  const auto report = [&](bool force) {
    if (throttle.due(force)) progress(p);
  };
  try {
    if (const QString e = c.check(); !e.isEmpty()) throw Error(e.toStdString());
    cancel.throw_if_cancelled();
    auto run = std::make_shared<LiveDecodeRun>();
    run->backend = make_backend(liveBackendName(c.backend).toStdString());
    run->device = QString::fromStdString(run->backend->device());
    DecodeSessionConfig dc;
    dc.problem = c.problem;
    dc.problem.shape.batch = 1;
    dc.prompt_lengths.assign(c.promptLengths.begin(), c.promptLengths.end());
    dc.max_length = c.targetLength;
    dc.page_size = c.pageSize;
    dc.pattern = c.pattern.toStdString();
    dc.seed = c.seed;
    run->session = std::make_unique<DecodeSession>(dc, *run->backend);
    DecodeSession& session = *run->session;
    ready(run);

    p.phase = LiveDecodeRunner::tr("prefilling");
    report(true);
    session.prefill(cancel);
    p.phase = LiveDecodeRunner::tr("decoding");
    for (qsizetype r = 0; r < rows; ++r) p.lengths[r] = session.length(r);
    report(true);

    double stepSeconds = 0;
    while (!session.finished()) {
      cancel.throw_if_cancelled();
      const auto t0 = Clock::now();
      const RunResult result = session.step(cancel);
      p.stepSeconds = secondsSince(t0);
      stepSeconds += p.stepSeconds;
      ++p.steps;
      p.tokens += result.o.empty() ? 0 : result.o.dim(0);
      p.tokensPerSecond = stepSeconds > 0 ? double(p.tokens) / stepSeconds : 0;
      for (qsizetype r = 0; r < rows; ++r) {
        if (p.released[r]) continue;
        p.lengths[r] = session.length(r);
        if (p.lengths[r] >= c.targetLength) {
          session.release(r);  // a finished request leaves the batch; its pages go back
          p.released[r] = true;
          report(true);
        }
      }
      report(false);
      if (c.stepDelayMs > 0) pacedSleep(c.stepDelayMs, cancel);
    }
    p.phase = LiveDecodeRunner::tr("finished");
    report(true);
  } catch (const Cancelled&) {
    p.phase = LiveDecodeRunner::tr("stopped");
    report(true);
    throw;
  } catch (...) {
    p.phase = LiveDecodeRunner::tr("failed");
    report(true);
    throw;
  }
}
}  // namespace

LiveDecodeRunner::LiveDecodeRunner(QObject* parent) : QObject(parent) {
  qRegisterMetaType<LiveDecodeRunPtr>();
  qRegisterMetaType<LiveDecodeProgress>();
}

LiveDecodeRunner::~LiveDecodeRunner() = default;

void LiveDecodeRunner::start(const LiveDecodeConfig& config) {
  error_.clear();
  progress_ = {};
  run_.reset();
  worker_.start(
      0,
      [this, config](const GuiWorker::Job& job) {
        decodeLoop(
            config, job.cancel(),
            [this, &job](const LiveDecodeRunPtr& run) {
              job.post([this, run] {
                run_ = run;
                emit sessionReady(run);
              });
            },
            [this, &job](const LiveDecodeProgress& p) {
              job.post([this, p] {
                progress_ = p;
                emit progress(p);
              });
            });
      },
      [this] { emit stopped(false, {}); },
      [this](const JobFailure& failure) {
        if (!failure.cancelled()) {
          error_ = failure.kind == JobFailure::Kind::outOfMemory
                       ? tr("out of memory: the cache does not fit; use fewer or shorter sequences")
                       : failure.message;
        }
        emit stopped(failure.cancelled(), error_);
      });
  emit started();
}

void LiveDecodeRunner::stop() {
  if (running()) worker_.cancel();
}

}  // namespace attnscope::gui
