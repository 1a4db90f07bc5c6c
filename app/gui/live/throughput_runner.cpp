// The throughput loop and the calibration, both on one worker thread so they never disturb each
// other's timing. Every engine exception becomes a signal; cancel is polled by the engine's runs.
#include "live/throughput_runner.hpp"

#include <chrono>
#include <new>

#include "attnscope/calibrate.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/workload.hpp"
#include "live/backend_picker.hpp"

namespace attnscope::gui {
namespace {
using Clock = std::chrono::steady_clock;
constexpr qsizetype kMaxSamples = 20000;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

QString resolved(const QString& name) {
  return liveBackendName(name);
}

// Sums what the engine reports between two samples.
struct Accumulator {
  double flops = 0, bytes = 0, seconds = 0, tokens = 0;
  qint64 runs = 0;
  void add(const RunResult& r, double wallSeconds, double tokensDone, const Cost& fallback) {
    // Counters are the cost model of the work done; a backend that leaves them empty gets the
    // problem's cost, and one that reports no time its wall time.
    flops += r.counters.flops > 0 ? r.counters.flops : fallback.flops;
    bytes += r.counters.bytes > 0 ? r.counters.bytes : fallback.bytes;
    seconds += r.seconds > 0 ? r.seconds : wallSeconds;
    tokens += tokensDone;
    ++runs;
  }
  ThroughputSample take(double t) {
    ThroughputSample s;
    s.t = t;
    s.flops = flops;
    s.bytes = bytes;
    s.seconds = seconds;
    s.tokens = tokens;
    s.runs = runs;
    if (seconds > 0) {
      s.tokensPerSecond = tokens / seconds;
      s.gflops = flops / seconds * 1e-9;
      s.gbps = bytes / seconds * 1e-9;
    }
    s.intensity = bytes > 0 ? flops / bytes : 0;
    *this = {};
    return s;
  }
};
}  // namespace

QString loopModeName(LoopMode m) {
  return m == LoopMode::decode ? QStringLiteral("decode") : QStringLiteral("prefill");
}

QJsonObject ThroughputConfig::toJson() const {
  Workload w = workload;
  w.backend = resolved(backend);
  return {{"mode", loopModeName(mode)},
          {"workload", w.toJson()},
          {"backend", resolved(backend)},
          {"decode_tokens", decodeTokens},
          {"sample_ms", sampleMs}};
}

Backend& ThroughputWorker::backend(const QString& name) {
  auto it = backends_.find(name);
  if (it == backends_.end()) it = backends_.emplace(name, make_backend(name.toStdString())).first;
  return *it->second;
}

void ThroughputWorker::calibrate(const QString& name, bool remeasure, const CancelToken& cancel,
                                 quint64 gen) {
  try {
    DevicePeak peak = device_peak(backend(resolved(name)), remeasure, cancel);
    if (peak.backend.empty()) peak.backend = resolved(name).toStdString();
    emit calibrated(gen, peak);
  } catch (const Cancelled&) {
    emit calibrationFailed(gen, tr("calibration cancelled"), true);
  } catch (const std::exception& e) {
    emit calibrationFailed(gen, QString::fromStdString(e.what()), false);
  }
}

void ThroughputWorker::run(const ThroughputConfig& c, const CancelToken& cancel, quint64 gen) {
  try {
    cancel.throw_if_cancelled();
    Backend& b = backend(resolved(c.backend));
    AttentionProblem p = c.workload.problem;
    p.check();
    if (const Support s = b.supports(p); !s.ok) {
      throw Error("backend '" + std::string(b.name()) + "' cannot run this problem: " + s.why_not);
    }
    emit runStarted(gen, QString::fromStdString(b.device()));
    const auto t0 = Clock::now();
    auto lastSample = t0;
    Accumulator acc;
    const auto maybeSample = [&] {
      if (Clock::now() - lastSample < std::chrono::milliseconds(c.sampleMs)) return;
      lastSample = Clock::now();
      emit sample(gen, acc.take(secondsSince(t0)));
    };

    if (c.mode == LoopMode::prefill) {
      const Inputs in = make_inputs(p, c.workload.pattern.toStdString(), c.workload.seed);
      const Cost cost = cost_of(p);
      const double tokens = double(p.shape.batch) * double(p.shape.q_len);
      Probes probes;
      probes.selection = false;
      while (true) {
        cancel.throw_if_cancelled();
        const auto r0 = Clock::now();
        const RunResult r = b.run(p, in, probes, cancel);
        acc.add(r, secondsSince(r0), tokens, cost);
        maybeSample();
      }
    }

    // Decode: a batch of B sequences at the workload's context length, stepped one token at a
    // time; after decodeTokens steps the session starts over (its prefill is not timed).
    DecodeSessionConfig dc;
    dc.problem = p;
    const int64_t context =
        p.variant == VariantId::gated_delta ? p.shape.q_len : std::max<int64_t>(1, p.shape.kv_len);
    dc.prompt_lengths.assign(size_t(std::max<int64_t>(1, p.shape.batch)), context);
    dc.max_length = context + std::max(1, c.decodeTokens);
    dc.pattern = c.workload.pattern.toStdString();
    dc.seed = c.workload.seed;
    dc.compute_prefill = false;
    std::unique_ptr<DecodeSession> session;
    while (true) {
      cancel.throw_if_cancelled();
      if (!session || session->finished()) {
        session.reset();
        session = std::make_unique<DecodeSession>(dc, b);
        session->prefill(cancel);
        continue;
      }
      const auto r0 = Clock::now();
      const RunResult r = session->step(cancel);
      const double rows = r.o.empty() ? 0.0 : double(r.o.dim(0));
      acc.add(r, secondsSince(r0), rows, Cost{});
      maybeSample();
    }
  } catch (const Cancelled&) {
    emit runStopped(gen, true, {});
  } catch (const std::bad_alloc&) {
    emit runStopped(gen, false,
                    tr("out of memory: this problem is too large for this machine; reduce the "
                       "sequence length, heads or batch"));
  } catch (const std::exception& e) {
    emit runStopped(gen, false, QString::fromStdString(e.what()));
  }
}

ThroughputRunner::ThroughputRunner(QObject* parent) : QObject(parent) {
  qRegisterMetaType<DevicePeak>();
  qRegisterMetaType<ThroughputSample>();
  worker_ = new ThroughputWorker;
  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &ThroughputWorker::calibrated, this,
          [this](quint64 gen, const DevicePeak& peak) {
            peaks_.insert(QString::fromStdString(peak.backend), peak);
            if (gen != calGen_) return;
            calibrating_ = false;
            emit calibrated(peak);
          });
  connect(worker_, &ThroughputWorker::calibrationFailed, this,
          [this](quint64 gen, const QString& message, bool) {
            if (gen != calGen_) return;
            calibrating_ = false;
            emit calibrationFailed(message);
          });
  connect(worker_, &ThroughputWorker::runStarted, this, [this](quint64 gen, const QString& dev) {
    if (gen == runGen_) device_ = dev;
  });
  connect(worker_, &ThroughputWorker::sample, this, [this](quint64 gen, const ThroughputSample& s) {
    if (gen != runGen_) return;
    if (samples_.size() >= kMaxSamples) samples_.remove(0, samples_.size() / 2);
    samples_.append(s);
    emit sampleReady(s);
  });
  connect(worker_, &ThroughputWorker::runStopped, this,
          [this](quint64 gen, bool cancelled, const QString& error) {
            if (gen != runGen_) return;
            running_ = false;
            error_ = error;
            emit stopped(cancelled, error);
          });
  thread_.setObjectName(QStringLiteral("attnscope-throughput"));
  thread_.start();
}

ThroughputRunner::~ThroughputRunner() {
  runToken_.cancel();
  calToken_.cancel();
  thread_.quit();
  thread_.wait();
}

std::optional<DevicePeak> ThroughputRunner::peak(const QString& backend) const {
  const auto it = peaks_.constFind(resolved(backend));
  if (it == peaks_.constEnd()) return std::nullopt;
  return *it;
}

void ThroughputRunner::start(const ThroughputConfig& config) {
  runToken_.cancel();
  runToken_ = CancelToken();
  const quint64 gen = ++runGen_;
  config_ = config;
  running_ = true;
  samples_.clear();
  error_.clear();
  device_.clear();
  QMetaObject::invokeMethod(
      worker_, [w = worker_, config, token = runToken_, gen] { w->run(config, token, gen); },
      Qt::QueuedConnection);
  emit started();
}

void ThroughputRunner::stop() {
  if (running_) runToken_.cancel();
}

void ThroughputRunner::calibrate(const QString& backend, bool remeasure) {
  calToken_.cancel();
  calToken_ = CancelToken();
  const quint64 gen = ++calGen_;
  calibrating_ = true;
  const QString name = resolved(backend);
  QMetaObject::invokeMethod(
      worker_,
      [w = worker_, name, remeasure, token = calToken_, gen] {
        w->calibrate(name, remeasure, token, gen);
      },
      Qt::QueuedConnection);
  emit calibrationStarted(name);
}

}  // namespace attnscope::gui
