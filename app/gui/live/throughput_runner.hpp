// Live throughput for the Throughput view: a worker thread that repeats a prefill (Backend::run)
// or a decode (DecodeSession::step) on the chosen backend and emits samples several times a
// second, and that measures the device's peaks (device_peak) for the roofline.
#pragma once

#include <QJsonObject>
#include <QMap>
#include <QMetaType>
#include <QObject>
#include <QString>
#include <QThread>
#include <QVector>
#include <memory>
#include <optional>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "worker.hpp"
#include "workload.hpp"

namespace attnscope::gui {

enum class LoopMode { prefill, decode };
QString loopModeName(LoopMode m);  // "prefill", "decode"

struct ThroughputConfig {
  LoopMode mode = LoopMode::prefill;
  Workload workload;  // problem, pattern, seed (a loaded file is not used: inputs are generated)
  QString backend;    // empty: the preferred available backend
  int decodeTokens = 128;  // decode: tokens each sequence adds before the session starts over
  int sampleMs = 250;      // one sample per this much wall time (or per run when runs are longer)
  QJsonObject toJson() const;
};

// One sample: what the engine did since the previous one. Rates use the engine's own time
// (RunResult::seconds), FLOPs and bytes its counters (the cost model of the work done).
struct ThroughputSample {
  double t = 0;  // wall seconds since the loop started
  double tokensPerSecond = 0, gflops = 0, gbps = 0;
  double intensity = 0;  // FLOP per byte
  double flops = 0, bytes = 0, seconds = 0, tokens = 0;
  qint64 runs = 0;
};

class ThroughputRunner : public QObject {
  Q_OBJECT

 public:
  explicit ThroughputRunner(QObject* parent = nullptr);
  ~ThroughputRunner() override;

  bool running() const { return worker_.busy(kRunLane); }
  bool calibrating() const { return worker_.busy(kCalibrationLane); }
  // The last calibration of this backend in this session (device_peak also caches on disk).
  std::optional<DevicePeak> peak(const QString& backend) const;
  const QVector<ThroughputSample>& samples() const { return samples_; }
  QString device() const { return device_; }
  QString lastError() const { return error_; }
  const ThroughputConfig& config() const { return config_; }

 public slots:
  void start(const attnscope::gui::ThroughputConfig& config);
  void stop();
  // Runs device_peak on the worker thread (after a running loop, if any, has stopped).
  void calibrate(const QString& backend, bool remeasure = false);

 signals:
  void started();
  void sampleReady(const attnscope::gui::ThroughputSample& s);
  void stopped(bool cancelled, const QString& error);
  void calibrationStarted(const QString& backend);
  void calibrated(const attnscope::DevicePeak& peak);
  void calibrationFailed(const QString& message);

 private:
  // The loop and the calibration share one thread so they never disturb each other's timing; each
  // has its own lane, so starting one does not supersede the other.
  enum Lane { kRunLane, kCalibrationLane, kLanes };
  WorkerBackends backends_;  // used only by the jobs (on the worker thread)
  ThroughputConfig config_;
  QVector<ThroughputSample> samples_;
  QString device_, error_;
  QMap<QString, DevicePeak> peaks_;
  // Last member, so it is destroyed first: its destructor cancels and joins, so no job outlives
  // backends_.
  GuiWorker worker_{QStringLiteral("attnscope-throughput"), kLanes};
};

}  // namespace attnscope::gui

Q_DECLARE_METATYPE(attnscope::DevicePeak)
Q_DECLARE_METATYPE(attnscope::gui::ThroughputSample)
