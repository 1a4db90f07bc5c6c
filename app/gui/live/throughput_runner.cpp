// The throughput loop and the calibration, both on the runner's one worker thread so they never
// disturb each other's timing. Cancel is polled by the engine's runs.
#include "live/throughput_runner.hpp"

#include <chrono>
#include <functional>

#include "attnscope/calibrate.hpp"
#include "attnscope/cost.hpp"
#include "attnscope/decode.hpp"
#include "attnscope/decode_session.hpp"
#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/variant.hpp"
#include "attnscope/workload.hpp"
#include "live/backend_picker.hpp"

namespace attnscope::gui {
namespace {
using Clock = Throttle::Clock;
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

namespace {
// The loop, on the worker thread, until cancelled (or failing). `started` and `sample` are the news
// it sends (the caller posts them to the UI thread).
void throughputLoop(const ThroughputConfig& c, Backend& b, const CancelToken& cancel,
                    const std::function<void(const QString& device)>& started,
                    const std::function<void(const ThroughputSample&)>& sample) {
  AttentionProblem p = c.workload.problem;
  p.check();
  if (const Support s = b.supports(p); !s.ok) {
    throw Error("backend '" + std::string(b.name()) + "' cannot run this problem: " + s.why_not);
  }
  started(QString::fromStdString(b.device()));
  const auto t0 = Clock::now();
  Throttle sampler(std::chrono::milliseconds(c.sampleMs));
  sampler.restart();
  Accumulator acc;
  const auto maybeSample = [&] {
    if (sampler.due()) sample(acc.take(secondsSince(t0)));
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
  // time; after decodeTokens steps the session starts over (its prefill is not timed). A
  // recurrent state has read all q_len tokens; a cache holds kv_len of them.
  DecodeSessionConfig dc;
  dc.problem = p;
  const int64_t context =
      variant_info(p.variant).has_state ? p.shape.q_len : std::max<int64_t>(1, p.shape.kv_len);
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
}
}  // namespace

ThroughputRunner::ThroughputRunner(QObject* parent) : QObject(parent) {
  qRegisterMetaType<DevicePeak>();
  qRegisterMetaType<ThroughputSample>();
}

ThroughputRunner::~ThroughputRunner() = default;

std::optional<DevicePeak> ThroughputRunner::peak(const QString& backend) const {
  const auto it = peaks_.constFind(resolved(backend));
  if (it == peaks_.constEnd()) return std::nullopt;
  return *it;
}

void ThroughputRunner::start(const ThroughputConfig& config) {
  config_ = config;
  samples_.clear();
  error_.clear();
  device_.clear();
  worker_.start(
      kRunLane,
      [this, config](const GuiWorker::Job& job) {
        job.cancel().throw_if_cancelled();
        throughputLoop(
            config, backends_.get(resolved(config.backend)), job.cancel(),
            [this, &job](const QString& device) { job.post([this, device] { device_ = device; }); },
            [this, &job](const ThroughputSample& s) {
              job.post([this, s] {
                if (samples_.size() >= kMaxSamples) samples_.remove(0, samples_.size() / 2);
                samples_.append(s);
                emit sampleReady(s);
              });
            });
      },
      [this] { emit stopped(false, {}); },
      [this](const JobFailure& failure) {
        if (!failure.cancelled()) {
          error_ = failure.kind == JobFailure::Kind::outOfMemory
                       ? tr("out of memory: this problem is too large for this machine; reduce "
                            "the sequence length, heads or batch")
                       : failure.message;
        }
        emit stopped(failure.cancelled(), error_);
      });
  emit started();
}

void ThroughputRunner::stop() {
  if (running()) worker_.cancel(kRunLane);
}

void ThroughputRunner::calibrate(const QString& backend, bool remeasure) {
  const QString name = resolved(backend);
  worker_.start(
      kCalibrationLane,
      [this, name, remeasure](const GuiWorker::Job& job) {
        DevicePeak peak = device_peak(backends_.get(name), remeasure, job.cancel());
        if (peak.backend.empty()) peak.backend = name.toStdString();
        // A measured peak stays true when a newer calibration superseded this one: keep it. But a
        // disturbed re-measurement never replaces a reliable roof (it would stand for the rest of
        // the session); it is still reported to the view.
        job.postAlways([this, peak] {
          const QString key = QString::fromStdString(peak.backend);
          const auto known = peaks_.constFind(key);
          if (!peak.reliable && known != peaks_.constEnd() && known->reliable) return;
          peaks_.insert(key, peak);
        });
        return peak;
      },
      [this](const DevicePeak& peak) { emit calibrated(peak); },
      [this](const JobFailure& failure) {
        emit calibrationFailed(failure.cancelled() ? tr("calibration cancelled") : failure.message);
      });
  emit calibrationStarted(name);
}

}  // namespace attnscope::gui
